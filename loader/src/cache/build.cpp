#include "medload/loader/cache/build.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "cache_writer.h"
#include "h5.h"
#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/text.h"
#include "medload/core/thread_pool.h"
#include "medload/core/version.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/ingest/scanner.h"
#include "metadata.h"
#include "privacy_filter.h"
#include "schema.h"
#include "work_area.h"

namespace medload::loader {

namespace fs = std::filesystem;
using detail::FileRecord;
using detail::FrameRecord;

ImputePolicy impute_policy_from_string(const std::string& text, const std::string& key) {
  if (text == "class_median") return ImputePolicy::kClassMedian;
  if (text == "class_mean") return ImputePolicy::kClassMean;
  if (text == "median") return ImputePolicy::kMedian;
  if (text == "mean") return ImputePolicy::kMean;
  if (text == "none") return ImputePolicy::kNone;
  throw ConfigError(key + " is \"" + text + "\"; allowed class_median, class_mean, median, mean, none");
}

std::string to_string(ImputePolicy policy) {
  switch (policy) {
    case ImputePolicy::kClassMedian:
      return "class_median";
    case ImputePolicy::kClassMean:
      return "class_mean";
    case ImputePolicy::kMedian:
      return "median";
    case ImputePolicy::kMean:
      return "mean";
    case ImputePolicy::kNone:
      return "none";
  }
  return "?";
}

void BuildOptions::validate() const {
  if (root.empty()) throw ConfigError("root is empty; give the folder of the input images");
  if (output.empty()) throw ConfigError("output is empty; give the cache file to write (e.g. cache.h5)");
  if (threads < 0 || threads > 256)
    throw ConfigError("threads is " + std::to_string(threads) + "; allowed 0..256");
  if (shard_count < 1 || shard_count > 65536) {
    throw ConfigError("shard_count is " + std::to_string(shard_count) + "; allowed 1..65536");
  }
  if (shard_index < 0 || shard_index >= shard_count) {
    throw ConfigError("shard_index is " + std::to_string(shard_index) + "; allowed 0.." +
                      std::to_string(shard_count - 1) + " for " + std::to_string(shard_count) + " shards");
  }
  if (deflate < 0 || deflate > 9)
    throw ConfigError("deflate is " + std::to_string(deflate) + "; allowed 0..9");
  if (batch_files < 1 || batch_files > 4096) {
    throw ConfigError("batch_files is " + std::to_string(batch_files) + "; allowed 1..4096");
  }
  config.validate.validate();
  privacy.validate();
}

std::string report_path_for(const std::string& output) {
  const std::string suffix = ".h5";
  if (output.size() > suffix.size() &&
      output.compare(output.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return output.substr(0, output.size() - suffix.size()) + ".report.json";
  }
  return output + ".report.json";
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
std::int64_t ns_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

std::string system_reason() { return std::strerror(errno); }

// XXH64 of a file's bytes, as the scanner's content_hash; "" when it cannot be read.
std::string hash_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      return "";
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  ::close(fd);
  if (bytes.empty()) return "";
  return hash_hex(hash64(bytes.data(), bytes.size()));
}

// Interleaved [H,W,C] -> planar [C,H,W] (the cache layout); 1 channel is both.
std::vector<std::uint8_t> to_planar(PreprocessedImage&& image) {
  if (image.channels == 1) return std::move(image.pixels);
  const std::size_t element = static_cast<std::size_t>(bytes_per_element(image.type));
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  const std::size_t c = static_cast<std::size_t>(image.channels);
  std::vector<std::uint8_t> out(image.pixels.size());
  for (std::size_t p = 0; p < plane; ++p) {
    for (std::size_t k = 0; k < c; ++k) {
      std::memcpy(out.data() + (k * plane + p) * element, image.pixels.data() + (p * c + k) * element,
                  element);
    }
  }
  return out;
}

// The build's work on each decoded frame, run where the frame was decoded (in its decoder
// worker, see FrameStage): preprocessing, the cache's planar layout and the hashes, so that only
// the small preprocessed image travels back. The description carries what the Collector needs.
StagedFrame preprocess_stage(const DecodedImage& frame, const PreprocessOptions& options) {
  StagedFrame out;
  PreprocessedImage image = preprocess(frame, options, &out.times);
  out.height = image.height;
  out.width = image.width;
  out.channels = image.channels;
  out.type = image.type;
  out.geometry = image.geometry;
  // Duplicate detection across resumed and reused files uses the decoded pixels.
  out.decoded_hash = hash64(frame.pixels.data(), frame.pixels.size(),
                            static_cast<std::uint64_t>(frame.height) * 1000003u +
                                static_cast<std::uint64_t>(frame.width));
  out.bytes = to_planar(std::move(image));
  out.checksum = hash64(out.bytes.data(), out.bytes.size());
  return out;
}

// The raw metadata of a decoded sample: manifest columns plus modality and view.
std::map<std::string, std::string> raw_meta(const SampleInfo& info) {
  std::map<std::string, std::string> meta;
  for (const auto& [name, value] : info.metadata) {
    if (!value.empty()) meta[name] = value;
  }
  if (!info.modality.empty() && !meta.count("modality")) meta["modality"] = info.modality;
  if (!info.view.empty() && !meta.count("view")) meta["view"] = info.view;
  return meta;
}

// Files being assembled from their frames while the scan runs, and batches waiting to be written.
class Collector {
 public:
  Collector(const std::string& folder, const std::string& key, int batch_files)
      : folder_(folder), key_(key), batch_files_(static_cast<std::size_t>(batch_files)) {}

  // Adds frame `decoded` (its description; its pixels stayed in the worker) of file `file_index`
  // with what preprocess_stage made of it.
  void add(std::size_t file_index, const DecodedImage& decoded, StagedFrame&& staged) {
    FrameRecord frame;
    frame.frame_index = decoded.frame_index;
    frame.patient_id = decoded.info.patient_id;
    frame.site = decoded.info.site;
    frame.meta = raw_meta(decoded.info);
    frame.geometry = staged.geometry;
    frame.height = staged.height;
    frame.width = staged.width;
    frame.channels = staged.channels;
    frame.type = staged.type;
    frame.pixels = std::move(staged.bytes);
    frame.checksum = staged.checksum;
    const auto decoded_hash = staged.decoded_hash;

    std::vector<std::pair<std::size_t, FileRecord>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Pending& pending = pending_[file_index];
      pending.file.format = decoded.format;
      pending.file.source_hash = hash_hex(decoded.source_hash);
      pending.file.frame_count = decoded.frame_count;
      pending.file.frames.push_back(std::move(frame));
      pending.frame_hashes[decoded.frame_index] = decoded_hash;
      if (static_cast<int>(pending.file.frames.size()) < decoded.frame_count) return;
      FileRecord file = std::move(pending.file);
      std::vector<std::uint64_t> hashes;
      for (const auto& [index, hash] : pending.frame_hashes) hashes.push_back(hash);
      pending_.erase(file_index);
      std::sort(file.frames.begin(), file.frames.end(),
                [](const FrameRecord& a, const FrameRecord& b) { return a.frame_index < b.frame_index; });
      file.pixel_hash = hash64(hashes.data(), hashes.size() * sizeof(std::uint64_t));
      waiting_.emplace_back(file_index, std::move(file));
      if (waiting_.size() < batch_files_) return;
      batch = take_locked();
    }
    write(std::move(batch));
  }

  // Writes whatever is waiting (at the end of the scan).
  void flush() {
    std::vector<std::pair<std::size_t, FileRecord>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch = take_locked();
    }
    write(std::move(batch));
  }

