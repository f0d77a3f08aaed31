// The semi-supervised example's training code (semisupervised.h).
#include "semisupervised.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "medload/augment/augmenter.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/progress.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/loader/serve/loader.h"
#include "medload/samplers/semi_supervised_sampler.h"
#include "small_cnn.h"

namespace medload::examples {

// ---- Data -----------------------------------------------------------------------------------------

SemiSupervisedData load_semisupervised_data(const std::string& cache, const std::string& split) {
  loader::DatasetOptions options;
  options.split = split;
  options.part = "train";
  const loader::CacheDataset stats(cache, options);  // the stored training mean and std
  options.normalize = false;                         // augmentation works on [0, 1]
  loader::CacheDataset train(cache, options);
  if (train.source()->label_columns() != 0) {
    throw ConfigError("--cache " + cache +
                      " is a multi-label cache; this example trains one class per image");
  }
  options.part = "val";
  loader::CacheDataset val(cache, options);
  SemiSupervisedData data;
  data.train = train.source();
  data.train_labels = train.labels();
  data.train_patient_ids = train.patient_ids();
  data.val = val.source();
  try {
    options.part = "test";
    data.test = loader::CacheDataset(cache, options).source();
  } catch (const ConfigError&) {
    data.test = nullptr;  // a split without a test part (k-fold): val alone
  }
  data.class_names = train.class_names();
  data.mean = stats.mean();
  data.std = stats.std();
  std::ostringstream d;
  d << cache << ": split \"" << split << "\", " << data.train->size() << " train / " << data.val->size()
    << " val" << (data.test ? " / " + std::to_string(data.test->size()) + " test" : std::string())
    << " images of " << train.layout().height << "x" << train.layout().width << " px";
  data.description = d.str();
  return data;
}

namespace {

// The unit whose labels are kept or hidden together, per row: its patient (the row itself when
// it has no id), or with unit_rows > 0 a block of unit_rows consecutive rows of that patient.
std::vector<std::string> label_units(const std::vector<std::string>& patient_ids, std::size_t unit_rows) {
  std::map<std::string, std::size_t> seen;
  std::vector<std::string> units(patient_ids.size());
  for (std::size_t row = 0; row < patient_ids.size(); ++row) {
    const std::string patient =
        patient_ids[row].empty() ? "#row " + std::to_string(row) : "id " + patient_ids[row];
    const std::size_t rank = seen[patient]++;
    units[row] = unit_rows == 0 ? patient : patient + " #block " + std::to_string(rank / unit_rows);
  }
  return units;
}

// Each labelled unit's class: the most frequent label of its rows (ties: the smallest class).
std::map<std::string, std::int64_t> unit_classes(const std::vector<std::int64_t>& labels,
                                                 const std::vector<std::string>& units, std::size_t classes) {
  std::map<std::string, std::vector<std::size_t>> counts;
  for (std::size_t row = 0; row < labels.size(); ++row) {
    if (labels[row] < 0) continue;
    auto& c = counts[units[row]];
    c.resize(classes);
    ++c[static_cast<std::size_t>(labels[row])];
  }
  std::map<std::string, std::int64_t> out;
  for (const auto& [unit, c] : counts) {
    out[unit] = static_cast<std::int64_t>(std::max_element(c.begin(), c.end()) - c.begin());
  }
  return out;
}

}  // namespace

LabelBudget keep_labels_by_patient(const std::vector<std::int64_t>& labels,
                                   const std::vector<std::string>& patient_ids, std::size_t classes,
                                   double fraction, std::uint64_t seed, std::size_t unit_rows) {
  if (!(fraction > 0.0 && fraction < 1.0)) {
    throw ConfigError(
        "--label-fraction is " + std::to_string(fraction) +
        "; it must be above 0 and below 1 (the share of training patients whose labels are kept)");
  }
  if (patient_ids.size() != labels.size()) throw ConfigError("one patient id per training row is needed");
  for (const std::int64_t label : labels) {
    if (label >= static_cast<std::int64_t>(classes)) {
      throw ConfigError("training label " + std::to_string(label) + " is outside the " +
                        std::to_string(classes) + " classes");
    }
  }
  const auto units = label_units(patient_ids, unit_rows);
  // Per class, units in the order of a seeded hash of their key; the first share is kept.
  std::vector<std::vector<std::pair<std::uint64_t, std::string>>> by_class(classes);
  for (const auto& [unit, c] : unit_classes(labels, units, classes)) {
    by_class[static_cast<std::size_t>(c)].emplace_back(hash64_text(unit, seed), unit);
  }
  std::map<std::string, bool> kept;
  LabelBudget budget;
  for (auto& class_units : by_class) {
    if (class_units.empty()) continue;
    std::sort(class_units.begin(), class_units.end());
    const auto keep = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::lround(fraction * static_cast<double>(class_units.size()))));
    for (std::size_t i = 0; i < class_units.size(); ++i) kept[class_units[i].second] = i < keep;
    budget.kept_units += std::min(keep, class_units.size());
    budget.labelled_units += class_units.size();
  }
  budget.labels.resize(labels.size(), -1);
  for (std::size_t row = 0; row < labels.size(); ++row) {
    if (labels[row] >= 0 && kept[units[row]]) budget.labels[row] = labels[row];
    ++(budget.labels[row] >= 0 ? budget.labelled_rows : budget.unlabelled_rows);
  }
  if (budget.unlabelled_rows == 0) {
    throw ConfigError(
        "keeping the labels of " + std::to_string(budget.kept_units) + " of " +
        std::to_string(budget.labelled_units) +
        " labelled units leaves no unlabelled training row: semi-supervised training needs some "
        "(a smaller --label-fraction, or --unit-rows N to hide labels by blocks of a patient's rows)");
  }
  return budget;
}

