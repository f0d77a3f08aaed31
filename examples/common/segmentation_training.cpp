// The segmentation example's one translation unit with <torch/torch.h> (nn modules, optimizers).
#include "segmentation_training.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "medload/core/error.h"
#include "medload/loader/serve/loader.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "metrics.h"

namespace medload::examples {
namespace {

// Two 3x3 convolutions, each with GroupNorm (batch-size independent, unlike BatchNorm on the small
// batches this trains with) and ReLU.
struct DoubleConvImpl : torch::nn::Module {
  DoubleConvImpl(std::int64_t in, std::int64_t out) {
    const std::int64_t groups = out % 4 == 0 ? 4 : 1;
    conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
    norm1_ = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, out)));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)));
    norm2_ = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, out)));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(norm1_->forward(conv1_->forward(x)));
    return torch::relu(norm2_->forward(conv2_->forward(x)));
  }
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(DoubleConv);

// A U-Net with three poolings: encoder widths w, 2w, 4w, a 8w bottleneck, a decoder that upsamples
// (bilinear) and concatenates the encoder's features at each level, and a 1x1 head of C logits.
// Input float32 [B,1,H,W] of any size (each decoder level is resized to its skip's size);
// output float32 [B,C,H,W].
struct UNetImpl : torch::nn::Module {
  UNetImpl(std::int64_t in_channels, std::int64_t classes, std::int64_t w) {
    const std::int64_t widths[4] = {w, 2 * w, 4 * w, 8 * w};
    std::int64_t in = in_channels;
    for (int level = 0; level < 4; ++level) {
      down_.push_back(register_module("down" + std::to_string(level), DoubleConv(in, widths[level])));
      in = widths[level];
    }
    for (int level = 2; level >= 0; --level) {
      up_.push_back(
          register_module("up" + std::to_string(level), DoubleConv(in + widths[level], widths[level])));
      in = widths[level];
    }
    head_ = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, classes, 1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    std::vector<torch::Tensor> skips;
    for (std::size_t level = 0; level < down_.size(); ++level) {
      if (level > 0) x = torch::max_pool2d(x, 2);
      x = down_[level]->forward(x);
      skips.push_back(x);
    }
    for (std::size_t i = 0; i < up_.size(); ++i) {
      const auto& skip = skips[skips.size() - 2 - i];
      x = torch::nn::functional::interpolate(x,
                                             torch::nn::functional::InterpolateFuncOptions()
                                                 .size(std::vector<std::int64_t>{skip.size(2), skip.size(3)})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false));
      x = up_[i]->forward(torch::cat({x, skip}, 1));
    }
    return head_->forward(x);
  }
  std::vector<DoubleConv> down_, up_;
  torch::nn::Conv2d head_{nullptr};
};
TORCH_MODULE(UNet);

// Cross-entropy plus `dice_weight` x (1 - the mean soft Dice of the foreground classes), over
// the samples whose mask is valid. logits float32 [B,C,H,W], masks int64 [B,1,H,W]. Undefined
// when no sample of the batch has a valid mask.
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& masks,
                                const torch::Tensor& valid, double dice_weight) {
  const auto keep = valid.nonzero().squeeze(1);
  if (keep.numel() == 0) return {};
  const auto z = logits.index_select(0, keep);
  const auto y = masks.index_select(0, keep).squeeze(1);
  auto loss = torch::nn::functional::cross_entropy(z, y);
  if (dice_weight > 0.0) {
    const auto probs = torch::softmax(z, 1);
    const auto onehot = torch::one_hot(y, z.size(1)).permute({0, 3, 1, 2}).to(probs.dtype());
    const auto inter = (probs * onehot).sum({0, 2, 3});
    const auto total = probs.sum({0, 2, 3}) + onehot.sum({0, 2, 3});
    const auto dice = (2.0 * inter + 1.0) / (total + 1.0);  // +1: a class absent from the batch scores 1
    loss = loss + dice_weight * (1.0 - dice.slice(0, 1).mean());
  }
  return loss;
}

