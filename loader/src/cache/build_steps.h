#pragma once
// The steps of build_cache (build.cpp), private to loader/src/cache. build_cache runs them in
// this order:
//   build_publish.cpp  check the output, open the work folder; at the end publish cache + report
//   build_reuse.cpp    the previous cache at the output; which files need no decoding
//   build_collect.cpp  decode + preprocess the rest into work batches; reject duplicates
//   build_columns.cpp  report rows and /rejected, the samples, the header, the per-image columns
//   cache_assembly.cpp write the temporary cache (shared with merge_caches)
//   build_report.cpp   the build report
// Privacy (privacy_filter.h) is applied where the data flows through: report rows are scrubbed
// and the rejected table's paths mapped in build_report_rows, the stored columns in
// build_columns, the record taken for the cache's attributes after both, the report finished
// last.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache_writer.h"
#include "medload/core/atomic_file.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/ingest/source.h"
#include "work_area.h"

namespace medload::loader::detail {

class PrivacyFilter;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start);
std::int64_t ns_since(Clock::time_point start);

/// ThreadPool size for BuildOptions::threads (0 = all cores). The one place build turns its
/// option into a pool size.
std::size_t build_pool_threads(int threads);

// ---- inputs (build.cpp) -------------------------------------------------------------------

/// This build's shard of the inputs, and what every input decides so that shards agree.
struct BuildInputs {
  std::vector<SourceFile> sources;  ///< this shard's, in input order
  std::size_t first = 0;            ///< index of sources[0] among all inputs
  std::size_t total = 0;            ///< all inputs, every shard
  std::vector<std::string> class_names;
  bool multi_label = false;
  /// Names of the target classes (read_inputs), extended by build_columns to the largest id the
  /// stored targets use when there is no class map.
  TargetClasses target_classes;
  bool class_map = false;    ///< target_classes came from a class map
  bool has_targets = false;  ///< some input has targets: the cache gets /targets
  bool has_masks = false;    ///< some input has a mask: the cache gets /targets/masks
  AnnotationsSummary annotations;
};

// ---- output and work folder (build_publish.cpp) ---------------------------------------------

/// Throws IoError unless the output's folder exists and is writable and no folder has the
/// report's name (refused before the work, which would otherwise fail only after it).
void check_output(const std::string& output, const std::string& report_path);

/// Creates the work folder `<output>.partial` beside the output and returns its path; throws
/// IoError.
std::string create_work_folder(const std::string& output);