void SemiSupervisedRunOptions::validate() const {
  if (labelled_batch == 0) throw ConfigError("--batch must be >= 1 (labelled rows per step)");
  if (mu == 0)
    throw ConfigError("--mu must be >= 1 (unlabelled rows per labelled row); mu 0 is a supervised run");
  if (steps == 0) throw ConfigError("--steps must be >= 1");
  if (!(threshold > 0.0 && threshold <= 1.0)) {
    throw ConfigError("--threshold is " + std::to_string(threshold) + "; it must be in (0, 1]");
  }
  if (!(lambda_u >= 0.0) || !std::isfinite(lambda_u)) throw ConfigError("--lambda-u must be finite and >= 0");
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    throw ConfigError("--lr must be finite and > 0");
  if (threads == 0) throw ConfigError("--threads must be >= 1");
  if (width < 4) throw ConfigError("the model width must be >= 4");
}

// ---- Training -------------------------------------------------------------------------------------

namespace {

// One run: the sampler, loader, model and optimizer, and the FixMatch step.
class Run {
 public:
  Run(const SemiSupervisedData& data, const LabelBudget& budget, const SemiSupervisedRunOptions& o,
      bool use_unlabelled)
      : data_(data),
        options_(o),
        use_unlabelled_(use_unlabelled),
        sampler_(make_sampler(budget, o)),
        model_(make_model(data, o)),
        optimizer_(model_->parameters(), torch::optim::AdamOptions(o.learning_rate).weight_decay(1e-4)),
        loader_(data.train, sampler_, loader_options(o, use_unlabelled)) {}

