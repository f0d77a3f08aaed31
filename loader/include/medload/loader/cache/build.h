#pragma once
/// Building a cache (DESIGN.md §4): list the inputs, decode and validate them in crash-contained
/// workers, preprocess on the same threads, and write one HDF5 file, atomically. Resumable after
/// a kill, incremental after inputs are added, splittable into shards (see merge.h).

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "medload/core/progress.h"
#include "medload/loader/cache/privacy.h"
#include "medload/loader/ingest/annotation.h"
#include "medload/loader/preprocess/pipeline_config.h"
#include "medload/loader/preprocess/preprocess.h"

namespace medload::loader {

/// What happens to a sample whose source has no label (neither `label` nor `unknown_labels`:
/// SampleInfo::unlabeled).
enum class MissingLabelPolicy : std::uint8_t {
  /// Stored with label -1 (supervised samplers skip it), and in a multi-label cache a row of -1
  /// (unknown). The default.
  kKeepUnlabeled,
  kDrop,  ///< left out of the cache (counted in the report)
};

/// How a missing metadata value (an empty manifest cell, a DICOM field that is absent) is filled.
/// Numeric columns (every present value is a number) use the mean or median; text columns use
/// the most frequent value. The "class" variants compute it within the sample's class (single
/// label), falling back to the whole column for unlabeled or multi-label samples and for classes
/// without a value. Every filled value is flagged in `/meta/<name>_imputed`.
enum class ImputePolicy : std::uint8_t {
  kClassMedian,  ///< median (numeric) / mode (text) within the class. The default.
  kClassMean,    ///< mean (numeric) / mode (text) within the class
  kMedian,       ///< median / mode over the whole column
  kMean,         ///< mean / mode over the whole column
  kNone,         ///< left missing: NaN (numeric) or "" (text), still flagged
};

/// Parses "class_median", "class_mean", "median", "mean", "none". Throws ConfigError naming `key`.
ImputePolicy impute_policy_from_string(const std::string& text, const std::string& key = "impute");
/// The name of `policy` ("class_median", ...).
std::string to_string(ImputePolicy policy);

/// Everything `build_cache` needs. Validated by build_cache (ConfigError naming the field).
struct BuildOptions {
  /// Folder of inputs (first-level folders are the classes); with `manifest`, the root that
  /// report paths are relative to (see list_sources()). Required.
  std::string root;
  /// CSV manifest (`path,label,patient_id[,metadata...]`, and the target columns `mask`, `boxes`,
  /// `landmarks`: docs/targets.md); std::nullopt = the folder tree.
  std::optional<std::string> manifest;
  /// Annotations CSV (`path,x,y,width,height,label`, several rows per image): boxes for the inputs
  /// (read_annotations); every input then has boxes, an image without a row being a negative.
  std::optional<std::string> annotations;
  /// Class map of the targets (`{"1": "liver", ...}`, read_target_classes): names of mask values
  /// and box and landmark labels, and the ids they may use. Without one, ids name themselves and
  /// label names get ids in sorted order (resolve_target_classes); sharded builds with masks need
  /// one, so that every shard stores the same classes.
  std::optional<std::string> target_classes;
  /// The cache to write (e.g. "cache.h5"). Required. Its folder must exist and be writable.
  std::string output;
  /// Validation, preprocessing (and augmentation, stored only) options; hashed into every key.
  PipelineConfig config;
  /// Decoding + preprocessing threads (and decoder processes); 0 = all cores. Range 0..256.
  int threads = 0;
  /// This build covers shard `shard_index` of `shard_count` (0-based): a contiguous, deterministic
  /// block of the sorted inputs, so `merge_caches` of all shards equals a single build.
  int shard_index = 0;
  /// Number of shards; 1 = everything. Range 1..65536, shard_index < shard_count.
  int shard_count = 1;
  /// zlib level of the image chunks, 0 = none (fastest random reads), 1..9.
  int deflate = 0;
  /// Progress display on stderr.
  ProgressStyle progress = ProgressStyle::kAuto;
  /// Unlabeled samples: kept as -1 or dropped.
  MissingLabelPolicy missing_labels = MissingLabelPolicy::kKeepUnlabeled;
  /// Missing metadata values: how they are filled (and flagged).
  ImputePolicy impute = ImputePolicy::kClassMedian;
  /// Finished files per work-area batch: a kill loses at most the batches in progress. 1..4096.
  int batch_files = 16;
  /// Patient-id pseudonymisation and the share profile (privacy.h, docs/privacy.md). The default
  /// stores ids, sites, paths and metadata as the sources give them. The work folder holds them
  /// verbatim until the build finishes; the cache and report hold only what this allows.
  PrivacyOptions privacy;