  std::map<std::size_t, FileRecord>& done() { return done_; }
  std::int64_t write_ns() const { return write_ns_; }

 private:
  struct Pending {
    FileRecord file;
    std::map<int, std::uint64_t> frame_hashes;
  };

  std::vector<std::pair<std::size_t, FileRecord>> take_locked() {
    std::vector<std::pair<std::size_t, FileRecord>> batch;
    batch.swap(waiting_);
    return batch;
  }

  void write(std::vector<std::pair<std::size_t, FileRecord>> taken) {
    if (taken.empty()) return;
    std::vector<std::size_t> indices;
    std::vector<FileRecord> batch;
    for (auto& [index, file] : taken) {
      indices.push_back(index);
      batch.push_back(std::move(file));
    }
    const auto start = Clock::now();
    detail::write_batch(folder_, key_, batch);
    const std::int64_t written = ns_since(start);
    std::lock_guard<std::mutex> lock(mutex_);
    write_ns_ += written;
    for (std::size_t k = 0; k < batch.size(); ++k) done_[indices[k]] = std::move(batch[k]);
  }

  std::string folder_;
  std::string key_;
  std::size_t batch_files_;
  std::mutex mutex_;
  std::map<std::size_t, Pending> pending_;
  std::vector<std::pair<std::size_t, FileRecord>> waiting_;
  std::map<std::size_t, FileRecord> done_;
  std::int64_t write_ns_ = 0;
};

