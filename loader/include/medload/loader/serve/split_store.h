#pragma once
/// Splits stored in a cache, under `/splits/<name>`: a per-sample int8 dataset `part` and the
/// attributes that make the split checkable and usable for serving (docs/serve.md):
/// kind ("parts" | "kfold"), parts, seed, ratios, patient_set_hash, class_counts (JSON),
/// sample_counts, patient_counts, patients, samples_without_patient, the training mean and std,
/// library_version.
///
/// `medload split` computes a split from the cache and writes it; the images are never rewritten.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/serve/split.h"

namespace medload::loader {

class CacheReader;

/// One stored split.
struct StoredSplit {
  /// Name under /splits: "default" (train/val/test) or "kfold".
  std::string name;
  /// "parts" (values are SplitPart) or "kfold" (values are folds; -1 = outside the folds, the
  /// held-out test part of the default split).
  std::string kind = "parts";
  /// Per sample [N].
  std::vector<std::int8_t> part;
  /// Number of parts (2 or 3) or folds (k).
  std::size_t parts = 0;
  /// Seed it was made with.
  std::uint64_t seed = 0;
  /// Target ratios (train/val/test; k-fold: 1/k each).
  std::vector<double> ratios;
  /// XXH64 (hex) of the cache's effective patient set when the split was made.
  std::string patient_set_hash;
  /// Distinct patients, and samples without a patient id (each its own patient).
  std::size_t patients = 0;
  std::size_t samples_without_patient = 0;
  /// [parts][classes + 1] class counts (last column: unlabeled), samples and patients per part.
  std::vector<std::vector<std::int64_t>> class_counts;
  std::vector<std::int64_t> sample_counts;
  std::vector<std::int64_t> patient_counts;
  /// Pixel mean and std (pixels scaled to [0, 1]) of the training samples: one value for a
  /// train/val/test split (the train part); for k-fold, value f is over every fold but f.
  std::vector<double> mean;
  std::vector<double> std;

  /// Name of part `p` ("train", "val", "test", or "fold3").
  std::string part_label(std::size_t p) const;
  /// JSON for reports (`medload split --json`).
  nlohmann::json to_json(const std::vector<std::string>& class_names = {}) const;
};

/// Makes the stratified patient-level train/val/test split of a cache and computes the training
/// mean/std (reading the training images on `threads` threads, 0 = hardware). Throws ConfigError.
StoredSplit make_split(const CacheReader& cache, const SplitOptions& options, std::size_t threads = 0);

/// Makes a stratified patient-level k-fold over the samples whose `within` part is not kTest (all
/// samples when `within` is empty), with each fold's training mean/std.
StoredSplit make_kfold(const CacheReader& cache, std::size_t k, std::uint64_t seed,
                       const std::vector<std::int8_t>& within = {}, std::size_t threads = 0);

/// Writes `split` to /splits/<split.name> of the cache at `path`, replacing a split of that name.
/// Never writes the cache in place: the split goes into a copy beside it (a reflink where the
/// filesystem has them, else a full copy: the folder needs room for one), which replaces the
/// cache in one rename. A kill at any moment leaves the previous cache, whole, or the new one;
/// processes that have the cache open keep reading the file they opened. Throws IoError naming
/// the file (no room for the copy, say), HdfError.
void write_split(const std::string& path, const StoredSplit& split);

/// Names of the splits stored in the cache at `path` (sorted; empty when none).
std::vector<std::string> list_splits(const std::string& path);

/// Reads /splits/<name>. Throws ConfigError naming the file, the split and the splits there are
/// when it is missing; FormatError when it is malformed or its length is not `expected_size`
/// (when nonzero).
StoredSplit read_split(const std::string& path, const std::string& name, std::size_t expected_size = 0);

}  // namespace medload::loader
