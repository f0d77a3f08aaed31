#pragma once
/// The examples' classifier: a small CNN for [B,C,H,W] inputs of any size, the input preparation
/// (normalisation after augmentation, optional resize) and its evaluation on a validation source
/// with medload's Loader. Shared by train_classifier / ddp_train (training.h) and
/// train_semisupervised (semisupervised.h).

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/serve/sample_source.h"
#include "metrics.h"

namespace medload::examples {

/// Four 3x3 conv blocks (GroupNorm, not BatchNorm, so that a step does not depend on how a batch
/// is split across ranks or between labelled and unlabelled samples), then global average and
/// global max pooling side by side (max pooling keeps a small finding from being averaged away),
/// then a linear head. `width` is the first block's channels; later ones double up to 4x.
struct SmallCnnImpl : torch::nn::Module {
  SmallCnnImpl(std::int64_t in_channels, std::int64_t classes, std::int64_t width);
  torch::Tensor forward(torch::Tensor x);
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::GroupNorm> norms_;
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(SmallCnn);

/// Normalises [0, 1] pixels, (x - mean) / std, and resizes to input_size x input_size (bilinear;
/// 0 = as they are).
torch::Tensor prepare_input(const torch::Tensor& images, float mean, float std, std::int64_t input_size);

/// How evaluate_classifier reads the validation source.
struct EvalOptions {
  float mean = 0.0f;            ///< see prepare_input
  float std = 1.0f;             ///< see prepare_input
  std::int64_t input_size = 0;  ///< see prepare_input
  std::size_t batch_size = 32;  ///< samples per forward pass
  std::size_t threads = 2;      ///< loader threads
};

/// The model's metrics on every sample of `val` (served in order, unaugmented; softmax scores),
/// in eval mode and without gradients; the model is left in training mode.
ClassificationMetrics evaluate_classifier(SmallCnn& model,
                                          const std::shared_ptr<const loader::SampleSource>& val,
                                          const EvalOptions& options, std::size_t classes);

/// The parameters flattened into one float32 vector, in registration order.
torch::Tensor flatten_parameters(SmallCnn& model);

/// XXH64 of a flattened float32 parameter vector, 16 hex digits.
std::string parameter_checksum(const torch::Tensor& flat);

}  // namespace medload::examples
