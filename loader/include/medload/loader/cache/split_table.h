#pragma once
/// A split as a cache stores it, under `/splits/<name>` (docs/serve.md): a per-image int8 dataset
/// `part` and the attributes kind, parts, seed (decimal text: a uint64 keeps every bit), ratios,
/// patient_set_hash, patients, samples_without_patient, class_counts (JSON), sample_counts,
/// patient_counts, mean, std and library_version.
///
/// The cache library reads and writes this table through its schema (the names, types and checks
/// of every cache dataset, loader/src/cache/schema.h); medload::loader_split computes splits and
/// stores them safely (`write_split` in <medload/loader/serve/split_store.h>). No HDF5 here.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medload::loader {

/// One split as stored in a cache.
struct SplitTable {
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
};

/// Throws ConfigError unless `name` can name a stored split: not empty, no '/', not starting
/// with '.' (a group whose name starts with '.' is one being written, and is never listed).
void check_split_name(const std::string& name);

/// Writes `split` to /splits/<split.name> of the cache file at `path`, replacing a split of that
/// name, and closes the file (every object first, so that a full disk shows here). Writes in
/// place: a kill in the middle can leave a file HDF5 cannot open, so `write_split` writes a copy
/// and publishes it. `shown_as` names the cache in messages (the cache a copy at `path` stands
/// for; empty: `path`). Throws ConfigError when the name is not plain or `split.part` does not
/// have one entry per image, IoError or HdfError naming the file.
void write_split_table(const std::string& path, const SplitTable& split, const std::string& shown_as = "");

/// Names of the splits stored in the cache at `path` (sorted; empty when none). Throws IoError,
/// FormatError when the file is not a readable HDF5 file.
std::vector<std::string> split_table_names(const std::string& path);

/// Reads /splits/<name> of the cache at `path`, validated (kind, parts, part values, finite mean
/// and std > 0, seed, counts). Throws ConfigError naming the file, the split and the splits
/// there are when it is missing; FormatError when it is malformed or its length is not
/// `expected_size` (when nonzero).
SplitTable read_split_table(const std::string& path, const std::string& name, std::size_t expected_size = 0);

}  // namespace medload::loader