  SemiSupervisedResult run() {
    const auto start = std::chrono::steady_clock::now();
    const bool verbose = !options_.quiet;
    std::ostream& log = options_.log ? *options_.log : std::cerr;
    Progress progress(std::string(use_unlabelled_ ? "semi-supervised" : "supervised") + " seed " +
                          std::to_string(options_.seed),
                      options_.steps, "steps", verbose ? ProgressStyle::kAuto : ProgressStyle::kQuiet, &log);
    for (std::size_t epoch = 0; step_ < options_.steps; ++epoch) {
      loader_.set_epoch(epoch);
      while (step_ < options_.steps) {
        auto batch = loader_.next();
        if (!batch) break;
        train_step(*batch);
        progress.advance();
      }
    }
    progress.finish();
    SemiSupervisedResult result;
    result.steps = step_;
    result.mask_rate = masked_ > 0 ? static_cast<double>(confident_) / static_cast<double>(masked_) : 0.0;
    result.pseudo_label_accuracy = checked_ > 0
                                       ? static_cast<double>(correct_) / static_cast<double>(checked_)
                                       : std::numeric_limits<double>::quiet_NaN();
    const EvalOptions eval{data_.mean, data_.std, 0, 64, options_.threads};
    const std::size_t classes = data_.class_names.size();
    result.val = evaluate_classifier(model_, data_.val, eval, classes);
    if (data_.test) result.test = evaluate_classifier(model_, data_.test, eval, classes);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

 private:
  static std::shared_ptr<samplers::SemiSupervisedSampler> make_sampler(const LabelBudget& budget,
                                                                       const SemiSupervisedRunOptions& o) {
    samplers::SemiSupervisedOptions so;
    so.labelled_batch = o.labelled_batch;
    so.mu = o.mu;
    so.seed = o.seed;
    return std::make_shared<samplers::SemiSupervisedSampler>(
        samplers::make_semi_supervised_sampler(budget.labels, so, samplers::LabelledBalance::kOversample));
  }

  static SmallCnn make_model(const SemiSupervisedData& data, const SemiSupervisedRunOptions& o) {
    torch::manual_seed(o.seed);
    return SmallCnn(data.train->layout().channels, static_cast<std::int64_t>(data.class_names.size()),
                    o.width);
  }

  // Both runs augment the rows the same way (the weak view); the semi-supervised one also serves
  // the strong view. Views are keyed by the run's seed.
  loader::LoaderOptions loader_options(const SemiSupervisedRunOptions& o, bool use_unlabelled) const {
    augment::AugmentOptions weak = augment::AugmentOptions::weak_view();
    augment::AugmentOptions strong = augment::AugmentOptions::strong_view();
    weak.seed = strong.seed = o.seed;
    const auto views = augment::make_two_view_hooks(weak, strong, 1);
    loader::LoaderOptions lo;
    lo.batch_size = sampler_->step_size();
    lo.threads = o.threads;
    lo.pin_memory = false;
    lo.augment = views.weak;
    if (use_unlabelled) lo.augment_strong = views.strong;
    return lo;
  }

  void train_step(const loader::Batch& batch) {
    const auto b = static_cast<std::int64_t>(options_.labelled_batch);
    const auto n = batch.images.size(0);
    auto x_labelled = prepare_input(batch.images.narrow(0, 0, b), data_.mean, data_.std, 0);
    auto y = batch.labels.narrow(0, 0, b);
    optimizer_.zero_grad();
    torch::Tensor loss;
    if (!use_unlabelled_) {
      loss = torch::nn::functional::cross_entropy(model_->forward(x_labelled), y);
    } else {
      torch::Tensor pseudo, confident;
      {
        torch::NoGradGuard no_grad;
        auto weak = prepare_input(batch.images.narrow(0, b, n - b), data_.mean, data_.std, 0);
        auto [probability, label] = torch::softmax(model_->forward(weak), 1).max(1);
        pseudo = label;
        confident = probability.ge(options_.threshold).to(torch::kFloat32);
      }
      auto strong = prepare_input(batch.images_strong.narrow(0, b, n - b), data_.mean, data_.std, 0);
      auto logits = model_->forward(torch::cat({x_labelled, strong}));
      auto supervised = torch::nn::functional::cross_entropy(logits.narrow(0, 0, b), y);
      auto per_row = torch::nn::functional::cross_entropy(
          logits.narrow(0, b, n - b), pseudo,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      loss = supervised + options_.lambda_u * (per_row * confident).mean();
      count_pseudo_labels(batch, pseudo, confident, b);
    }
    loss.backward();
    optimizer_.step();
    ++step_;
  }

  // The pseudo-label figures over the last quarter of the run; the stored labels of unlabelled
  // rows are only compared with, never trained on.
  void count_pseudo_labels(const loader::Batch& batch, const torch::Tensor& pseudo,
                           const torch::Tensor& confident, std::int64_t b) {
    if (4 * (step_ + 1) <= 3 * options_.steps) return;
    const auto stored = batch.labels.narrow(0, b, pseudo.size(0));
    for (std::int64_t i = 0; i < pseudo.size(0); ++i) {
      ++masked_;
      if (confident[i].item<float>() == 0.0f) continue;
      ++confident_;
      const std::int64_t truth = stored[i].item<std::int64_t>();
      if (truth < 0) continue;
      ++checked_;
      correct_ += truth == pseudo[i].item<std::int64_t>();
    }
  }

  const SemiSupervisedData& data_;
  const SemiSupervisedRunOptions& options_;
  const bool use_unlabelled_;
  std::shared_ptr<samplers::SemiSupervisedSampler> sampler_;
  SmallCnn model_;
  torch::optim::Adam optimizer_;
  loader::Loader loader_;
  std::size_t step_ = 0;
  std::size_t masked_ = 0, confident_ = 0, checked_ = 0, correct_ = 0;
};

}  // namespace

SemiSupervisedResult train_semisupervised(const SemiSupervisedData& data, const LabelBudget& budget,
                                          const SemiSupervisedRunOptions& options, bool use_unlabelled) {
  options.validate();
  torch::set_num_threads(1);
  return Run(data, budget, options, use_unlabelled).run();
}

// ---- The metrics file -----------------------------------------------------------------------------

namespace {

nlohmann::json run_json(const SemiSupervisedResult& r, const std::vector<std::string>& names, bool semi) {
  nlohmann::json j = {{"val", r.val.to_json(names)}, {"steps", r.steps}, {"seconds", r.seconds}};
  if (r.test.samples > 0) j["test"] = r.test.to_json(names);
  if (semi) {
    j["mask_rate"] = r.mask_rate;
    j["pseudo_label_accuracy"] = number_or_null(r.pseudo_label_accuracy);
  }
  return j;
}

// Mean and sample standard deviation of the finite values (NaN when there are none).
std::pair<double, double> mean_sd(const std::vector<double>& values) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty()) return {std::nan(""), std::nan("")};
  double mean = 0.0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - mean) * (x - mean);
  const double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : std::nan("");
  return {mean, sd};
}

