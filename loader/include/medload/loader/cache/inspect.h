#pragma once
/// Summarising a cache (`medload inspect`): counts per class, site and split, the targets, the
/// config, the statistics, the rejected files; optionally verifying every image's checksum and
/// that every mask reads.

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace medload::loader {

/// What inspect_cache does.
struct InspectOptions {
  /// Read every image and compare it with its checksum, and read every valid mask (slower: reads
  /// the whole file).
  bool verify = false;
  /// Threads for verification; 0 = all cores. Range 0..256.
  int threads = 0;
  /// Rejected files listed by name in the summary (all are counted). Range 0..1000000.
  std::size_t rejected_examples = 10;
};

/// The summary of the cache at `path` as JSON:
/// {"path", "schema_version", "library_version", "build_time", "config_hash", "config" (object),
///  "images": {"count", "channels", "height", "width", "dtype", "bytes_per_image"},
///  "classes": [{"name", "count"}], "unlabeled", "multi_label" (per-class positives, in a
///  multi-label cache), "multi_label_unknown" (per-class unknown (-1) entries, when there are any),
///  "sites": {site: count}, "patients", "samples_without_patient",
///  "metadata": {name: {"numeric", "imputed", ("mean", "min", "max") | ("distinct", "values": {v: n}
///   (with at most 20 distinct values))}},
///  "targets" (when the cache has targets): {"classes": [names by id], "masks": {"valid",
///   "invalid", "none" (images per state), "stored" (has /targets/masks)}, "boxes": {"valid",
///   "invalid", "none", "count" (boxes stored), "dropped" (by preprocessing)}, "landmarks": {as
///   boxes}},
///  "splits": {name: {"attributes": {...}, "datasets": {"part": {part value: {"count",
///   "classes": {class name or "(unlabeled)": count}}}}}},
///  "rejected": {"count", "by_reason": {...}, "examples": [{"path", "reason", "detail"}]},
///  "privacy": which identifying fields it holds (describe_identifying_fields in privacy.h),
///  "attributes": {every other root attribute as text},
///  "verify": {"checked", "failed", "failures": [{"index", "source_path", "frame_index"}],
///   "masks" (when the cache has masks): {"checked" (valid masks), "failed", "failures": [as
///   above]: masks that do not read or inflate}} (with verify)}.
/// Throws what CacheReader's constructor throws. (`medload inspect` prints it as text.)
nlohmann::json inspect_cache(const std::string& path, const InspectOptions& options = {});

}  // namespace medload::loader