// A seeded shuffle of the training part with exact (seed, epoch) replay: one class holding every
// sample, drawn without replacement (medload's ClassBalancedSampler with a target of 1).
std::shared_ptr<samplers::ClassBalancedSampler> make_shuffle(std::size_t n, std::uint64_t seed) {
  samplers::ClassBalancedSamplerOptions so;
  so.mode = samplers::BalanceMode::kTarget;
  so.seed = seed;
  so.num_classes = 1;
  so.num_samples = n;
  so.target = {1.0};
  return std::make_shared<samplers::ClassBalancedSampler>(std::vector<std::int64_t>(n, 0), so);
}

loader::LoaderOptions loader_options(const SegmentationTrainOptions& o, bool augmented) {
  loader::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.threads = o.threads;
  lo.pin_memory = false;
  if (augmented) lo.augment_targets = o.augment;
  return lo;
}

// Checks what training needs of the data; throws ConfigError naming what is missing.
void check_segmentation_data(const SegmentationData& data) {
  if (!data.train || !data.val) throw ConfigError("SegmentationData: train and val sources are required");
  if (data.train->size() == 0) throw ConfigError("SegmentationData: the training part is empty");
  if (data.val->size() == 0) throw ConfigError("SegmentationData: the validation part is empty");
  if (data.class_names.size() < 2) {
    throw ConfigError("SegmentationData: " + std::to_string(data.class_names.size()) +
                      " mask classes; background and at least one structure are needed");
  }
  for (const auto* part : {&data.train, &data.val}) {
    if (!(*part)->targets().masks) {
      throw ConfigError("SegmentationData: the " +
                        std::string(part == &data.train ? "training" : "validation") +
                        " part serves no masks (build the cache from a manifest with a mask column)");
    }
  }
}

// The mask ids of a batch must be classes of the model: a cross-entropy would read out of range.
void check_mask_ids(const torch::Tensor& masks, std::size_t classes) {
  const auto top = masks.max().item<std::int64_t>();
  if (top >= static_cast<std::int64_t>(classes)) {
    throw ConfigError("a served mask holds class id " + std::to_string(top) + "; the classes are 0.." +
                      std::to_string(classes - 1));
  }
}

class SegmentationRun {
 public:
  SegmentationRun(const SegmentationData& data, const SegmentationTrainOptions& o)
      : data_(data),
        options_(o),
        classes_(data.class_names.size()),
        log_(o.log ? *o.log : std::cerr),
        model_(make_model(data, o)),
        optimizer_(model_->parameters(), torch::optim::AdamOptions(o.learning_rate)),
        loader_(data.train, make_shuffle(data.train->size(), o.seed), loader_options(o, true)) {}