// One metric over the seeds: both runs' means and the paired difference.
nlohmann::json compare_metric(const std::vector<double>& supervised, const std::vector<double>& semi) {
  std::vector<double> diff(supervised.size());
  for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = semi[i] - supervised[i];
  const auto [sup_mean, sup_sd] = mean_sd(supervised);
  const auto [semi_mean, semi_sd] = mean_sd(semi);
  const auto [d_mean, d_sd] = mean_sd(diff);
  std::size_t n = 0;
  for (double d : diff) n += std::isfinite(d);
  const double se = n > 1 ? d_sd / std::sqrt(static_cast<double>(n)) : std::nan("");
  const bool within_noise = !(n > 1 && std::isfinite(se) && std::fabs(d_mean) >= 2.0 * se && d_mean != 0.0);
  return {{"supervised_mean", number_or_null(sup_mean)},
          {"supervised_sd", number_or_null(sup_sd)},
          {"semi_supervised_mean", number_or_null(semi_mean)},
          {"semi_supervised_sd", number_or_null(semi_sd)},
          {"difference_mean", number_or_null(d_mean)},
          {"difference_sd", number_or_null(d_sd)},
          {"seeds", n},
          {"within_noise", within_noise}};
}

}  // namespace

nlohmann::json compare_runs(const std::vector<std::uint64_t>& seeds, const std::vector<LabelBudget>& budgets,
                            const std::vector<SemiSupervisedResult>& supervised,
                            const std::vector<SemiSupervisedResult>& semi, const SemiSupervisedData& data,
                            const SemiSupervisedRunOptions& options, double fraction, std::size_t unit_rows) {
  nlohmann::json runs = nlohmann::json::array();
  std::vector<double> bacc[2], auc[2];
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const LabelBudget& b = budgets[i];
    runs.push_back({{"seed", seeds[i]},
                    {"kept_units", b.kept_units},
                    {"labelled_units", b.labelled_units},
                    {"labelled_rows", b.labelled_rows},
                    {"unlabelled_rows", b.unlabelled_rows},
                    {"supervised", run_json(supervised[i], data.class_names, false)},
                    {"semi_supervised", run_json(semi[i], data.class_names, true)}});
    bacc[0].push_back(supervised[i].val.balanced_accuracy);
    bacc[1].push_back(semi[i].val.balanced_accuracy);
    auc[0].push_back(supervised[i].val.roc_auc);
    auc[1].push_back(semi[i].val.roc_auc);
  }
  return {{"data", data.description},
          {"classes", data.class_names},
          {"label_fraction", fraction},
          {"label_unit", unit_rows == 0 ? std::string("patient")
                                        : "blocks of " + std::to_string(unit_rows) + " rows of a patient"},
          {"labelled_batch", options.labelled_batch},
          {"mu", options.mu},
          {"steps", options.steps},
          {"threshold", options.threshold},
          {"lambda_u", options.lambda_u},
          {"runs", runs},
          {"val_balanced_accuracy", compare_metric(bacc[0], bacc[1])},
          {"val_roc_auc", compare_metric(auc[0], auc[1])}};
}

}  // namespace medload::examples