// A previous cache at the output path, for incremental reuse.
struct PreviousCache {
  std::unique_ptr<CacheReader> reader;
  std::map<std::string, FileRecord> ok;                    // by source hash
  std::map<std::string, detail::RejectedRecord> rejected;  // by source hash
};

// The tables of a previous cache that a rebuild reuses beyond what CacheReader holds, read
// through the schema (which validates them).
struct PreviousTables {
  std::vector<std::uint64_t> pixel_hashes;
  std::vector<detail::RejectedRecord> rejected;
  detail::RawMeta raw;
};

PreviousTables read_previous_tables(const CacheReader& reader) {
  PreviousTables tables;
  const schema::CacheFile file(reader.path());
  tables.pixel_hashes = schema::read_pixel_hashes(file, reader.size(), /*required=*/true);
  tables.rejected = schema::read_rejected(file);
  std::vector<MetaColumn> columns;
  for (const std::string& name : reader.meta_names()) columns.push_back(reader.meta(name));
  tables.raw.resize(reader.size());
  detail::columns_to_raw(columns, tables.raw);
  return tables;
}

[[noreturn]] void refuse_to_replace(const std::string& output, const Error& e) {
  throw FormatError("refusing to replace " + output + ", which is not a cache this medload can read (" +
                    e.what() + "); move it away or choose another output");
}

PreviousCache open_previous(const std::string& output, const std::string& config_hash,
                            const detail::PrivacyFilter& privacy) {
  PreviousCache previous;
  std::error_code error;
  if (!fs::exists(output, error)) return previous;
  std::unique_ptr<CacheReader> reader;
  try {
    reader = std::make_unique<CacheReader>(output);
  } catch (const Error& e) {
    refuse_to_replace(output, e);
  }
  // Checked whatever the config: a rebuild must not mix verbatim ids and pseudonyms, or two keys.
  privacy.require_compatible(output, read_privacy_record(output));
  if (reader->config_hash() != config_hash || reader->library_version() != kVersion) return previous;
  PreviousTables tables;
  try {
    tables = read_previous_tables(*reader);
  } catch (const Error& e) {
    refuse_to_replace(output, e);
  }
  const auto& pixel_hashes = tables.pixel_hashes;
  const auto& raw = tables.raw;
  for (std::size_t i = 0; i < reader->size(); ++i) {
    FileRecord& record = previous.ok[reader->source_hashes()[i]];
    record.source_hash = reader->source_hashes()[i];
    record.pixel_hash = pixel_hashes[i];
    FrameRecord frame;
    frame.frame_index = reader->frame_indices()[i];
    // A cache written before text was made UTF-8 may hold other bytes.
    frame.patient_id = normalize_patient_id(to_valid_utf8(reader->patient_ids()[i]));
    frame.site = to_valid_utf8(reader->sites()[i]);
    frame.meta = raw[i];
    frame.geometry = reader->geometry(i);
    frame.checksum = reader->checksums()[i];
    frame.height = reader->height();
    frame.width = reader->width();
    frame.channels = reader->channels();
    frame.type = reader->dtype();
    frame.cache_index = static_cast<std::int64_t>(i);
    record.frames.push_back(std::move(frame));
  }
  for (auto& [hash, record] : previous.ok) {
    record.frame_count = static_cast<int>(record.frames.size());
    record.format = "";
  }
  for (detail::RejectedRecord& record : tables.rejected) {
    // A duplicate depends on the other files, a missing file may appear: decide those again.
    // A cache without /rejected/outcome (older) has nothing to reuse.
    if (record.source_hash.empty() || record.outcome.empty() || record.reason == "duplicate" ||
        record.reason == "unreadable") {
      continue;
    }
    record.source_index = 0;
    record.path.clear();
    previous.rejected[record.source_hash] = std::move(record);
  }
  previous.reader = std::move(reader);
  return previous;
}

