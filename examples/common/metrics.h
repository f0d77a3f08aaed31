#pragma once
/// Classification metrics for a validation split: accuracy, balanced accuracy, per-class recall,
/// one-vs-rest ROC AUC and the confusion matrix. Plain C++ over vectors (no torch), so they can be
/// checked exactly on hand-made cases.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medload::examples {

/// ROC AUC of `scores` for a binary target: the probability that a random positive scores higher
/// than a random negative, ties counting one half (the Mann-Whitney U statistic / (P x N), computed
/// with mid-ranks in O(n log n)). `positive[i]` is true for positives. Returns NaN when there is no
/// positive or no negative. Throws ConfigError when the sizes differ or a score is NaN.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

/// `v` as a JSON number, or null when it is NaN or infinite (undefined metrics in the examples'
/// metrics files).
nlohmann::json number_or_null(double v);

/// Metrics of a C-class single-label prediction.
struct ClassificationMetrics {
  /// Samples evaluated (unlabeled samples, label -1, are skipped and not counted).
  std::size_t samples = 0;
  /// Fraction of samples whose arg-max class is the label (ties go to the lowest class).
  double accuracy = 0.0;
  /// Mean recall over the classes present in the labels (scikit-learn's balanced_accuracy_score).
  double balanced_accuracy = 0.0;
  /// Macro one-vs-rest ROC AUC over the classes that have both positives and negatives; for two
  /// classes this is the AUC of class 1's score. NaN when no class qualifies.
  double roc_auc = 0.0;
  /// Recall (sensitivity) per class [C]; NaN for a class absent from the labels.
  std::vector<double> recall;
  /// One-vs-rest ROC AUC per class [C]; NaN where undefined.
  std::vector<double> class_roc_auc;
  /// Samples per class in the labels [C].
  std::vector<std::int64_t> support;
  /// confusion[true][predicted] counts [C][C].
  std::vector<std::vector<std::int64_t>> confusion;

  /// {"samples", "accuracy", "balanced_accuracy", "roc_auc", "recall": {"<class>": ...},
  ///  "roc_auc_per_class": {...}, "support": {...}, "confusion": [[...]]}; NaN is written as null.
  /// `class_names` must have C names (or be empty: classes are then named "0", "1", ...).
  nlohmann::json to_json(const std::vector<std::string>& class_names = {}) const;
};

/// Metrics of `scores` (row-major [N, C] class scores or probabilities; only their order per
/// column and arg-max per row matter) against `labels` [N] (class in [0, C) or -1 = skipped).
/// Throws ConfigError when the sizes disagree, C is 0, a label is out of range or a score is NaN.
ClassificationMetrics classification_metrics(const std::vector<std::int64_t>& labels,
                                             const std::vector<double>& scores, std::size_t num_classes);

}  // namespace medload::examples
