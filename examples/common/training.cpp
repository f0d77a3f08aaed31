// One of the few translation units of the examples that include <torch/torch.h> (nn modules and
// optimizers need it); everything else uses narrow headers.
#include "training.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <system_error>

#include "medload/augment/augmenter.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/json_text.h"
#include "medload/core/progress.h"
#include "medload/core/regular_file.h"
#include "medload/loader/serve/loader.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/class_weights.h"
#include "medload/samplers/distributed_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "small_cnn.h"

namespace medload::examples {
namespace {

void unflatten_into(const torch::Tensor& flat, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    const std::int64_t n = t.numel();
    t.copy_(flat.slice(0, offset, offset + n).view_as(t));
    offset += n;
  }
}

std::shared_ptr<samplers::StreamSampler> make_sampler(const TrainingData& data, const TrainOptions& o,
                                                      std::size_t classes) {
  const std::size_t n = data.train_labels.size();
  std::shared_ptr<samplers::StreamSampler> inner;
  switch (o.sampler) {
    case SamplerChoice::kBalanced: {
      samplers::ClassBalancedSamplerOptions so;
      so.mode = samplers::BalanceMode::kOversample;
      so.seed = o.seed;
      so.num_classes = classes;
      so.num_samples = n;  // balanced shares inside an epoch of the usual length
      inner = std::make_shared<samplers::ClassBalancedSampler>(data.train_labels, so);
      break;
    }
    case SamplerChoice::kWeighted: {
      samplers::WeightedRandomSamplerOptions so;
      so.seed = o.seed;
      so.num_samples = n;
      inner = std::make_shared<samplers::WeightedRandomSampler>(
          samplers::inverse_frequency_sample_weights(data.train_labels, classes), so);
      break;
    }
    case SamplerChoice::kNone: {
      // Quotas equal to the class counts, each class drawn without replacement: exactly a seeded
      // permutation of the training part, with the samplers' exact resume and rank slicing.
      samplers::ClassBalancedSamplerOptions so;
      so.mode = samplers::BalanceMode::kTarget;
      so.seed = o.seed;
      so.num_classes = classes;
      so.num_samples = n;
      for (auto c : samplers::class_counts(data.train_labels, classes))
        so.target.push_back(static_cast<double>(c));
      inner = std::make_shared<samplers::ClassBalancedSampler>(data.train_labels, so);
      break;
    }
  }
  if (o.world_size == 1) return inner;
  samplers::DistributedOptions d;
  d.world_size = o.world_size;
  d.rank = o.rank;
  return std::make_shared<samplers::DistributedSampler>(*inner, d);
}

// What must match between a checkpoint and the run that resumes from it.
nlohmann::json run_identity(const TrainingData& data, const TrainOptions& o) {
  return {{"seed", o.seed},
          {"sampler", to_string(o.sampler)},
          {"weighted_loss", o.weighted_loss},
          {"augment", o.augment},
          {"batch_size", o.batch_size},
          {"learning_rate", o.learning_rate},
          {"weight_decay", o.weight_decay},
          {"width", o.width},
          {"input_size", o.input_size},
          {"world_size", o.world_size},
          {"rank", o.rank},
          {"train_samples", data.train->size()},
          {"val_samples", data.val->size()},
          {"class_names", data.class_names}};
}

double json_double(const nlohmann::json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

nlohmann::json metrics_state(const ClassificationMetrics& m) {
  std::vector<nlohmann::json> recall, auc;
  for (double r : m.recall) recall.push_back(number_or_null(r));
  for (double a : m.class_roc_auc) auc.push_back(number_or_null(a));
  return {{"samples", m.samples},
          {"accuracy", number_or_null(m.accuracy)},
          {"balanced", number_or_null(m.balanced_accuracy)},
          {"auc", number_or_null(m.roc_auc)},
          {"recall", recall},
          {"class_auc", auc},
          {"support", m.support},
          {"confusion", m.confusion}};
}

ClassificationMetrics metrics_from_state(const nlohmann::json& j) {
  ClassificationMetrics m;
  m.samples = j.at("samples").get<std::size_t>();
  m.accuracy = json_double(j.at("accuracy"));
  m.balanced_accuracy = json_double(j.at("balanced"));
  m.roc_auc = json_double(j.at("auc"));
  for (const auto& r : j.at("recall")) m.recall.push_back(json_double(r));
  for (const auto& a : j.at("class_auc")) m.class_roc_auc.push_back(json_double(a));
  m.support = j.at("support").get<std::vector<std::int64_t>>();
  m.confusion = j.at("confusion").get<std::vector<std::vector<std::int64_t>>>();
  return m;
}

// Where a run is: enough, with the model, optimizer and sampler, to continue bit for bit.
struct RunState {
  std::size_t epoch = 0;    // 0-based epoch in progress (== epochs when done)
  std::size_t batches = 0;  // batches of it already trained
  std::size_t steps = 0;    // steps in total
  double loss_sum = 0.0;    // this rank's sum of per-sample losses in the epoch so far
  double loss_count = 0.0;  // and the samples they cover
  std::vector<EpochRecord> history;
};

std::string checkpoint_path(const TrainOptions& o) {
  return (std::filesystem::path(o.checkpoint_dir) / "checkpoint.pt").string();
}

void save_checkpoint(const TrainOptions& o, const nlohmann::json& identity, const RunState& s,
                     SmallCnn& model, torch::optim::Optimizer& optimizer,
                     const samplers::StreamSampler& sampler) {
  std::filesystem::create_directories(o.checkpoint_dir);
  nlohmann::json state{{"identity", identity}, {"epoch", s.epoch},       {"batches", s.batches},
                       {"steps", s.steps},     {"loss_sum", s.loss_sum}, {"loss_count", s.loss_count}};
  state["history"] = nlohmann::json::array();
  for (const auto& e : s.history) {
    state["history"].push_back({{"epoch", e.epoch},
                                {"train_loss", e.train_loss},
                                {"steps", e.steps},
                                {"val", metrics_state(e.val)}});
  }
  torch::serialize::OutputArchive root, model_archive, optimizer_archive, sampler_archive;
  model->save(model_archive);
  optimizer.save(optimizer_archive);
  sampler.save(sampler_archive);
  root.write("model", model_archive);
  root.write("optimizer", optimizer_archive);
  root.write("sampler", sampler_archive);
  // The loss sums are doubles: JSON keeps 17 significant digits, so they round-trip exactly.
  root.write("state", c10::IValue(state.dump()));
  // Written beside the target, then renamed: a kill during the write leaves the previous
  // checkpoint intact.
  const std::string target = checkpoint_path(o);
  const std::string tmp = target + ".tmp";
  root.save_to(tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  if (ec) throw IoError("cannot rename " + tmp + " to " + target + ": " + ec.message());
}

bool load_checkpoint(const TrainOptions& o, const nlohmann::json& identity, RunState& s, SmallCnn& model,
                     torch::optim::Optimizer& optimizer, samplers::StreamSampler& sampler) {
  const std::string path = checkpoint_path(o);
  if (!std::filesystem::exists(path)) return false;
  core::open_regular_file(path, "the checkpoint");  // LibTorch's own open would block on a FIFO
  torch::serialize::InputArchive root, model_archive, optimizer_archive, sampler_archive;
  try {
    root.load_from(path);
  } catch (const c10::Error& e) {
    throw FormatError("checkpoint " + path + " cannot be read: " + e.what_without_backtrace());
  }
  c10::IValue state_value;
  root.read("state", state_value);
  std::string why;
  const auto state = core::parse_json(state_value.toStringRef(), &why);
  if (!state.is_object()) throw FormatError("checkpoint " + path + " holds no run state: " + why);
  const auto& stored = state.at("identity");
  for (const auto& [key, value] : identity.items()) {
    if (!stored.contains(key) || stored.at(key) != value) {
      throw FormatError("checkpoint " + path + " belongs to another run: " + key + " is " +
                        (stored.contains(key) ? stored.at(key).dump() : std::string("missing")) +
                        " there and " + value.dump() + " here");
    }
  }
  root.read("model", model_archive);
  root.read("optimizer", optimizer_archive);
  root.read("sampler", sampler_archive);
  model->load(model_archive);
  optimizer.load(optimizer_archive);
  sampler.load(sampler_archive);  // checks kind, configuration fingerprint, world size and rank
  s.epoch = state.at("epoch").get<std::size_t>();
  s.batches = state.at("batches").get<std::size_t>();
  s.steps = state.at("steps").get<std::size_t>();
  s.loss_sum = state.at("loss_sum").get<double>();
  s.loss_count = state.at("loss_count").get<double>();
  s.history.clear();
  for (const auto& e : state.at("history")) {
    EpochRecord r;
    r.epoch = e.at("epoch").get<std::size_t>();
    r.train_loss = e.at("train_loss").get<double>();
    r.steps = e.at("steps").get<std::size_t>();
    r.val = metrics_from_state(e.at("val"));
    s.history.push_back(std::move(r));
  }
  return true;
}

ClassificationMetrics evaluate(SmallCnn& model, const TrainingData& data, const TrainOptions& o,
                               std::size_t classes) {
  EvalOptions eval;
  eval.mean = data.mean;
  eval.std = data.std;
  eval.input_size = o.input_size;
  eval.batch_size = o.batch_size;
  eval.threads = o.threads;
  return evaluate_classifier(model, data.val, eval, classes);
}

std::string format_metrics(const ClassificationMetrics& m, const std::vector<std::string>& names) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(3) << "val acc " << m.accuracy << "  bal_acc " << m.balanced_accuracy
    << "  auc " << m.roc_auc << "  recall";
  for (std::size_t c = 0; c < m.recall.size(); ++c) s << ' ' << names[c] << ' ' << m.recall[c];
  return s.str();
}

// What train() needs of the data: both parts, not empty, a label in range for every training
// sample, a positive std and at least two classes.
void check_training_data(const TrainingData& data) {
  if (!data.train || !data.val) throw ConfigError("TrainingData: train and val sources are required");
  if (data.train->size() == 0) throw ConfigError("TrainingData: the training part is empty");
  if (data.val->size() == 0) throw ConfigError("TrainingData: the validation part is empty");
  if (data.train_labels.size() != data.train->size()) {
    throw ConfigError("TrainingData: " + std::to_string(data.train_labels.size()) + " train_labels for " +
                      std::to_string(data.train->size()) + " training samples");
  }
  if (!(data.std > 0.0f))
    throw ConfigError("TrainingData: std is " + std::to_string(data.std) + "; it must be > 0");
  const std::size_t classes = data.class_names.size();
  if (classes < 2)
    throw ConfigError("TrainingData: " + std::to_string(classes) + " classes; at least 2 are needed");
  for (std::size_t i = 0; i < data.train_labels.size(); ++i) {
    const auto y = data.train_labels[i];
    if (y < 0 || y >= static_cast<std::int64_t>(classes)) {
      throw ConfigError("TrainingData: training sample " + data.train->describe(i) + " has label " +
                        std::to_string(y) + "; classes are 0.." + std::to_string(classes - 1) +
                        " (unlabeled samples cannot be trained on)");
    }
  }
}

// The model's initial weights come from torch's global generator, seeded here; in a distributed
// run every rank then takes rank 0's weights (options.broadcast).
SmallCnn make_model(const TrainingData& data, const TrainOptions& o, std::size_t classes) {
  torch::set_num_threads(static_cast<int>(o.compute_threads));
  torch::manual_seed(o.seed);
  SmallCnn model(data.train->layout().channels, static_cast<std::int64_t>(classes), o.width);
  if (o.broadcast) {
    auto flat = flatten_parameters(model);
    o.broadcast(flat);
    unflatten_into(flat, model->parameters());
  }
  return model;
}

// Inverse-frequency class weights for the loss with weighted_loss (undefined without), and a
// warning in the log when the sampler corrects the imbalance as well.
torch::Tensor loss_weights(const TrainingData& data, const TrainOptions& o, std::size_t classes,
                           std::ostream* log) {
  if (!o.weighted_loss) return {};
  torch::Tensor weights = samplers::class_weights(samplers::class_counts(data.train_labels, classes));
  if (log != nullptr && o.sampler != SamplerChoice::kNone) {
    *log << "warning: --weighted-loss with the " << to_string(o.sampler)
         << " sampler corrects the class imbalance twice; the model will over-predict rare classes\n";
  }
  return weights;
}

loader::LoaderOptions train_loader_options(const TrainingData& data, const TrainOptions& o) {
  loader::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.threads = o.threads;
  lo.pin_memory = false;
  if (o.augment) {
    augment::AugmentOptions ao = data.augment.value_or(augment::AugmentOptions{});
    ao.seed = o.seed;  // --seed keys every random choice of the run
    lo.augment = augment::make_hook(ao, 1);
  }
  return lo;
}

// The log's first lines: the data, then how it is trained.
void log_plan(std::ostream& log, const TrainingData& data, const TrainOptions& o) {
  log << data.description << "\n"
      << "training: " << o.epochs << " epochs, batch " << o.batch_size << ", sampler " << to_string(o.sampler)
      << (o.weighted_loss ? ", class-weighted loss" : "") << (o.augment ? ", augmented" : ", no augmentation")
      << ", " << o.threads << " loader threads, " << o.compute_threads << " compute threads";
  if (o.world_size > 1) log << ", rank " << o.rank << " of " << o.world_size;
  log << "\n";
}

// One call of train(): the model, its optimizer, the sampler and the loader over the training
// part, and where the run is. The members are built in the order they are declared, which is the
// order the run's results depend on (the seed, then the model's weights, then the sampler).
class TrainingRun {
 public:
  TrainingRun(const TrainingData& data, const TrainOptions& options, std::size_t classes)
      : data_(data),
        options_(options),
        classes_(classes),
        log_(options.log ? *options.log : std::cerr),
        verbose_(!options.quiet),
        model_(make_model(data, options, classes)),
        params_(model_->parameters()),
        optimizer_(params_,
                   torch::optim::AdamOptions(options.learning_rate).weight_decay(options.weight_decay)),
        sampler_(make_sampler(data, options, classes)),
        loss_weight_(loss_weights(data, options, classes, verbose_ ? &log_ : nullptr)),
        loader_(data.train, sampler_, train_loader_options(data, options)),
        identity_(run_identity(data, options)) {}

  // Resumes from the checkpoint when asked to, then trains the epochs left.
  TrainResult run() {
    if (options_.resume) resume();
    if (verbose_) log_plan(log_, data_, options_);
    const std::size_t batches_per_epoch = (sampler_->size() + options_.batch_size - 1) / options_.batch_size;
    for (std::size_t epoch = state_.epoch; epoch < options_.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      if (!train_epoch(epoch, batches_per_epoch)) break;
      const EpochRecord record = end_epoch(epoch);
      if (verbose_)
        log_epoch(record, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    result_.epochs = state_.history;
    result_.steps = state_.steps;
    result_.parameters = flatten_parameters(model_);
    result_.param_checksum = parameter_checksum(result_.parameters);
    return std::move(result_);
  }

 private:
  void resume() {
    if (!load_checkpoint(options_, identity_, state_, model_, optimizer_, *sampler_)) return;
    result_.resumed_from = std::make_pair(state_.epoch, state_.batches);
    if (verbose_) {
      log_ << "resumed from " << checkpoint_path(options_) << ": epoch " << state_.epoch + 1 << ", batch "
           << state_.batches << ", step " << state_.steps << "\n";
    }
  }

  // Trains epoch `epoch` (the rest of it, after a resume inside it); false when stop_after_steps
  // ended the run in it.
  bool train_epoch(std::size_t epoch, std::size_t batches_per_epoch) {
    if (state_.batches > 0 && epoch == state_.epoch) {
      loader_.load_state({epoch, state_.batches});
    } else {
      loader_.set_epoch(epoch);
      state_.batches = 0;
      state_.loss_sum = state_.loss_count = 0.0;
    }
    state_.epoch = epoch;
    std::vector<std::int64_t> seen;
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs),
                      batches_per_epoch, "batches", verbose_ ? ProgressStyle::kAuto : ProgressStyle::kQuiet,
                      &log_);
    progress.advance(state_.batches);
    model_->train();
    while (auto batch = loader_.next()) {
      train_step(*batch);
      progress.advance();
      if (options_.record_samples) {
        auto ids = batch->sample_ids.contiguous();
        seen.insert(seen.end(), ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + ids.numel());
      }
      if (options_.checkpoint_every > 0 && state_.steps % options_.checkpoint_every == 0) {
        save_checkpoint(options_, identity_, state_, model_, optimizer_, *sampler_);
      }
      if (options_.on_step) options_.on_step(state_.steps);
      if (options_.stop_after_steps > 0 && state_.steps >= options_.stop_after_steps) {
        progress.finish();
        result_.interrupted = true;
        break;
      }
    }
    if (options_.record_samples) result_.samples_seen.push_back(std::move(seen));
    if (result_.interrupted) return false;
    progress.finish();
    return true;
  }

  // One optimizer step on `batch`, counted in the epoch's loss sums.
  void train_step(const loader::Batch& batch) {
    auto x = prepare_input(batch.images, data_.mean, data_.std, options_.input_size);
    const auto& y = batch.labels;
    optimizer_.zero_grad();
    auto logits = model_->forward(x);
    auto ce = torch::nn::functional::CrossEntropyFuncOptions();
    if (loss_weight_.defined()) ce.weight(loss_weight_);
    auto loss = torch::nn::functional::cross_entropy(logits, y, ce);
    loss.backward();
    if (options_.world_size > 1) average_gradients();
    optimizer_.step();
    const auto b = static_cast<double>(y.size(0));
    state_.loss_sum += loss.item<double>() * b;
    state_.loss_count += b;
    state_.batches = loader_.state().batches;
    ++state_.steps;
  }

  // One allreduce per step over all gradients flattened together (what DDP's buckets do), then
  // the mean over the ranks.
  void average_gradients() {
    std::vector<torch::Tensor> grads;
    for (const auto& p : params_) grads.push_back(p.grad());
    std::vector<torch::Tensor> flat_parts;
    for (const auto& g : grads) flat_parts.push_back(g.reshape({-1}));
    auto flat = torch::cat(flat_parts).contiguous();
    options_.allreduce_sum(flat);
    flat.div_(static_cast<double>(options_.world_size));
    unflatten_into(flat, grads);
  }

  // The finished epoch's record (training loss over all ranks, validation metrics), added to the
  // history; with a checkpoint folder, the run is saved as at the start of the next epoch.
  EpochRecord end_epoch(std::size_t epoch) {
    EpochRecord record;
    record.epoch = epoch + 1;
    record.steps = state_.batches;
    double sums[2] = {state_.loss_sum, state_.loss_count};
    if (options_.world_size > 1) {
      auto t = torch::tensor({static_cast<float>(sums[0]), static_cast<float>(sums[1])});
      options_.allreduce_sum(t);
      sums[0] = t[0].item<double>();
      sums[1] = t[1].item<double>();
    }
    record.train_loss = sums[0] / std::max(sums[1], 1.0);
    record.val = evaluate(model_, data_, options_, classes_);
    state_.history.push_back(record);
    state_.epoch = epoch + 1;
    state_.batches = 0;
    state_.loss_sum = state_.loss_count = 0.0;
    if (!options_.checkpoint_dir.empty())
      save_checkpoint(options_, identity_, state_, model_, optimizer_, *sampler_);
    return record;
  }

  void log_epoch(const EpochRecord& record, double seconds) {
    log_ << "epoch " << record.epoch << "/" << options_.epochs << "  train_loss " << std::fixed
         << std::setprecision(4) << record.train_loss << "  " << format_metrics(record.val, data_.class_names)
         << "  (" << std::setprecision(1) << seconds << " s)\n";
    log_.unsetf(std::ios::floatfield);
  }

  const TrainingData& data_;
  const TrainOptions& options_;
  const std::size_t classes_;
  std::ostream& log_;
  const bool verbose_;
  SmallCnn model_;
  std::vector<torch::Tensor> params_;
  torch::optim::Adam optimizer_;
  std::shared_ptr<samplers::StreamSampler> sampler_;
  torch::Tensor loss_weight_;
  loader::Loader loader_;
  const nlohmann::json identity_;
  RunState state_;
  TrainResult result_;
};

}  // namespace

// ---- The shared classifier (small_cnn.h) --------------------------------------------------------

SmallCnnImpl::SmallCnnImpl(std::int64_t in_channels, std::int64_t classes, std::int64_t width) {
  const std::int64_t w[4] = {width, 2 * width, 4 * width, 4 * width};
  std::int64_t in = in_channels;
  for (int i = 0; i < 4; ++i) {
    convs_.push_back(register_module("conv" + std::to_string(i + 1),
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(in, w[i], 3).padding(1))));
    norms_.push_back(register_module("norm" + std::to_string(i + 1),
                                     torch::nn::GroupNorm(torch::nn::GroupNormOptions(4, w[i]))));
    in = w[i];
  }
  head_ = register_module("head", torch::nn::Linear(2 * in, classes));
}

