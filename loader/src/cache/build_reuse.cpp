// build_cache's reuse planning: the previous cache at the output, the batches of an interrupted
// build, and which sources need no decoding because one of them already holds their result.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "build_steps.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/json_text.h"
#include "medload/core/text.h"
#include "medload/core/thread_pool.h"
#include "medload/core/version.h"
#include "metadata.h"
#include "privacy_filter.h"
#include "schema.h"

namespace medload::loader::detail {

namespace fs = std::filesystem;

namespace {

// XXH64 of a file's bytes (core::file_content_hash, as the scanner hashes); "" when it is empty
// or cannot be read, as the cache stores it.
std::string hash_file(const std::string& path) {
  const auto hash = file_content_hash(path);
  return hash ? hash_hex(*hash) : "";
}

// The tables of a previous cache that a rebuild reuses beyond what CacheReader holds, read
// through the schema (which validates them).
struct PreviousTables {
  std::vector<std::uint64_t> pixel_hashes;
  std::vector<RejectedRecord> rejected;
  RawMeta raw;
};

PreviousTables read_previous_tables(const CacheReader& reader) {
  PreviousTables tables;
  const schema::CacheFile file(reader.path());
  tables.pixel_hashes = schema::read_pixel_hashes(file, reader.size(), /*required=*/true);
  tables.rejected = schema::read_rejected(file);
  std::vector<MetaColumn> columns;
  for (const std::string& name : reader.meta_names()) columns.push_back(reader.meta(name));
  tables.raw.resize(reader.size());
  columns_to_raw(columns, tables.raw);
  return tables;
}

[[noreturn]] void refuse_to_replace(const std::string& output, const Error& e) {
  throw FormatError("refusing to replace " + output + ", which is not a cache this medload can read (" +
                    e.what() + "); move it away or choose another output");
}

// The previous cache's ok files, by source hash, their frames pointing at its images.
std::map<std::string, FileRecord> previous_files(const CacheReader& reader, const PreviousTables& tables) {
  std::map<std::string, FileRecord> ok;
  for (std::size_t i = 0; i < reader.size(); ++i) {
    FileRecord& record = ok[reader.source_hashes()[i]];
    record.source_hash = reader.source_hashes()[i];
    record.pixel_hash = tables.pixel_hashes[i];
    FrameRecord frame;
    frame.frame_index = reader.frame_indices()[i];
    // A cache written before text was made UTF-8 may hold other bytes.
    frame.patient_id = normalize_patient_id(to_valid_utf8(reader.patient_ids()[i]));
    frame.site = to_valid_utf8(reader.sites()[i]);
    frame.meta = tables.raw[i];
    frame.geometry = reader.geometry(i);
    frame.checksum = reader.checksums()[i];
    frame.height = reader.height();
    frame.width = reader.width();
    frame.channels = reader.channels();
    frame.type = reader.dtype();
    frame.cache_index = static_cast<std::int64_t>(i);
    record.frames.push_back(std::move(frame));
  }
  for (auto& [hash, record] : ok) {
    record.frame_count = static_cast<int>(record.frames.size());
    record.format = "";
  }
  return ok;
}

// The previous cache's rejections that hold again for the same bytes, by source hash.
std::map<std::string, RejectedRecord> previous_rejections(std::vector<RejectedRecord>&& rejected) {
  std::map<std::string, RejectedRecord> kept;
  for (RejectedRecord& record : rejected) {
    // A duplicate depends on the other files, a missing file may appear: decide those again.
    // A cache without /rejected/outcome (older) has nothing to reuse.
    if (record.source_hash.empty() || record.outcome.empty() || record.reason == "duplicate" ||
        record.reason == "unreadable") {
      continue;
    }
    record.source_index = 0;
    record.path.clear();
    kept[record.source_hash] = std::move(record);
  }
  return kept;
}

nlohmann::json reused_outcome(const SourceFile& source, const FileRecord& record, ReuseOrigin origin) {
  nlohmann::json outcome = {{"status", "ok"},
                            {"reason", nullptr},
                            {"detail", ""},
                            {"frames", record.frames.size()},
                            {"format", record.format},
                            {"content_hash", record.source_hash},
                            {"reused", to_string(origin)}};
  note_source_json(source, outcome);
  return outcome;
}

nlohmann::json reused_rejection(const SourceFile& source, const RejectedRecord& record) {
  nlohmann::json outcome = core::parse_json(record.outcome);
  if (!outcome.is_object()) outcome = nlohmann::json::object();
  note_source_json(source, outcome);
  outcome["status"] = "rejected";
  outcome["reason"] = record.reason;
  outcome["detail"] = record.detail;
  outcome["reused"] = "cache";
  return outcome;
}

}  // namespace

PreviousCache open_previous(const std::string& output, const std::string& config_hash,
                            const PrivacyFilter& privacy) {
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
  previous.ok = previous_files(*reader, tables);
  previous.rejected = previous_rejections(std::move(tables.rejected));
  previous.reader = std::move(reader);
  return previous;
}

const char* to_string(ReuseOrigin origin) {
  switch (origin) {
    case ReuseOrigin::kWorkFolder:
      return "partial";
    case ReuseOrigin::kPreviousCache:
      return "cache";
  }
  return "?";
}

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

BuildFiles plan_reuse(const std::vector<SourceFile>& sources,
                      const std::map<std::string, FileRecord>& resumable, const PreviousCache& previous,
                      int threads) {
  BuildFiles files;
  // Which files can be taken as they are needs each file's content hash, so only when there is
  // something to reuse.
  files.source_hashes.resize(sources.size());
  const auto hash_start = Clock::now();
  if (!resumable.empty() || !previous.ok.empty() || !previous.rejected.empty()) {
    ThreadPool pool(build_pool_threads(threads));
    pool.parallel_for(sources.size(),
                      [&](std::size_t i) { files.source_hashes[i] = hash_file(sources[i].path); });
  }
  files.reuse_hash_ns = ns_since(hash_start);

  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string& hash = files.source_hashes[i];
    // A file with targets is decoded again: its hash covers the image, not its mask or boxes.
    if (!hash.empty() && !sources[i].targets.any()) {
      const auto take = [&](const FileRecord& record, ReuseOrigin origin) {
        files.records[i] = record;
        files.outcomes[i] = reused_outcome(sources[i], record, origin);
        files.origin[i] = origin;
      };
      if (auto it = resumable.find(hash); it != resumable.end()) {
        take(it->second, ReuseOrigin::kWorkFolder);
        continue;
      }
      if (auto it = previous.ok.find(hash); it != previous.ok.end()) {
        take(it->second, ReuseOrigin::kPreviousCache);
        continue;
      }
      if (auto it = previous.rejected.find(hash); it != previous.rejected.end()) {
        files.outcomes[i] = reused_rejection(sources[i], it->second);
        continue;
      }
    }
    files.to_scan.push_back(sources[i]);
    files.scan_index.push_back(i);
  }
  return files;
}

}  // namespace medload::loader::detail