// A lock on the work folder, so two builds of one output cannot interleave.
class FolderLock {
 public:
  explicit FolderLock(const std::string& folder) {
    const std::string path = (fs::path(folder) / "lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError("cannot create " + path + ": " + system_reason());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw IoError("another medload build is writing " + folder + " (its lock is held)");
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open " + path + " to flush it: " + system_reason());
  const int status = ::fsync(fd);
  const std::string reason = status != 0 ? system_reason() : "";
  ::close(fd);
  if (status != 0 && !directory) throw IoError("cannot flush " + path + " to disk: " + reason);
}

// What the entry itself says in a report entry: its path, lossless path and own warnings.
void note_source_json(const SourceFile& source, nlohmann::json& outcome) {
  outcome["path"] = source.report_path;
  if (!source.path_bytes.empty()) outcome["path_bytes"] = source.path_bytes;
  if (source.warnings.empty()) return;
  nlohmann::json warnings = source.warnings;
  if (outcome.contains("warnings") && outcome["warnings"].is_array()) {
    for (const auto& w : outcome["warnings"]) {
      if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
    }
  }
  outcome["warnings"] = std::move(warnings);
}

nlohmann::json reused_outcome(const SourceFile& source, const FileRecord& record, const char* origin) {
  nlohmann::json outcome = {{"status", "ok"},
                            {"reason", nullptr},
                            {"detail", ""},
                            {"frames", record.frames.size()},
                            {"format", record.format},
                            {"content_hash", record.source_hash},
                            {"reused", origin}};
  note_source_json(source, outcome);
  return outcome;
}

// Files per warning code over the report entries.
std::map<std::string, std::size_t> count_warnings(const nlohmann::json& files) {
  std::map<std::string, std::size_t> counts;
  for (const auto& file : files) {
    if (!file.contains("warnings") || !file["warnings"].is_array()) continue;
    for (const auto& w : file["warnings"]) {
      if (w.is_string()) ++counts[w.get<std::string>()];
    }
  }
  return counts;
}

// The report's text. External text is UTF-8 by then (list_sources, the decoders); replacing what
// is not keeps a stray byte from failing a finished build.
std::string report_text(const nlohmann::json& report) {
  return report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Publishes a finished build: the report's temporary (already written) and the cache's are
// renamed into place, the cache first; the work folder goes once the cache is in place. A failure
// before the cache's rename removes both temporaries and leaves the previous cache and report.
void publish(const std::string& temp_output, const std::string& output, const std::string& temp_report,
             const std::string& report, const std::string& work, const fs::path& parent) {
  std::error_code error;
  if (::rename(temp_output.c_str(), output.c_str()) != 0) {
    const std::string reason = system_reason();
    fs::remove(temp_output, error);
    fs::remove(temp_report, error);
    throw IoError("cannot rename " + temp_output + " to " + output + ": " + reason);
  }
  fs::remove_all(work, error);
  const bool report_moved = ::rename(temp_report.c_str(), report.c_str()) == 0;
  const std::string reason = report_moved ? "" : system_reason();
  fsync_path(parent.string(), true);
  if (!report_moved) {
    fs::remove(temp_report, error);
    throw IoError("the cache " + output + " is in place, but its report could not be renamed from " +
                  temp_report + " to " + report + ": " + reason);
  }
}

}  // namespace

BuildResult build_cache(const BuildOptions& options_in) {
  const auto build_start = Clock::now();
  BuildOptions options = options_in;
  options.validate();
  options.config.validate.threads = options.threads;
  h5::silence_errors();

  BuildResult result;
  result.output = options.output;
  result.report_path = report_path_for(options.output);
  const std::string config_hash = options.config.config_hash();
  const std::string config_json = options.config.canonical_json();
  const std::string key = config_hash + "/" + kVersion;

  // Inputs first: a missing root fails before anything is written.
  std::vector<SourceFile> all_sources = list_sources(options.root, options.manifest);
  const std::size_t total = all_sources.size();
  const std::size_t first = total * static_cast<std::size_t>(options.shard_index) / options.shard_count;
  const std::size_t last = total * static_cast<std::size_t>(options.shard_index + 1) / options.shard_count;
  // Class names and the multi-label flag come from every input, so shards agree on them.
  std::set<std::string> class_set;
  bool multi_label = false;
  for (const SourceFile& source : all_sources) {
    for (const std::string& label : source.info.labels) class_set.insert(label);
    multi_label = multi_label || source.info.labels.size() > 1;
  }
  const std::vector<std::string> class_names(class_set.begin(), class_set.end());
  std::vector<SourceFile> sources(all_sources.begin() + static_cast<std::ptrdiff_t>(first),
                                  all_sources.begin() + static_cast<std::ptrdiff_t>(last));
  result.sources = sources.size();

  // The output's folder must exist and be writable; the work folder lives beside the output.
  const fs::path output_path(options.output);
  const fs::path parent = output_path.has_parent_path() ? output_path.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(parent, error)) {
    throw IoError("cannot write " + options.output + ": its folder " + parent.string() + " does not exist");
  }
  if (::access(parent.c_str(), W_OK) != 0) {
    throw IoError("cannot write " + options.output + ": its folder " + parent.string() +
                  " is not writable (" + system_reason() + ")");
  }
  // The report is written before the cache is published: a folder in its place would fail the
  // build only after the work, so it is refused now.
  if (fs::is_directory(result.report_path, error)) {
    throw IoError("cannot write the report " + result.report_path + " of " + options.output +
                  ": a folder has that name");
  }
  detail::PrivacyFilter privacy(options.privacy, options.root, options.manifest, sources);
  PreviousCache previous = open_previous(options.output, config_hash, privacy);
  const std::string work = options.output + ".partial";
  fs::create_directories(work, error);
  if (error) {
    throw IoError("cannot write " + options.output + ": cannot create its work folder " + work + " (" +
                  error.message() + ")");
  }
  FolderLock lock(work);
  const std::string temp_output = options.output + ".tmp";
  fs::remove(temp_output, error);  // left by a build killed while assembling

  std::map<std::string, FileRecord> resumable = detail::load_batches(work, key);

  // Which files can be taken as they are: needs each file's content hash, so only when there is
  // something to reuse.
  std::vector<std::string> source_hashes(sources.size());
  const auto hash_start = Clock::now();
  if (!resumable.empty() || !previous.ok.empty() || !previous.rejected.empty()) {
    ThreadPool pool(options.threads == 0 ? 0 : static_cast<std::size_t>(options.threads));
    pool.parallel_for(sources.size(), [&](std::size_t i) { source_hashes[i] = hash_file(sources[i].path); });
  }
  const std::int64_t reuse_hash_ns = ns_since(hash_start);

  std::map<std::size_t, FileRecord> records;       // ok files by index into `sources`
  std::map<std::size_t, nlohmann::json> outcomes;  // every file's report entry
  std::map<std::size_t, detail::RejectedRecord> rejected;
  std::map<std::size_t, char> origin;  // 'p': from the work folder, 'c': from the previous cache
  std::vector<SourceFile> to_scan;
  std::vector<std::size_t> scan_index;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string& hash = source_hashes[i];
    if (!hash.empty()) {
      if (auto it = resumable.find(hash); it != resumable.end()) {
        records[i] = it->second;
        outcomes[i] = reused_outcome(sources[i], it->second, "partial");
        origin[i] = 'p';
        continue;
      }
      if (auto it = previous.ok.find(hash); it != previous.ok.end()) {
        records[i] = it->second;
        outcomes[i] = reused_outcome(sources[i], it->second, "cache");
        origin[i] = 'c';
        continue;
      }
      if (auto it = previous.rejected.find(hash); it != previous.rejected.end()) {
        nlohmann::json outcome = nlohmann::json::parse(it->second.outcome, nullptr, false);
        if (!outcome.is_object()) outcome = nlohmann::json::object();
        note_source_json(sources[i], outcome);
        outcome["status"] = "rejected";
        outcome["reason"] = it->second.reason;
        outcome["detail"] = it->second.detail;
        outcome["reused"] = "cache";
        outcomes[i] = outcome;
        continue;
      }
    }
    to_scan.push_back(sources[i]);
    scan_index.push_back(i);
  }

