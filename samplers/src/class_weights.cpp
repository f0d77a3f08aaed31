#include "medload/samplers/class_weights.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "medload/core/enum_names.h"
#include "medload/core/error.h"
#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

namespace {
constexpr auto kWeightingNames =
    core::enum_names<ClassWeighting>({{ClassWeighting::kInverseFrequency, "inverse"},
                                      {ClassWeighting::kSqrtInverse, "sqrt-inverse"},
                                      {ClassWeighting::kBalanced, "balanced"},
                                      {ClassWeighting::kEffectiveNumber, "effective-number"}});
}  // namespace

std::string to_string(ClassWeighting weighting) { return std::string(kWeightingNames.name(weighting, "unknown")); }

ClassWeighting class_weighting_from_string(const std::string& name) {
  return kWeightingNames.value(name, "ClassWeightOptions.weighting");
}

std::vector<std::int64_t> class_counts(const std::vector<std::int64_t>& labels, std::size_t num_classes) {
  std::int64_t max_label = -1;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || (num_classes > 0 && static_cast<std::uint64_t>(labels[i]) >= num_classes)) {
      throw ConfigError("labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                        " is outside [0, " + (num_classes > 0 ? std::to_string(num_classes) : "inf") + ")");
    }
    max_label = std::max(max_label, labels[i]);
  }
  std::vector<std::int64_t> counts(num_classes > 0 ? num_classes : static_cast<std::size_t>(max_label + 1),
                                   0);
  for (std::int64_t label : labels) ++counts[static_cast<std::size_t>(label)];
  return counts;
}

torch::Tensor class_weights(const std::vector<std::int64_t>& counts, ClassWeightOptions options) {
  if (counts.empty()) throw ConfigError("class_weights: counts is empty (zero classes)");
  if (options.weighting == ClassWeighting::kEffectiveNumber && !(options.beta >= 0.0 && options.beta < 1.0)) {
    std::ostringstream message;
    message << "ClassWeightOptions.beta = " << options.beta << ": must be in [0, 1)";
    throw ConfigError(message.str());
  }
  const std::size_t classes = counts.size();
  double total = 0.0;
  for (std::size_t c = 0; c < classes; ++c) {
    if (counts[c] <= 0) {
      throw ConfigError("class_weights: class " + std::to_string(c) + " has count " +
                        std::to_string(counts[c]) + "; a class with no samples has no finite weight");
    }
    total += static_cast<double>(counts[c]);
  }
  std::vector<double> w(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    const double n = static_cast<double>(counts[c]);
    switch (options.weighting) {
      case ClassWeighting::kInverseFrequency:
        w[c] = 1.0 / n;
        break;
      case ClassWeighting::kSqrtInverse:
        w[c] = 1.0 / std::sqrt(n);
        break;
      case ClassWeighting::kBalanced:
        w[c] = total / (static_cast<double>(classes) * n);
        break;
      // (1 - beta) / (1 - beta^n) with expm1/log1p: stays accurate for beta close to 1.
      case ClassWeighting::kEffectiveNumber:
        w[c] = options.beta == 0.0
                   ? 1.0
                   : -std::expm1(std::log(options.beta)) / -std::expm1(n * std::log(options.beta));
        break;
    }
  }
  if (options.weighting != ClassWeighting::kBalanced) {
    double sum = 0.0;
    for (double v : w) sum += v;
    for (double& v : w) v *= static_cast<double>(classes) / sum;
  }
  torch::Tensor result = torch::empty({static_cast<std::int64_t>(classes)}, torch::kFloat32);
  float* out = result.data_ptr<float>();
  for (std::size_t c = 0; c < classes; ++c) out[c] = static_cast<float>(w[c]);
  return result;
}

namespace {

// `targets` as int8 [N, C] on the CPU: 1 where it is > 0 (positive), 0 where it is 0 (negative),
// -1 where it is < 0 (unknown).
torch::Tensor checked_targets(const torch::Tensor& targets, const char* what) {
  if (!targets.defined() || targets.dim() != 2 || targets.size(0) == 0 || targets.size(1) == 0) {
    throw ConfigError(std::string(what) + ": targets must be a non-empty [N, C] tensor of 1/0/-1, got " +
                      (targets.defined() ? std::to_string(targets.dim()) + "-D with " +
                                               std::to_string(targets.numel()) + " elements"
                                         : std::string("an undefined tensor")));
  }
  const torch::Tensor t = targets.to(torch::kCPU);
  return (t.gt(0).to(torch::kInt8) - t.lt(0).to(torch::kInt8)).contiguous();
}

// Known positives and known negatives per class of int8 [N, C] targets (unknown entries count in
// neither).
struct KnownCounts {
  std::vector<std::int64_t> positives, negatives;
};

KnownCounts known_counts(const torch::Tensor& t) {
  const std::int64_t n = t.size(0), classes = t.size(1);
  const std::int8_t* data = t.data_ptr<std::int8_t>();
  KnownCounts counts{std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0),
                     std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0)};
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t c = 0; c < classes; ++c) {
      const std::int8_t v = data[i * classes + c];
      if (v == 1) ++counts.positives[static_cast<std::size_t>(c)];
      if (v == 0) ++counts.negatives[static_cast<std::size_t>(c)];
    }
  }
  return counts;
}

}  // namespace