torch::Tensor SmallCnnImpl::forward(torch::Tensor x) {
  for (std::size_t i = 0; i < convs_.size(); ++i) {
    x = torch::relu(norms_[i]->forward(convs_[i]->forward(x)));
    if (i + 1 < convs_.size()) x = torch::max_pool2d(x, 2);
  }
  auto pooled = torch::cat({x.mean({2, 3}), x.amax({2, 3})}, 1);
  return head_->forward(pooled);
}

torch::Tensor prepare_input(const torch::Tensor& images, float mean, float std, std::int64_t input_size) {
  auto x = (images - mean) / std;
  if (input_size > 0 && (x.size(2) != input_size || x.size(3) != input_size)) {
    x = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                  .size(std::vector<std::int64_t>{input_size, input_size})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
  }
  return x;
}

ClassificationMetrics evaluate_classifier(SmallCnn& model,
                                          const std::shared_ptr<const loader::SampleSource>& val,
                                          const EvalOptions& options, std::size_t classes) {
  torch::NoGradGuard no_grad;
  model->eval();
  loader::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.threads = options.threads;
  lo.pin_memory = false;
  loader::Loader loader(val, torch::data::samplers::SequentialSampler(val->size()), lo);
  std::vector<std::int64_t> labels;
  std::vector<double> scores;
  while (auto batch = loader.next()) {
    auto x = prepare_input(batch->images, options.mean, options.std, options.input_size);
    auto probs = torch::softmax(model->forward(x), 1).to(torch::kFloat64).contiguous();
    auto y = batch->labels.contiguous();
    const double* p = probs.data_ptr<double>();
    scores.insert(scores.end(), p, p + probs.numel());
    const std::int64_t* l = y.data_ptr<std::int64_t>();
    labels.insert(labels.end(), l, l + y.numel());
  }
  model->train();
  return classification_metrics(labels, scores, classes);
}