  // Decode, validate and preprocess what is left, on the scanner's threads.
  Progress progress("build", sources.size(), "files", options.progress);
  progress.advance(sources.size() - to_scan.size());
  Collector collector(work, key, options.batch_files);
  std::mutex times_mutex;
  StageTimes times;
  const auto scan_start = Clock::now();
  const Scanner scanner(options.config.validate);
  const PreprocessOptions& preprocess_options = options.config.preprocess;
  ScanReport report = scanner.scan_with_stage(
      to_scan,
      [&preprocess_options](const DecodedImage& frame) {
        return preprocess_stage(frame, preprocess_options);
      },
      [&](std::size_t index, DecodedImage&& frame, StagedFrame&& staged) {
        const StageTimes own = staged.times;
        collector.add(index, frame, std::move(staged));
        std::lock_guard<std::mutex> lock(times_mutex);
        times += own;
      },
      &progress);
  collector.flush();
  progress.finish();
  result.scan_seconds = seconds_since(scan_start);
  result.decoded_files = to_scan.size();
  result.preprocess = times;
  for (std::size_t k = 0; k < report.files.size(); ++k) {
    const std::size_t i = scan_index[k];
    const FileOutcome& outcome = report.files[k];
    outcomes[i] = outcome.to_json();
    if (outcome.ok) {
      auto it = collector.done().find(k);
      if (it == collector.done().end()) {
        throw WorkerError("the scan reported " + outcome.path + " ok but delivered no image for it");
      }
      records[i] = std::move(it->second);
    }
  }

