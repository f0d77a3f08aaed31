#pragma once
/// Class weights for the loss, per-sample weights for multi-label datasets, and the warning for
/// correcting the same imbalance twice.

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace medload::samplers {

class StreamSampler;

/// How class weights are derived from class counts n_c (N samples, C classes).
enum class ClassWeighting {
  kInverseFrequency,  ///< w_c proportional to 1 / n_c, normalised so sum(w) = C
  kSqrtInverse,       ///< w_c proportional to 1 / sqrt(n_c), normalised so sum(w) = C
  kBalanced,          ///< w_c = N / (C n_c), as scikit-learn's class_weight="balanced"
  kEffectiveNumber,   ///< w_c proportional to (1 - beta) / (1 - beta^n_c), sum(w) = C (Cui et al. 2019)
};

/// "inverse", "sqrt-inverse", "balanced", "effective-number".
std::string to_string(ClassWeighting weighting);
/// Parses a name of to_string; throws ConfigError naming the value otherwise.
ClassWeighting class_weighting_from_string(const std::string& name);

/// Options of class_weights.
struct ClassWeightOptions {
  /// The weighting scheme.
  ClassWeighting weighting = ClassWeighting::kInverseFrequency;
  /// kEffectiveNumber only: beta in [0, 1); Cui et al. use 0.9, 0.99, 0.999, 0.9999.
  double beta = 0.999;
};

/// Samples per class of single-label `labels` (labels in [0, num_classes); num_classes 0 means
/// max + 1). Throws ConfigError naming the index and value of a negative or out-of-range label.
std::vector<std::int64_t> class_counts(const std::vector<std::int64_t>& labels, std::size_t num_classes = 0);

/// Class weights from `counts`: float32 [C], for `CrossEntropyLoss`'s `weight`. Throws
/// ConfigError naming the class for a count <= 0, and for beta outside [0, 1).
torch::Tensor class_weights(const std::vector<std::int64_t>& counts, ClassWeightOptions options = {});

/// BCE `pos_weight` for multi-label targets: `targets` is [N, C] (any dtype) of 1 (positive; any
/// value > 0), 0 (negative) and -1 (unknown; any value < 0), as CacheDataset serves a multi-label
/// cache. Returns float32 [C] with known negatives_c / known positives_c: an unknown entry is
/// neither, so a partially labeled class is weighted by the samples whose value for it is known.
/// Throws ConfigError naming the class for a class with no known positive (or no known negative)
/// sample, and for a non-2-D or empty tensor.
torch::Tensor pos_weight(const torch::Tensor& targets);

/// How a multi-label sample's weight combines the inverse frequencies of its positive labels.
enum class MultiLabelCombine {
  kMax,   ///< the rarest positive label decides (rare findings are never diluted)
  kMean,  ///< the mean over positive labels
};

/// Per-sample weights for WeightedRandomSampler on a multi-label dataset: `targets` [N, C] of
/// 1/0/-1 as for pos_weight. A sample's weight combines 1 / (positives of c) over its positive
/// labels (unknown entries are not positives); a sample with no positive label but some known
/// negative ("no finding", unknown entries beside it or not) counts as its own class, weight
/// 1 / (number of such samples); a sample whose every entry is unknown gets weight 0 (never drawn:
/// it has nothing to learn from). Returns N float64 weights. Throws ConfigError for a non-2-D or
/// empty tensor.
std::vector<double> multilabel_sample_weights(const torch::Tensor& targets,
                                              MultiLabelCombine combine = MultiLabelCombine::kMax);

/// Per-sample weights 1 / n_{label}: a WeightedRandomSampler over them draws every class equally
/// often in expectation.
std::vector<double> inverse_frequency_sample_weights(const std::vector<std::int64_t>& labels,
                                                     std::size_t num_classes = 0);

/// A warning message when `sampler` already balances classes and `loss_weight` (class weights or
/// pos_weight) is not uniform (max / min > 1 + tolerance): the imbalance would be corrected
/// twice and the model then over-predicts the rare classes. nullopt when there is nothing to say.
std::optional<std::string> double_correction_warning(const StreamSampler& sampler,
                                                     const torch::Tensor& loss_weight,
                                                     double tolerance = 0.1);

}  // namespace medload::samplers
