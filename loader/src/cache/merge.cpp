#include "medload/loader/cache/merge.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "cache_assembly.h"
#include "cache_writer.h"
#include "h5.h"
#include "medload/core/atomic_file.h"
#include "medload/core/check_range.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/json_text.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "metadata.h"
#include "schema.h"

namespace medload::loader {

namespace fs = std::filesystem;

void MergeOptions::validate() const {
  if (inputs.empty()) throw ConfigError("inputs is empty; give the shard caches to merge");
  if (output.empty()) throw ConfigError("output is empty; give the merged cache to write");
  core::check_range("deflate", deflate, 0, 9);
  std::error_code error;
  for (const std::string& input : inputs) {
    if (input == output || (fs::exists(output, error) && fs::equivalent(input, output, error))) {
      throw ConfigError("output " + output + " is also an input; write the merged cache elsewhere");
    }
  }
}

namespace {

struct Shard {
  std::string path;
  std::unique_ptr<CacheReader> reader;
  std::int64_t index = 0;
  std::int64_t count = 1;
  std::vector<std::int64_t> source_indices;
  std::vector<std::uint64_t> pixel_hashes;
  std::vector<detail::RejectedRecord> rejected;
  detail::RawMeta raw;
  std::string impute;
  std::string missing_labels;
  std::int64_t sources = 0;
  std::int64_t ok_files = 0;
  std::int64_t sources_total = 0;
  PrivacyRecord privacy;
};

// Everything a merge reads beyond the CacheReader goes through the schema (schema.h), which
// validates it before anything is allocated or indexed.
Shard open_shard(const std::string& path) {
  Shard shard;
  shard.path = path;
  shard.reader = std::make_unique<CacheReader>(path);
  const schema::CacheFile file(path);
  schema::BuildRecord record = schema::read_build_record(file);
  shard.index = record.shard.index;
  shard.count = record.shard.count;
  shard.sources = record.shard.sources;
  shard.ok_files = record.shard.ok_files;
  shard.sources_total = record.shard.sources_total;
  shard.impute = std::move(record.impute);
  shard.missing_labels = std::move(record.missing_labels);
  shard.privacy = std::move(record.privacy);
  const std::size_t n = shard.reader->size();
  shard.source_indices = schema::read_source_indices(file, n);
  shard.pixel_hashes = schema::read_pixel_hashes(file, n, /*required=*/false);
  shard.rejected = schema::read_rejected(file);
  for (auto& record : shard.rejected) {
    if (record.outcome.empty()) record.outcome = "{}";  // a cache from before /rejected/outcome
  }
  std::vector<MetaColumn> columns;
  for (const std::string& name : shard.reader->meta_names()) columns.push_back(shard.reader->meta(name));
  shard.raw.resize(n);
  detail::columns_to_raw(columns, shard.raw);
  return shard;
}

void require_same(const Shard& a, const Shard& b, const char* what, bool same) {
  if (!same) {
    throw FormatError("cannot merge " + b.path + " with " + a.path + ": their " + what +
                      " differ (merge shards of one build)");
  }
}

// Caches with targets must name the same target classes: a class id means one thing in the merged
// cache. A cache without targets (a shard none of whose images had any, or a schema version 1
// cache) names none and contributes kNone rows.
void require_same_target_classes(const std::vector<Shard>& shards, const Shard& shard) {
  if (!shard.reader->has_targets()) return;
  for (const Shard& other : shards) {
    if (&other == &shard) return;
    if (!other.reader->has_targets()) continue;
    const auto& a = other.reader->target_classes().names;
    const auto& b = shard.reader->target_classes().names;
    if (a != b) {
      throw FormatError("cannot merge " + shard.path + " with " + other.path +
                        ": their target classes differ (" + detail::json_text(b) + " in " + shard.path +
                        ", " + detail::json_text(a) + " in " + other.path +
                        "; build them with the same class map)");
    }
    return;
  }
}

// Every shard must come from one build (or compatible builds): config, version, classes, shape,
// shard count, policies, target classes and privacy settings.
void require_compatible(const std::vector<Shard>& shards) {
  const Shard& first = shards.front();
  for (const Shard& shard : shards) {
    require_same(first, shard, "config hashes", shard.reader->config_hash() == first.reader->config_hash());
    require_same(first, shard, "library versions",
                 shard.reader->library_version() == first.reader->library_version());
    require_same(first, shard, "class names", shard.reader->class_names() == first.reader->class_names());
    require_same(first, shard, "image shapes and types",
                 shard.reader->height() == first.reader->height() &&
                     shard.reader->width() == first.reader->width() &&
                     shard.reader->channels() == first.reader->channels() &&
                     shard.reader->dtype() == first.reader->dtype());
    require_same(first, shard, "shard counts", shard.count == first.count);
    require_same_target_classes(shards, shard);
    require_same(first, shard, "label and metadata policies",
                 shard.impute == first.impute && shard.missing_labels == first.missing_labels);
    if (!first.privacy.compatible_with(shard.privacy)) {
      throw FormatError("cannot merge " + shard.path + " with " + first.path + ": " + first.path +
                        " was built with " + first.privacy.settings_text() + ", " + shard.path + " with " +
                        shard.privacy.settings_text() +
                        " (merge only caches built with the same --pseudonymize key and privacy options)");
    }
  }
}

// Shards of one build: sorted by index, each exactly once. Independent caches: their sources
// numbered one after another.
void order_shards(std::vector<Shard>& shards, bool sharded) {
  if (!sharded) {
    std::int64_t offset = 0;
    for (Shard& shard : shards) {
      for (auto& index : shard.source_indices) index += offset;
      for (auto& record : shard.rejected) record.source_index += offset;
      offset += std::max(shard.sources_total, shard.sources);
    }
    return;
  }
  std::sort(shards.begin(), shards.end(), [](const Shard& a, const Shard& b) { return a.index < b.index; });
  if (static_cast<std::int64_t>(shards.size()) != shards.front().count) {
    std::string missing;
    std::set<std::int64_t> have;
    for (const Shard& s : shards) have.insert(s.index);
    for (std::int64_t i = 0; i < shards.front().count; ++i) {
      if (!have.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    }
    throw FormatError(
        "cannot merge: these are shards of a build in " + std::to_string(shards.front().count) +
        " shards, but " + std::to_string(shards.size()) + " were given" +
        (missing.empty() ? std::string(" (a shard is given twice)") : " (missing: " + missing + ")"));
  }
  for (std::size_t k = 0; k < shards.size(); ++k) {
    if (shards[k].index != static_cast<std::int64_t>(k)) {
      throw FormatError("cannot merge: shard " + std::to_string(shards[k].index) + " is given twice (" +
                        shards[k].path + ")");
    }
  }
}

// The build's validate.reject_duplicates, from the config stored in the cache (default on).
bool rejects_duplicates(const CacheReader& reader) {
  const auto config = core::parse_json(reader.config_json());
  if (config.is_object() && config.contains("validate") && config["validate"].contains("reject_duplicates") &&
      config["validate"]["reject_duplicates"].is_boolean()) {
    return config["validate"]["reject_duplicates"].get<bool>();
  }
  return true;
}

struct Sample {
  std::size_t shard;
  std::size_t index;
};

// The merged cache's images in shard order, and /rejected: every shard's, plus the sources whose
// pixels an earlier shard already holds (when the build rejected duplicates), by source index.
struct Selection {
  std::vector<Sample> samples;
  std::vector<detail::RejectedRecord> rejected;
  std::set<std::int64_t> dropped_sources;
  std::size_t duplicates = 0;
};

Selection select_samples(const std::vector<Shard>& shards, bool reject_duplicates) {
  Selection selection;
  std::map<std::uint64_t, std::pair<std::int64_t, std::string>> first_with;  // pixel hash -> (source, path)
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const Shard& shard = shards[s];
    for (const auto& record : shard.rejected) selection.rejected.push_back(record);
    for (std::size_t i = 0; i < shard.reader->size(); ++i) {
      const std::int64_t source = shard.source_indices[i];
      if (reject_duplicates) {
        const auto [it, inserted] = first_with.emplace(
            shard.pixel_hashes[i], std::make_pair(source, shard.reader->source_paths()[i]));
        if (!inserted && it->second.first != source) {
          if (selection.dropped_sources.insert(source).second) {
            const std::string& path = shard.reader->source_paths()[i];
            const std::string detail = "the same decoded pixels as " + it->second.second;
            const nlohmann::json outcome{{"path", path},
                                         {"status", "rejected"},
                                         {"reason", "duplicate"},
                                         {"detail", detail},
                                         {"duplicate_of", it->second.second}};
            selection.rejected.push_back({source, path, "duplicate", detail, shard.reader->source_hashes()[i],
                                          detail::json_text(outcome)});
          }
          ++selection.duplicates;
          continue;
        }
      }
      selection.samples.push_back({s, i});
    }
  }
  std::stable_sort(selection.rejected.begin(), selection.rejected.end(),
                   [](const auto& a, const auto& b) { return a.source_index < b.source_index; });
  return selection;
}

// Image `i`'s targets as `reader` stores them (the mask's state only: masks are copied by
// assemble_cache); all kNone when it has none.
FrameTargets stored_targets(const CacheReader& reader, std::size_t i) {
  FrameTargets targets;
  if (!reader.has_targets()) return targets;
  targets.mask_state = reader.mask_states()[i];
  targets.boxes_state = reader.box_states()[i];
  targets.boxes = reader.boxes(i);
  targets.landmarks_state = reader.landmark_states()[i];
  targets.landmarks = reader.landmarks(i);
  targets.boxes_dropped = reader.boxes_dropped()[i];
  targets.landmarks_dropped = reader.landmarks_dropped()[i];
  return targets;
}

// Image `i`'s row of the merged /label_matrix (K columns): a multi-label shard's row as it is
// (its -1 entries kept); from a single-label shard, 1 for its class and 0 elsewhere, or all -1
// (unknown) when it is unlabeled.
std::vector<std::int8_t> label_row(const CacheReader& reader, std::size_t i, std::size_t k) {
  if (reader.multi_label()) {
    const auto first = reader.label_matrix().begin() + static_cast<std::ptrdiff_t>(i * k);
    return std::vector<std::int8_t>(first, first + static_cast<std::ptrdiff_t>(k));
  }
  const std::int64_t label = reader.labels()[i];
  std::vector<std::int8_t> row(k, label >= 0 ? 0 : -1);
  if (label >= 0) row[static_cast<std::size_t>(label)] = 1;
  return row;
}

// The merged per-image columns, the metadata imputed again over all of them, the targets carried.
detail::CacheColumns merge_columns(const std::vector<Shard>& shards, const std::vector<Sample>& samples) {
  const Shard& first = shards.front();
  detail::CacheColumns columns;
  columns.multi_label =
      std::any_of(shards.begin(), shards.end(), [](const Shard& s) { return s.reader->multi_label(); });
  const std::size_t k = first.reader->class_names().size();
  detail::RawMeta raw;
  const auto has_targets = [](const Shard& s) { return s.reader->has_targets(); };
  const bool with_targets = std::any_of(shards.begin(), shards.end(), has_targets);
  if (with_targets) {
    columns.targets.classes =
        std::find_if(shards.begin(), shards.end(), has_targets)->reader->target_classes().names;
  }
  std::set<std::string> meta_names;
  for (const Shard& shard : shards) {
    for (const auto& name : shard.reader->meta_names()) meta_names.insert(name);
  }
  for (const Sample& sample : samples) {
    const Shard& shard = shards[sample.shard];
    const CacheReader& r = *shard.reader;
    const std::size_t i = sample.index;
    columns.labels.push_back(r.labels()[i]);
    if (columns.multi_label) {
      const std::vector<std::int8_t> row = label_row(r, i, k);
      columns.label_matrix.insert(columns.label_matrix.end(), row.begin(), row.end());
    }
    columns.patient_ids.push_back(r.patient_ids()[i]);
    columns.source_paths.push_back(r.source_paths()[i]);
    columns.source_hashes.push_back(r.source_hashes()[i]);
    columns.sites.push_back(r.sites()[i]);
    columns.frame_indices.push_back(r.frame_indices()[i]);
    columns.source_indices.push_back(shard.source_indices[i]);
    columns.pixel_hashes.push_back(shard.pixel_hashes[i]);
    columns.checksums.push_back(r.checksums()[i]);
    columns.geometry.push_back(r.geometry(i));
    raw.push_back(shard.raw[i]);
    if (with_targets) detail::append_targets(columns.targets, stored_targets(r, i));
  }
  std::map<std::string, std::size_t> imputed;
  columns.meta = detail::impute_columns(raw, std::vector<std::string>(meta_names.begin(), meta_names.end()),
                                        columns.labels, impute_policy_from_string(first.impute), &imputed);
  return columns;
}

// The merged cache's build record: counts over the shards, one shard, the combined privacy record.
schema::BuildRecord merged_record(const std::vector<Shard>& shards, bool sharded, bool multi_label,
                                  std::size_t dropped_sources) {
  const Shard& first = shards.front();
  schema::BuildRecord record;
  std::vector<PrivacyRecord> records;
  for (const Shard& shard : shards) {
    record.shard.sources += shard.sources;
    record.shard.ok_files += shard.ok_files;
    // A shared cache names its shards by file name only: their folders may name people.
    record.merged_from.push_back(first.privacy.share ? fs::path(shard.path).filename().string() : shard.path);
    records.push_back(shard.privacy);
  }
  record.shard.ok_files -= static_cast<std::int64_t>(dropped_sources);
  record.shard.sources_total = sharded ? first.sources_total : record.shard.sources;
  record.shard.index = 0;
  record.shard.count = 1;
  record.multi_label = multi_label;
  record.missing_labels = first.missing_labels;
  record.impute = first.impute;
  record.privacy = PrivacyRecord::combined(records);
  return record;
}

}  // namespace

MergeResult merge_caches(const MergeOptions& options) {
  options.validate();
  require_replaceable(options.output);
  h5::silence_errors();
  std::vector<Shard> shards;
  for (const std::string& input : options.inputs) shards.push_back(open_shard(input));
  require_compatible(shards);
  const bool sharded = shards.front().count > 1;
  order_shards(shards, sharded);
  const Shard& first = shards.front();
  const Selection selection = select_samples(shards, rejects_duplicates(*first.reader));
  const detail::CacheColumns columns = merge_columns(shards, selection.samples);

  detail::CacheHeader header;
  header.count = selection.samples.size();
  header.height = first.reader->height();
  header.width = first.reader->width();
  header.channels = first.reader->channels();
  header.dtype = first.reader->dtype();
  header.deflate = options.deflate;
  header.masks =
      std::any_of(shards.begin(), shards.end(), [](const Shard& s) { return s.reader->has_masks(); });
  const auto read_mask = [&](std::size_t index, std::uint16_t* out) {
    const Sample& sample = selection.samples[index];
    const CacheReader& r = *shards[sample.shard].reader;
    if (!r.has_masks() || r.mask_states()[sample.index] != TargetState::kValid) return false;
    r.read_mask(sample.index, out);
    return true;
  };
  const auto read = [&](std::size_t index, std::uint8_t* out, std::size_t size) {
    const Sample& sample = selection.samples[index];
    const CacheReader& r = *shards[sample.shard].reader;
    r.read_image(sample.index, out);
    if (hash64(out, size) != r.checksums()[sample.index]) {
      throw FormatError("image " + std::to_string(sample.index) + " (" + r.source_paths()[sample.index] +
                        ") of " + r.path() + " does not match its checksum; rebuild that shard");
    }
  };
  const auto finish = [&](detail::CacheWriter& writer) {
    writer.finish(columns, selection.rejected, first.reader->class_names(), first.reader->config_json(),
                  first.reader->config_hash(),
                  merged_record(shards, sharded, columns.multi_label, selection.dropped_sources.size()));
  };
  TemporaryFile temp(options.output + ".tmp");
  detail::assemble_cache(temp.path(), header, {"merge", options.progress, 0}, read, finish, read_mask);
  publish_atomically(temp.path(), options.output);
  temp.release();

  MergeResult result;
  result.shards = shards.size();
  result.duplicates = selection.duplicates;
  result.images = selection.samples.size();
  result.rejected = selection.rejected.size();
  return result;
}

}  // namespace medload::loader