  /// Throws ConfigError naming the field and its allowed range.
  void validate() const;
};

/// What a build stored of the targets (all zero without any).
struct TargetSummary {
  /// Images whose mask, boxes and landmarks are none / valid / invalid (TargetState's order).
  std::array<std::size_t, 3> masks{}, boxes{}, landmarks{};
  std::size_t box_count = 0;          ///< boxes stored
  std::size_t boxes_dropped = 0;      ///< boxes preprocessing dropped (too little inside the crop)
  std::size_t landmark_count = 0;     ///< landmarks stored
  std::size_t landmarks_dropped = 0;  ///< landmarks outside the crop
  std::size_t classes = 0;            ///< target classes stored, background included
  /// {"masks": {"none": n, "valid": n, "invalid": n}, "boxes": {...}, "landmarks": {...},
  ///  "box_count", "boxes_dropped", "landmark_count", "landmarks_dropped", "classes"}.
  nlohmann::json to_json() const;
};

/// What a build did. The same figures are in the JSON report beside the cache.
struct BuildResult {
  std::string output;       ///< the cache written
  std::string report_path;  ///< the JSON build report (report_path_for(output))
  std::size_t sources = 0;  ///< input files in this build (this shard)
  std::size_t ok_files = 0;
  std::size_t rejected_files = 0;
  std::size_t images = 0;                      ///< images in the cache (frames of ok files, minus dropped)
  std::size_t decoded_files = 0;               ///< files decoded by this run
  std::size_t reused_files = 0;                ///< ok files taken from the previous cache at `output`
  std::size_t resumed_files = 0;               ///< ok files taken from an interrupted run's work folder
  std::size_t dropped_unlabeled = 0;           ///< samples left out by MissingLabelPolicy::kDrop
  std::size_t unlabeled = 0;                   ///< unlabeled samples kept (SampleInfo::unlabeled)
  /// -1 (unknown) entries of /label_matrix: the manifest's `unknown_labels`, and every entry of an
  /// unlabeled sample's row. 0 without a /label_matrix.
  std::size_t unknown_label_entries = 0;
  std::size_t samples_with_unknown_labels = 0;  ///< samples whose /label_matrix row has a -1
  std::map<std::string, std::size_t> imputed;  ///< filled values per metadata column
  double seconds = 0;                          ///< wall time of the whole build
  double scan_seconds = 0;                     ///< wall time of decode + validate + preprocess (overlapped)
  double assemble_seconds = 0;                 ///< wall time of writing the final HDF5 file
  StageTimes preprocess;                       ///< preprocessing cost per step, summed over threads
  bool has_targets = false;                    ///< some input had a mask, boxes or landmarks
  TargetSummary targets;                       ///< what was stored of them
  AnnotationsSummary annotations;              ///< what the annotations CSV held (BuildOptions::annotations)
  nlohmann::json report;                       ///< the whole build report
};

/// The build report's path for a cache: "x/cache.h5" -> "x/cache.report.json" (a name without
/// ".h5" gets ".report.json" appended).
std::string report_path_for(const std::string& output);

/// Builds (or updates) the cache at options.output.
///
/// Atomic: finished samples go to a work folder `<output>.partial/` (batches written to a
/// temporary name and renamed when complete), then the cache is assembled into `<output>.tmp`,
/// flushed to disk and renamed over `<output>`; the work folder is removed last. A build killed at
/// any moment leaves `<output>` absent or the previous complete cache.
/// Resumable: samples in the work folder whose key (config hash, library version, source file
/// hash) matches are reused. Incremental: so are samples of an existing cache at `<output>`
/// built with the same config and library version; a changed config rebuilds everything.
///
/// Privacy: patient ids, sites, source paths, metadata and report entries are stored as
/// options.privacy says, and the cache records it (root attribute `privacy`). An existing cache at
/// `<output>` recorded with other privacy settings (verbatim ids vs pseudonyms, another key,
/// another profile or site map) is refused with ConfigError rather than mixed into the new one.
///
/// Throws ConfigError (bad options), IoError (missing root, unwritable output, full disk: the
/// message names the path and the system's reason), FormatError (an existing `<output>` that is
/// not a medload cache or has a newer schema: it is left untouched).
BuildResult build_cache(const BuildOptions& options);

}  // namespace medload::loader