torch::Tensor flatten_parameters(SmallCnn& model) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : model->parameters()) parts.push_back(p.detach().reshape({-1}).to(torch::kFloat32));
  return torch::cat(parts).contiguous();
}

std::string parameter_checksum(const torch::Tensor& flat) {
  return hash_hex(hash64(flat.data_ptr(), static_cast<std::size_t>(flat.numel()) * sizeof(float)));
}

std::string to_string(SamplerChoice choice) {
  switch (choice) {
    case SamplerChoice::kBalanced:
      return "balanced";
    case SamplerChoice::kWeighted:
      return "weighted";
    case SamplerChoice::kNone:
      return "none";
  }
  return "none";
}

SamplerChoice sampler_choice_from_string(const std::string& name) {
  if (name == "balanced") return SamplerChoice::kBalanced;
  if (name == "weighted") return SamplerChoice::kWeighted;
  if (name == "none") return SamplerChoice::kNone;
  throw ConfigError("--sampler is \"" + name + "\"; it must be balanced, weighted or none");
}

void TrainOptions::validate() const {
  auto fail = [](const std::string& what) { throw ConfigError("TrainOptions: " + what); };
  if (epochs < 1) fail("epochs is 0; it must be >= 1");
  if (batch_size < 1) fail("batch_size is 0; it must be >= 1");
  if (threads < 1) fail("threads is 0; it must be >= 1");
  if (compute_threads < 1) fail("compute_threads is 0; it must be >= 1");
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) fail("learning_rate must be > 0 and finite");
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) fail("weight_decay must be >= 0 and finite");
  if (input_size < 0 || input_size > 4096)
    fail("input_size is " + std::to_string(input_size) + "; it must be in [0, 4096]");
  if (width < 4) fail("width is " + std::to_string(width) + "; it must be >= 4");
  if (world_size < 1) fail("world_size is 0; it must be >= 1");
  if (rank >= world_size) {
    fail("rank is " + std::to_string(rank) + "; it must be below world_size " + std::to_string(world_size));
  }
  if (world_size > 1 && !allreduce_sum)
    fail("world_size is " + std::to_string(world_size) + " but allreduce_sum is unset");
  if (resume && checkpoint_dir.empty()) fail("resume needs checkpoint_dir");
  if (checkpoint_every > 0 && checkpoint_dir.empty()) fail("checkpoint_every needs checkpoint_dir");
}