torch::Tensor pos_weight(const torch::Tensor& targets) {
  const torch::Tensor t = checked_targets(targets, "pos_weight");
  const std::int64_t n = t.size(0), classes = t.size(1);
  const KnownCounts counts = known_counts(t);
  torch::Tensor result = torch::empty({classes}, torch::kFloat32);
  float* out = result.data_ptr<float>();
  for (std::int64_t c = 0; c < classes; ++c) {
    const std::int64_t pos = counts.positives[static_cast<std::size_t>(c)];
    const std::int64_t neg = counts.negatives[static_cast<std::size_t>(c)];
    if (pos == 0 || neg == 0) {
      throw ConfigError("pos_weight: class " + std::to_string(c) + " has " + std::to_string(pos) +
                        " positives of " + std::to_string(pos + neg) + " samples whose value is known (" +
                        std::to_string(n - pos - neg) +
                        " unknown); pos_weight needs both positives and negatives");
    }
    out[c] = static_cast<float>(static_cast<double>(neg) / static_cast<double>(pos));
  }
  return result;
}

namespace {

// 1 / (positives of c) over the positive labels (1) of `row`, combined; 0 when it has none.
double positive_label_weight(const std::int8_t* row, const std::vector<std::int64_t>& positives,
                             MultiLabelCombine combine) {
  double best = 0.0, sum = 0.0;
  int count = 0;
  for (std::size_t c = 0; c < positives.size(); ++c) {
    if (row[c] != 1) continue;
    const double w = 1.0 / static_cast<double>(positives[c]);
    best = std::max(best, w);
    sum += w;
    ++count;
  }
  if (count == 0) return 0.0;
  return combine == MultiLabelCombine::kMax ? best : sum / count;
}

}  // namespace

std::vector<double> multilabel_sample_weights(const torch::Tensor& targets, MultiLabelCombine combine) {
  const torch::Tensor t = checked_targets(targets, "multilabel_sample_weights");
  const auto n = static_cast<std::size_t>(t.size(0)), classes = static_cast<std::size_t>(t.size(1));
  const std::int8_t* data = t.data_ptr<std::int8_t>();
  const std::vector<std::int64_t> positives = known_counts(t).positives;
  // Rows without a positive: "no finding" when some entry is known (0), unknown throughout else.
  const auto no_finding = [&](std::size_t i) {
    const std::int8_t* row = data + i * classes;
    return std::find(row, row + classes, 1) == row + classes &&
           std::find(row, row + classes, 0) != row + classes;
  };
  double empty = 0.0;
  for (std::size_t i = 0; i < n; ++i) empty += no_finding(i) ? 1.0 : 0.0;
  std::vector<double> weights(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    weights[i] = no_finding(i) ? 1.0 / empty : positive_label_weight(data + i * classes, positives, combine);
  }
  return weights;
}

std::vector<double> inverse_frequency_sample_weights(const std::vector<std::int64_t>& labels,
                                                     std::size_t num_classes) {
  const std::vector<std::int64_t> counts = class_counts(labels, num_classes);
  std::vector<double> weights(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    weights[i] = 1.0 / static_cast<double>(counts[static_cast<std::size_t>(labels[i])]);
  }
  return weights;
}

std::optional<std::string> double_correction_warning(const StreamSampler& sampler,
                                                     const torch::Tensor& loss_weight, double tolerance) {
  if (!sampler.balances_classes() || !loss_weight.defined() || loss_weight.numel() < 2) return std::nullopt;
  const torch::Tensor w = loss_weight.to(torch::kCPU).to(torch::kFloat64).flatten();
  const double lo = w.min().item<double>(), hi = w.max().item<double>();
  if (!(lo > 0.0) || hi / lo <= 1.0 + tolerance) return std::nullopt;
  std::ostringstream message;
  message << "medload: the " << sampler.kind()
          << " sampler already balances classes and the loss weights are not "
          << "uniform (max/min = " << hi / lo
          << "): the imbalance is corrected twice, which biases the model "
          << "towards the rare classes. Use one of the two (or uniform loss weights).";
  return message.str();
}

}  // namespace medload::samplers
