#pragma once
/// Splits stored in a cache, under `/splits/<name>`: a per-sample int8 dataset `part` and the
/// attributes that make the split checkable and usable for serving (docs/serve.md). The table's
/// layout and its validation belong to the cache library (<medload/loader/cache/split_table.h>);
/// this store computes splits and replaces the cache with a copy holding the new split, so that a
/// kill never leaves a damaged cache.
///
/// `medload split` computes a split from the cache and writes it; the images are never rewritten.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/cache/split_table.h"
#include "medload/loader/serve/split.h"

namespace medload::loader {

class CacheReader;

/// One stored split: the table as the cache holds it (SplitTable: name, kind, part, parts, seed,
/// ratios, patient counts, class counts, training mean and std) and its report helpers.
struct StoredSplit : SplitTable {
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
