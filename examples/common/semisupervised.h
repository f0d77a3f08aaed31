#pragma once
/// The semi-supervised example's training code (train_semisupervised, docs/semisupervised.md):
/// hide the labels of most training patients, then train the same small CNN for the same steps
/// with the same seed twice: on the labelled rows alone, and FixMatch-style with the unlabelled
/// rest (pseudo-labels from the weak view above a confidence threshold, cross-entropy on the
/// strong view). Both runs draw their batches from one medload SemiSupervisedSampler (B labelled
/// + mu x B unlabelled rows per step), so their labelled batches are identical: the only
/// difference is the unlabelled term.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/serve/sample_source.h"
#include "metrics.h"

namespace medload::examples {

/// A cache's parts for the example, served as float32 in [0, 1].
struct SemiSupervisedData {
  /// The training part, every row (labelled and unlabelled).
  std::shared_ptr<const loader::SampleSource> train;
  /// Labels of the training rows as stored (-1 = unlabelled in the cache).
  std::vector<std::int64_t> train_labels;
  /// Patient ids of the training rows ("" = unknown: the row is its own patient).
  std::vector<std::string> train_patient_ids;
  /// The validation part (the reported metrics).
  std::shared_ptr<const loader::SampleSource> val;
  /// The test part, when the split has one (reported beside val); may be null.
  std::shared_ptr<const loader::SampleSource> test;
  /// Class names [C].
  std::vector<std::string> class_names;
  /// The training part's mean and std (normalisation after augmentation).
  float mean = 0.0f;
  float std = 1.0f;
  /// One line for the log.
  std::string description;
};

/// The train/val/test parts of the stored split `split` of `cache`. Throws ConfigError when the
/// cache is multi-label or the split has no train or val part, and the cache's own errors.
SemiSupervisedData load_semisupervised_data(const std::string& cache, const std::string& split);

/// Which training labels a run keeps.
struct LabelBudget {
  /// One per training row: the stored label for rows of kept patients, -1 for the rest.
  std::vector<std::int64_t> labels;
  /// Units (patients, or blocks of a patient's rows) whose labels are kept, and all labelled units.
  std::size_t kept_units = 0;
  std::size_t labelled_units = 0;
  /// Rows with a kept label, and rows without one (hidden or unlabelled in the cache).
  std::size_t labelled_rows = 0;
  std::size_t unlabelled_rows = 0;
};

/// Keeps the labels of `fraction` of the labelled units of each class (rounded, at least one per
/// class), chosen by a seeded hash of the unit, and hides the others. A unit is a patient (a row
/// without a patient id is its own), or with unit_rows > 0 a block of unit_rows consecutive rows
/// of one patient (for data with a few large patients, whole patients leave nothing to hide). A
/// unit's class is the most frequent label of its rows. Throws ConfigError unless
/// 0 < fraction < 1, or when no row is left without a label.
LabelBudget keep_labels_by_patient(const std::vector<std::int64_t>& labels,
                                   const std::vector<std::string>& patient_ids, std::size_t classes,
                                   double fraction, std::uint64_t seed, std::size_t unit_rows = 0);

/// Options of one run.
struct SemiSupervisedRunOptions {
  /// Labelled rows per step, B (>= 1).
  std::size_t labelled_batch = 8;
  /// Unlabelled rows per labelled row, mu (>= 1): mu x B unlabelled rows per step.
  std::size_t mu = 7;
  /// Optimizer steps (>= 1).
  std::size_t steps = 200;
  /// Pseudo-labels count only where the weak view's top probability is at least this (0..1].
  double threshold = 0.95;
  /// Weight of the unlabelled loss (>= 0).
  double lambda_u = 1.0;
  /// Seed of the model, the sampler and both views.
  std::uint64_t seed = 0;
  /// Adam learning rate.
  double learning_rate = 1e-3;
  /// Loader threads.
  std::size_t threads = 2;
  /// Width of the CNN's first convolution.
  std::int64_t width = 16;
  /// Where progress goes (nullptr = std::cerr); nothing when quiet.
  std::ostream* log = nullptr;
  bool quiet = false;
  /// Throws ConfigError naming the field and its limit.
  void validate() const;
};

/// What one run gives.
struct SemiSupervisedResult {
  /// Metrics on the validation part after the last step.
  ClassificationMetrics val;
  /// Metrics on the test part (samples 0 when there is none).
  ClassificationMetrics test;
  /// Steps taken.
  std::size_t steps = 0;
  /// With the unlabelled term: the share of unlabelled rows whose pseudo-label passed the
  /// threshold, over the last quarter of the steps (0 without it).
  double mask_rate = 0.0;
  /// Of those, the share whose pseudo-label equals the row's stored label, where the cache has
  /// one (a diagnostic only: those labels are never trained on); NaN when none qualifies.
  double pseudo_label_accuracy = 0.0;
  /// Wall time of the run, seconds.
  double seconds = 0.0;
};

/// Trains one run on `data` with the rows `budget` labels (see the file comment): with
/// `use_unlabelled` false the unlabelled rows of each step are read but unused.
SemiSupervisedResult train_semisupervised(const SemiSupervisedData& data, const LabelBudget& budget,
                                          const SemiSupervisedRunOptions& options, bool use_unlabelled);

/// The metrics file (`unit_rows` as given to keep_labels_by_patient): per seed both runs (balanced accuracy,
/// ROC AUC, ...), their means and the paired difference (mean, standard deviation, and whether it is within
/// noise: |mean| below twice its standard error, or fewer than two seeds).
nlohmann::json compare_runs(const std::vector<std::uint64_t>& seeds, const std::vector<LabelBudget>& budgets,
                            const std::vector<SemiSupervisedResult>& supervised,
                            const std::vector<SemiSupervisedResult>& semi, const SemiSupervisedData& data,
                            const SemiSupervisedRunOptions& options, double fraction, std::size_t unit_rows);

}  // namespace medload::examples
