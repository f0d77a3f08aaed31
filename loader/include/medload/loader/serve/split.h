#pragma once
/// Patient-level splits (DESIGN.md §5): a stratified train/val/test split and a stratified k-fold,
/// both by patient, deterministic for a seed. Pure functions over (patient id, labels) per
/// sample: no HDF5 here (split_store.h stores them in a cache).
///
/// Random image-level splits of medical data leak patients between training and evaluation;
/// nothing here offers one. A sample without a patient id is its own patient (it cannot leak
/// through a patient, but it is counted and reported, because it usually means missing metadata).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace medload::loader {

/// The parts of a train/val/test split, as stored per sample (int8).
enum class SplitPart : std::int8_t {
  kTrain = 0,  ///< the training part
  kVal = 1,    ///< the validation part
  kTest = 2,   ///< the held-out test part
};

/// "train", "val", "test".
std::string_view part_name(SplitPart part);
/// The part named "train" | "val" | "test". Throws ConfigError naming the value.
SplitPart part_from_name(std::string_view name);

/// Options of `split_patients`.
struct SplitOptions {
  /// Target fraction of samples per part: {train, val, test} (or {train, val}). Each in [0, 1],
  /// train > 0, summing to 1 within 1e-6.
  std::vector<double> ratios = {0.7, 0.15, 0.15};
  /// Seed: orders patients of equal size before the greedy assignment. Same seed, same split.
  std::uint64_t seed = 0;

  /// Throws ConfigError naming the field and the limit.
  void validate() const;
};

/// What splitting needs to know about each of N samples.
struct SplitInput {
  /// Patient id per sample [N]; "" = unknown (the sample is then its own patient).
  std::vector<std::string> patient_ids;
  /// Class per sample [N] (-1 = unlabeled), for single-label data. Leave empty when
  /// `label_matrix` is used.
  std::vector<std::int64_t> labels;
  /// Multi-label data: a row-major [N, label_columns] matrix of 1 (present), 0 (absent) and -1
  /// (unknown), as CacheReader::label_matrix (empty for single-label data). Only positives
  /// stratify: -1 counts as not positive, and a row without a 1 counts as unlabeled.
  std::vector<std::int8_t> label_matrix;
  /// Columns of `label_matrix` (K); 0 for single-label data.
  std::size_t label_columns = 0;

  /// Number of samples. Throws ConfigError when the fields disagree on it.
  std::size_t size() const;
};

/// A split of N samples into parts (train/val/test, or k folds).
struct SplitAssignment {
  /// Part per sample [N]: a SplitPart value for a train/val/test split, the fold (0..k-1) for k-fold.
  std::vector<std::int8_t> part;
  /// Number of parts (3 or 2 for train/val/test, k for k-fold).
  std::size_t parts = 0;
  /// Distinct patients (a sample without an id counts as one).
  std::size_t patients = 0;
  /// Samples that had no patient id (each was treated as its own patient).
  std::size_t samples_without_patient = 0;
  /// XXH64 of the sorted set of effective patient ids (see `patient_set_hash`).
  std::uint64_t patient_set_hash = 0;
  /// Class counts per part: [parts][classes + 1], the last column counting unlabeled samples.
  /// For multi-label data a sample counts once in every class it has (1; unknown entries do not
  /// count), and as unlabeled when it has none.
  std::vector<std::vector<std::int64_t>> class_counts;
  /// Samples per part [parts].
  std::vector<std::int64_t> sample_counts;
  /// Patients per part [parts].
  std::vector<std::int64_t> patient_counts;
};

/// The effective patient id of every sample: the id normalised (normalize_patient_id: "P001 "
/// is "P001"), or "~sample:<index>" when that is empty (so a sample without an id is its own
/// patient; '~' sorts after printable ids). Splits group samples by it.
std::vector<std::string> effective_patient_ids(const std::vector<std::string>& patient_ids);

/// XXH64 of the sorted, de-duplicated effective patient ids joined by '\n'. Stored with a split so
/// that a split made for another set of patients (another or a rebuilt cache) is refused.
std::uint64_t patient_set_hash(const std::vector<std::string>& patient_ids);

/// A stratified patient-level split: every patient's samples go to one part; class proportions
/// per part are kept as close as possible to the overall ones, and part sizes to `ratios`.
/// Greedy: patients in decreasing sample count (ties in a seeded random order), each assigned to
/// the part that most reduces the squared deviation of the parts' per-class and total fractions
/// from their targets. O(patients x parts x classes-of-the-patient). Throws ConfigError.
SplitAssignment split_patients(const SplitInput& input, const SplitOptions& options);

/// A stratified patient-level k-fold (k in [2, 100]): the same greedy with k equal targets.
/// `part` holds the fold of each sample. Throws ConfigError.
SplitAssignment kfold_patients(const SplitInput& input, std::size_t k, std::uint64_t seed);

}  // namespace medload::loader