  SegmentationTrainResult run() {
    SegmentationTrainResult result;
    for (const auto& p : model_->parameters()) result.parameters += p.numel();
    if (!options_.quiet) {
      log_ << data_.description << "\ntraining: U-Net width " << options_.width << " (" << result.parameters
           << " parameters), " << options_.epochs << " epochs, batch " << options_.batch_size
           << (options_.augment ? ", augmented" : ", no augmentation") << "\n";
    }
    for (std::size_t epoch = 0; epoch < options_.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      SegmentationEpoch record;
      record.epoch = epoch + 1;
      record.train_loss = train_epoch(epoch);
      record.val = evaluate();
      record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!options_.quiet) log_epoch(record);
      result.epochs.push_back(std::move(record));
    }
    return result;
  }

 private:
  static UNet make_model(const SegmentationData& data, const SegmentationTrainOptions& o) {
    torch::set_num_threads(static_cast<int>(o.compute_threads));
    torch::manual_seed(o.seed);
    return UNet(data.train->layout().channels, static_cast<std::int64_t>(data.class_names.size()), o.width);
  }

  // One epoch over the training part; the mean loss per sample with a valid mask.
  double train_epoch(std::size_t epoch) {
    model_->train();
    loader_.set_epoch(epoch);
    double loss_sum = 0.0, samples = 0.0;
    while (auto batch = loader_.next()) {
      check_mask_ids(batch->masks, classes_);
      optimizer_.zero_grad();
      const auto loss = segmentation_loss(model_->forward(batch->images), batch->masks, batch->mask_valid,
                                          options_.dice_weight);
      if (!loss.defined()) continue;  // no sample of the batch has a mask
      loss.backward();
      optimizer_.step();
      const auto n = batch->mask_valid.sum().item<double>();
      loss_sum += loss.item<double>() * n;
      samples += n;
    }
    return samples > 0 ? loss_sum / samples : std::nan("");
  }

  // Arg-max predictions on the validation part, counted against its valid masks.
  SegmentationMetrics evaluate() {
    torch::NoGradGuard no_grad;
    model_->eval();
    loader::Loader val(data_.val, torch::data::samplers::SequentialSampler(data_.val->size()),
                       loader_options(options_, false));
    SegmentationConfusion confusion(classes_);
    while (auto batch = val.next()) {
      check_mask_ids(batch->masks, classes_);
      const auto predicted = model_->forward(batch->images).argmax(1).contiguous();  // int64 [B,H,W]
      const auto truth = batch->masks.squeeze(1).contiguous();
      const auto valid = batch->mask_valid.to(torch::kBool);
      for (std::int64_t b = 0; b < truth.size(0); ++b) {
        if (!valid[b].item<bool>()) continue;
        const auto t = truth[b].contiguous(), p = predicted[b].contiguous();
        confusion.add(t.data_ptr<std::int64_t>(), p.data_ptr<std::int64_t>(),
                      static_cast<std::size_t>(t.numel()));
      }
    }
    return confusion.metrics();
  }

  void log_epoch(const SegmentationEpoch& r) {
    std::ostringstream line;  // formatted apart, so the log stream's own settings stay as they were
    line << "epoch " << r.epoch << "/" << options_.epochs << std::fixed << std::setprecision(4)
         << "  train_loss " << r.train_loss << std::setprecision(3) << "  val pixel_acc "
         << r.val.pixel_accuracy << "  mean_dice " << r.val.mean_dice << "  dice";
    for (std::size_t c = 1; c < classes_; ++c) line << ' ' << data_.class_names[c] << ' ' << r.val.dice[c];
    line << std::setprecision(1) << "  (" << r.seconds << " s)\n";
    log_ << line.str();
  }

  const SegmentationData& data_;
  const SegmentationTrainOptions& options_;
  const std::size_t classes_;
  std::ostream& log_;
  UNet model_;
  torch::optim::Adam optimizer_;
  loader::Loader loader_;
};

}  // namespace

void SegmentationTrainOptions::validate() const {
  auto fail = [](const std::string& what) { throw ConfigError("SegmentationTrainOptions: " + what); };
  if (epochs < 1) fail("epochs is 0; it must be >= 1");
  if (batch_size < 1) fail("batch_size is 0; it must be >= 1");
  if (threads < 1) fail("threads is 0; it must be >= 1");
  if (compute_threads < 1) fail("compute_threads is 0; it must be >= 1");
  if (width < 2) fail("width is " + std::to_string(width) + "; it must be >= 2");
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) fail("learning_rate must be > 0 and finite");
  if (!(dice_weight >= 0.0) || !std::isfinite(dice_weight)) fail("dice_weight must be >= 0 and finite");
}

nlohmann::json SegmentationTrainResult::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json j;
  j["epochs"] = nlohmann::json::array();
  for (const auto& e : epochs) {
    j["epochs"].push_back({{"epoch", e.epoch},
                           {"train_loss", number_or_null(e.train_loss)},
                           {"seconds", e.seconds},
                           {"val", e.val.to_json(class_names)}});
  }
  if (!epochs.empty()) j["val"] = epochs.back().val.to_json(class_names);
  j["parameters"] = parameters;
  return j;
}

SegmentationTrainResult train_segmenter_model(const SegmentationData& data,
                                              const SegmentationTrainOptions& options) {
  options.validate();
  check_segmentation_data(data);
  SegmentationRun run(data, options);
  return run.run();
}

}  // namespace medload::examples