  // Duplicates across resumed, reused and decoded files (the scanner sees only what it decoded).
  if (options.config.validate.reject_duplicates) {
    std::map<std::uint64_t, std::size_t> first_with;
    for (auto it = records.begin(); it != records.end();) {
      auto [seen, inserted] = first_with.emplace(it->second.pixel_hash, it->first);
      if (inserted) {
        ++it;
        continue;
      }
      const std::string& original = sources[seen->second].report_path;
      nlohmann::json& outcome = outcomes[it->first];
      outcome["status"] = "rejected";
      outcome["reason"] = "duplicate";
      outcome["detail"] = "the same decoded pixels as " + original;
      outcome["duplicate_of"] = original;
      it = records.erase(it);
    }
  }

  // Counted after the duplicate check: a reused file that turned out a duplicate is not in the cache.
  for (const auto& [i, record] : records) {
    const auto it = origin.find(i);
    if (it == origin.end()) continue;
    ++(it->second == 'p' ? result.resumed_files : result.reused_files);
  }

  // Report entries and the rejected table, in input order.
  nlohmann::json files = nlohmann::json::array();
  std::map<std::string, std::size_t> by_reason;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    nlohmann::json& outcome = outcomes[i];
    privacy.scrub_outcome(outcome);
    files.push_back(outcome);
    if (records.count(i)) {
      ++result.ok_files;
      continue;
    }
    ++result.rejected_files;
    const std::string reason = outcome.value("reason", nlohmann::json("unknown")).is_string()
                                   ? outcome["reason"].get<std::string>()
                                   : "unknown";
    ++by_reason[reason];
    std::string hash = source_hashes[i];
    if (hash.empty() && outcome.contains("content_hash") && outcome["content_hash"].is_string()) {
      hash = outcome["content_hash"].get<std::string>();
      if (hash == "0000000000000000") hash.clear();
    }
    rejected[i] = {static_cast<std::int64_t>(first + i),
                   privacy.source_path(sources[i]),
                   reason,
                   outcome.value("detail", std::string()),
                   hash,
                   detail::json_text(outcome)};
  }

  // The samples, in input order, frames in order.
  struct Sample {
    std::size_t source;
    const FrameRecord* frame;
  };
  std::vector<Sample> samples;
  for (const auto& [i, record] : records) {
    if (sources[i].info.labels.empty() && options.missing_labels == MissingLabelPolicy::kDrop) {
      result.dropped_unlabeled += record.frames.size();
      continue;
    }
    for (const FrameRecord& frame : record.frames) samples.push_back({i, &frame});
  }
  result.images = samples.size();

  detail::CacheHeader header;
  header.count = samples.size();
  header.deflate = options.deflate;
  if (!samples.empty()) {
    header.height = samples[0].frame->height;
    header.width = samples[0].frame->width;
    header.channels = samples[0].frame->channels;
    header.dtype = samples[0].frame->type;
  } else {
    header.height = header.width = options.config.preprocess.letterbox.size;
  }
  for (const Sample& s : samples) {
    const FrameRecord& f = *s.frame;
    if (f.height != header.height || f.width != header.width || f.channels != header.channels ||
        f.type != header.dtype) {
      throw FormatError(
          "the preprocessed image of " + sources[s.source].report_path + " (frame " +
          std::to_string(f.frame_index) + ") is " + std::to_string(f.channels) + "x" +
          std::to_string(f.height) + "x" + std::to_string(f.width) + ", unlike the first image's " +
          std::to_string(header.channels) + "x" + std::to_string(header.height) + "x" +
          std::to_string(header.width) +
          "; every image of a cache has one shape (keep preprocess.letterbox on, and grayscale on "
          "for mixed gray and colour inputs)");
    }
  }

  // Columns.
  const std::map<std::string, std::int64_t> class_index = [&] {
    std::map<std::string, std::int64_t> m;
    for (std::size_t k = 0; k < class_names.size(); ++k) m[class_names[k]] = static_cast<std::int64_t>(k);
    return m;
  }();
  detail::CacheColumns columns;
  columns.multi_label = multi_label;
  detail::RawMeta raw;
  std::set<std::string> meta_names;
  for (const Sample& s : samples) {
    const SourceFile& source = sources[s.source];
    const FrameRecord& f = *s.frame;
    const auto& labels = source.info.labels;
    columns.labels.push_back(labels.size() == 1 ? class_index.at(labels[0]) : -1);
    if (labels.empty()) ++result.unlabeled;
    if (multi_label) {
      std::vector<std::uint8_t> row(class_names.size(), 0);
      for (const auto& label : labels) row[static_cast<std::size_t>(class_index.at(label))] = 1;
      columns.label_matrix.insert(columns.label_matrix.end(), row.begin(), row.end());
    }
    // What the manifest or folder says now wins; the decoded header fills the rest.
    // A previous cache's values are already in this build's form (require_compatible).
    const bool stored = f.cache_index >= 0;
    columns.patient_ids.push_back(privacy.patient_id(source.info.patient_id, f.patient_id, stored));
    columns.sites.push_back(privacy.site(source.info.site, f.site, stored));
    columns.source_paths.push_back(privacy.source_path(source));
    columns.source_hashes.push_back(records.at(s.source).source_hash);
    columns.frame_indices.push_back(f.frame_index);
    columns.source_indices.push_back(static_cast<std::int64_t>(first + s.source));
    columns.pixel_hashes.push_back(records.at(s.source).pixel_hash);
    columns.checksums.push_back(f.checksum);
    columns.geometry.push_back(f.geometry);
    std::map<std::string, std::string> meta = f.meta;
    for (const auto& [name, value] : raw_meta(source.info)) meta[name] = value;
    privacy.metadata(meta);
    for (const auto& [name, value] : meta) meta_names.insert(name);
    raw.push_back(std::move(meta));
  }
  columns.meta = detail::impute_columns(raw, std::vector<std::string>(meta_names.begin(), meta_names.end()),
                                        columns.labels, options.impute, &result.imputed);
  std::vector<detail::RejectedRecord> rejected_list;
  for (auto& [i, record] : rejected) rejected_list.push_back(std::move(record));

  // Assemble OUTPUT.tmp, flush it, rename it over OUTPUT.
  const auto assemble_start = Clock::now();
  std::int64_t read_ns = 0, compress_ns = 0, write_ns = 0;
  try {
    detail::CacheWriter writer(temp_output, header);
    Progress write_progress("write", samples.size(), "images", options.progress);
    ThreadPool pool(options.threads == 0 ? 0 : static_cast<std::size_t>(options.threads));
    constexpr std::size_t kBlock = 32;
    std::vector<std::vector<std::uint8_t>> block(kBlock);
    std::atomic<std::int64_t> read_total{0}, compress_total{0};
    for (std::size_t start = 0; start < samples.size(); start += kBlock) {
      const std::size_t n = std::min(kBlock, samples.size() - start);
      // Read (and compress) a block in parallel, then write it in order.
      pool.parallel_for(n, [&](std::size_t k) {
        const Sample& s = samples[start + k];
        const FrameRecord& f = *s.frame;
        auto t0 = Clock::now();
        std::vector<std::uint8_t>& bytes = block[k];
        bytes.resize(writer.image_bytes());
        if (f.cache_index >= 0) {
          previous.reader->read_image(static_cast<std::size_t>(f.cache_index), bytes.data());
        } else {
          detail::read_batch_pixels(f.batch_path, f.offset, bytes.data(), bytes.size());
        }
        if (hash64(bytes.data(), bytes.size()) != f.checksum) {
          throw FormatError("the stored pixels of " + sources[s.source].report_path + " (frame " +
                            std::to_string(f.frame_index) + ") do not match their checksum (" +
                            (f.cache_index >= 0 ? options.output : f.batch_path) + ")");
        }
        read_total += ns_since(t0);
        if (options.deflate > 0) {
          t0 = Clock::now();
          bytes = detail::deflate_chunk(bytes.data(), bytes.size(), options.deflate);
          compress_total += ns_since(t0);
        }
      });
      const auto t0 = Clock::now();
      for (std::size_t k = 0; k < n; ++k) writer.write_image(start + k, block[k].data(), block[k].size());
      write_ns += ns_since(t0);
      write_progress.advance(n);
    }
    const auto t0 = Clock::now();
    nlohmann::json attributes{
        {"count_sources", static_cast<std::int64_t>(sources.size())},
        {"count_ok_files", static_cast<std::int64_t>(result.ok_files)},
        {"sources_total", static_cast<std::int64_t>(total)},
        {"shard_index", options.shard_index},
        {"shard_count", options.shard_count},
        {"multi_label", multi_label ? 1 : 0},
        {"missing_labels", options.missing_labels == MissingLabelPolicy::kDrop ? "drop" : "unlabeled"},
        {"impute", to_string(options.impute)},
        {schema::kPrivacy, detail::json_text(privacy.record().to_json())}};
    writer.finish(columns, rejected_list, class_names, config_json, config_hash, attributes);
    write_progress.finish();
    fsync_path(temp_output, false);
    write_ns += ns_since(t0);
    read_ns = read_total;
    compress_ns = compress_total;
  } catch (...) {
    fs::remove(temp_output, error);
    throw;
  }
  previous.reader.reset();
  result.assemble_seconds = seconds_since(assemble_start);
  result.seconds = seconds_since(build_start);

  // The report beside the cache.
  nlohmann::json counts{{"total", sources.size()},
                        {"ok", result.ok_files},
                        {"rejected", result.rejected_files},
                        {"by_reason", by_reason},
                        {"warnings", count_warnings(files)}};
  nlohmann::json preprocess_cost = times.to_json();
  result.report = {
      {"files", std::move(files)},
      {"counts", counts},
      {"build",
       {{"output", to_valid_utf8(options.output)},
        {"config_hash", config_hash},
        {"library_version", kVersion},
        {"shard", std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count)},
        {"threads", options.threads},
        {"images", result.images},
        {"decoded_files", result.decoded_files},
        {"reused_files", result.reused_files},
        {"resumed_files", result.resumed_files},
        {"unlabeled", result.unlabeled},
        {"dropped_unlabeled", result.dropped_unlabeled},
        {"missing_labels", options.missing_labels == MissingLabelPolicy::kDrop ? "drop" : "unlabeled"},
        {"impute", to_string(options.impute)},
        {"imputed", result.imputed}}},
      {"timings",
       {{"total_s", result.seconds},
        {"scan_s", result.scan_seconds},
        {"assemble_s", result.assemble_seconds},
        {"images_per_second",
         result.seconds > 0 ? static_cast<double>(result.images) / result.seconds : 0.0}}},
      {"stage_cost_ns",
       {{"preprocess", preprocess_cost},
        {"hash_sources_for_reuse", reuse_hash_ns},
        {"write_work_batches", collector.write_ns()},
        {"assemble_read", read_ns},
        {"assemble_compress", compress_ns},
        {"assemble_write", write_ns}}},
  };
  // Everything is written before anything is published: a report that cannot be written fails
  // the build with the previous cache and report in place and the work folder kept for a resume.
  privacy.finish_report(result.report);
  const std::string temp_report = result.report_path + ".tmp";
  try {
    write_file_atomically(temp_report, report_text(result.report));
  } catch (...) {
    fs::remove(temp_output, error);
    throw;
  }
  publish(temp_output, options.output, temp_report, result.report_path, work, parent);
  return result;
}

}  // namespace medload::loader