nlohmann::json TrainResult::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json j;
  j["epochs"] = nlohmann::json::array();
  for (const auto& e : epochs) {
    j["epochs"].push_back({{"epoch", e.epoch},
                           {"train_loss", e.train_loss},
                           {"steps", e.steps},
                           {"val", e.val.to_json(class_names)}});
  }
  j["param_checksum"] = param_checksum;
  j["steps"] = steps;
  j["interrupted"] = interrupted;
  if (resumed_from) j["resumed_from"] = {{"epoch", resumed_from->first + 1}, {"batch", resumed_from->second}};
  if (!samples_seen.empty()) j["samples"] = samples_seen;
  return j;
}

TrainResult train(const TrainingData& data, const TrainOptions& options) {
  options.validate();
  check_training_data(data);
  TrainingRun run(data, options, data.class_names.size());
  return run.run();
}

TrainingData synthetic_training_data(const SyntheticOptions& options, double val_fraction) {
  if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
    throw ConfigError("synthetic_training_data: val_fraction is " + std::to_string(val_fraction) +
                      "; it must be in (0, 1)");
  }
  SyntheticNoduleSource full(options);
  const auto patients = full.patient_ids();
  std::vector<std::size_t> train_rows, val_rows;
  for (std::size_t i = 0; i < full.size(); ++i) {
    // A patient-level split: the patient id alone decides the part.
    const double u =
        static_cast<double>(hash64_text(patients[i], options.seed) >> 11) * (1.0 / 9007199254740992.0);
    (u < val_fraction ? val_rows : train_rows).push_back(i);
  }
  auto train = std::make_shared<SyntheticNoduleSource>(full, train_rows);
  auto val = std::make_shared<SyntheticNoduleSource>(full, val_rows);
  TrainingData data;
  data.train_labels = train->labels();
  data.train_patient_ids = train->patient_ids();
  data.class_names = {"normal", "nodule"};
  // The generator's grey levels are centred near 100 of 255 with a spread of about 25.
  data.mean = 0.4f;
  data.std = 0.1f;
  std::int64_t positives = 0;
  for (auto y : data.train_labels) positives += y;
  std::ostringstream d;
  d << "synthetic planted-nodule data: " << train->size() << " train (" << positives << " with a nodule) / "
    << val->size() << " val images of " << options.size << "x" << options.size << " px";
  data.description = d.str();
  data.train = std::move(train);
  data.val = std::move(val);
  return data;
}

}  // namespace medload::examples