/// A lock on the work folder, so two builds of one output cannot interleave. Throws IoError when
/// another build holds it.
class FolderLock {
 public:
  explicit FolderLock(const std::string& folder);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

/// Publishes a finished build: `temp_report` (already written) and `cache` (flushed by
/// publish_atomically) are renamed into place, the cache first; the work folder goes once the
/// cache is in place. A failure before the cache's rename leaves the previous cache and report.
void publish_build(TemporaryFile& cache, const std::string& output, TemporaryFile& temp_report,
                   const std::string& report, const std::string& work);

// ---- reuse (build_reuse.cpp) ----------------------------------------------------------------

/// A previous cache at the output path, for incremental reuse.
struct PreviousCache {
  std::unique_ptr<CacheReader> reader;
  std::map<std::string, FileRecord> ok;            ///< by source hash
  std::map<std::string, RejectedRecord> rejected;  ///< by source hash
};

/// Opens the cache at `output` if there is one. Throws FormatError when it is not a cache this
/// medload can read, ConfigError when its privacy settings differ; reuses nothing when it was
/// built with another config or library version.
PreviousCache open_previous(const std::string& output, const std::string& config_hash,
                            const PrivacyFilter& privacy);

/// Where a file that was not decoded again came from.
enum class ReuseOrigin {
  kWorkFolder,     ///< a batch of an interrupted build ("partial" in the report)
  kPreviousCache,  ///< the previous cache at the output ("cache")
};
/// "partial" or "cache", as the report's "reused" field.
const char* to_string(ReuseOrigin origin);

/// Every file's state, by index into BuildInputs::sources.
struct BuildFiles {
  std::map<std::size_t, FileRecord> records;       ///< ok files
  std::map<std::size_t, nlohmann::json> outcomes;  ///< every file's report entry
  std::map<std::size_t, ReuseOrigin> origin;       ///< ok files that were not decoded
  std::vector<std::string> source_hashes;          ///< "" where not hashed
  std::vector<SourceFile> to_scan;                 ///< the files left to decode
  std::vector<std::size_t> scan_index;             ///< to_scan[k] is sources[scan_index[k]]
  std::int64_t reuse_hash_ns = 0;
};

/// Takes what the work folder's batches (`resumable`) and the previous cache hold; hashes the
/// sources only when there is something to reuse.
BuildFiles plan_reuse(const std::vector<SourceFile>& sources,
                      const std::map<std::string, FileRecord>& resumable, const PreviousCache& previous,
                      int threads);

/// The report entry of a file's own path, lossless path and warnings, merged into `outcome`.
void note_source_json(const SourceFile& source, nlohmann::json& outcome);

// ---- scan (build_collect.cpp) ---------------------------------------------------------------

/// What the scan cost.
struct ScanCost {
  StageTimes preprocess;
  std::int64_t write_batches_ns = 0;
  double seconds = 0;
};

/// Decodes, validates and preprocesses `files.to_scan` on the scanner's threads, writing the
/// finished files as batches to `work` under `key`; fills their records and outcomes.
ScanCost scan_remaining(const BuildOptions& options, const std::string& work, const std::string& key,
                        std::size_t source_count, BuildFiles& files);

/// Rejects the files whose decoded pixels equal an earlier one's, across resumed, reused and
/// decoded files (the scanner sees only what it decoded).
void reject_duplicates(const std::vector<SourceFile>& sources, BuildFiles& files);

/// The decoded file's raw metadata: manifest columns plus modality and view.
std::map<std::string, std::string> raw_meta(const SampleInfo& info);

// ---- report rows and columns (build_columns.cpp) --------------------------------------------

/// The report's entries (scrubbed) and the /rejected table, in input order.
struct ReportRows {
  nlohmann::json files = nlohmann::json::array();
  std::map<std::string, std::size_t> by_reason;
  std::vector<RejectedRecord> rejected;
};
ReportRows build_report_rows(const BuildInputs& inputs, BuildFiles& files, PrivacyFilter& privacy,
                             BuildResult& result);

/// One image of the cache: a frame of an ok file.
struct Sample {
  std::size_t source;  ///< index into BuildInputs::sources
  const FrameRecord* frame;
};

/// The cache's images in input order, frames in order, unlabeled files dropped when asked.
std::vector<Sample> select_samples(const BuildOptions& options, const std::vector<SourceFile>& sources,
                                   const std::map<std::size_t, FileRecord>& records, BuildResult& result);

/// The cache's header; throws FormatError naming the first image whose shape differs.
CacheHeader cache_header(const BuildOptions& options, const std::vector<SourceFile>& sources,
                         const std::vector<Sample>& samples);

/// The per-image columns (labels, ids, paths, hashes, geometry, imputed metadata).
CacheColumns build_columns(const BuildOptions& options, const BuildInputs& inputs,
                           const std::map<std::size_t, FileRecord>& records,
                           const std::vector<Sample>& samples, PrivacyFilter& privacy, BuildResult& result);

// ---- report (build_report.cpp) --------------------------------------------------------------

/// The build's costs that the report lists beside BuildResult's.
struct BuildCosts {
  StageTimes preprocess;
  std::int64_t reuse_hash_ns = 0;
  std::int64_t write_batches_ns = 0;
  std::int64_t assemble_read_ns = 0;
  std::int64_t assemble_compress_ns = 0;
  std::int64_t assemble_write_ns = 0;
};

/// The build report (before PrivacyFilter::finish_report).
nlohmann::json build_report(const BuildOptions& options, const std::string& config_hash,
                            const BuildResult& result, ReportRows&& rows, const BuildCosts& costs);

/// The report's text. External text is UTF-8 by then (list_sources, the decoders); replacing what
/// is not keeps a stray byte from failing a finished build.
std::string report_text(const nlohmann::json& report);

}  // namespace medload::loader::detail
