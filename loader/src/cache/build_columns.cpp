// build_cache's tables: the report's entries and /rejected, then the cache's images (samples),
// their common shape and their per-image columns, all in input order.

#include <algorithm>
#include <set>

#include "build_steps.h"
#include "medload/core/error.h"
#include "metadata.h"
#include "privacy_filter.h"

namespace medload::loader::detail {

ReportRows build_report_rows(const BuildInputs& inputs, BuildFiles& files, PrivacyFilter& privacy,
                             BuildResult& result) {
  ReportRows rows;
  for (std::size_t i = 0; i < inputs.sources.size(); ++i) {
    nlohmann::json& outcome = files.outcomes[i];
    privacy.scrub_outcome(outcome);
    rows.files.push_back(outcome);
    if (files.records.count(i)) {
      ++result.ok_files;
      continue;
    }
    ++result.rejected_files;
    const std::string reason = outcome.value("reason", nlohmann::json("unknown")).is_string()
                                   ? outcome["reason"].get<std::string>()
                                   : "unknown";
    ++rows.by_reason[reason];
    std::string hash = files.source_hashes[i];
    if (hash.empty() && outcome.contains("content_hash") && outcome["content_hash"].is_string()) {
      hash = outcome["content_hash"].get<std::string>();
      if (hash == "0000000000000000") hash.clear();
    }
    rows.rejected.push_back({static_cast<std::int64_t>(inputs.first + i),
                             privacy.source_path(inputs.sources[i]), reason,
                             outcome.value("detail", std::string()), hash, json_text(outcome)});
  }
  return rows;
}

std::vector<Sample> select_samples(const BuildOptions& options, const std::vector<SourceFile>& sources,
                                   const std::map<std::size_t, FileRecord>& records, BuildResult& result) {
  std::vector<Sample> samples;
  for (const auto& [i, record] : records) {
    if (sources[i].info.unlabeled() && options.missing_labels == MissingLabelPolicy::kDrop) {
      result.dropped_unlabeled += record.frames.size();
      continue;
    }
    for (const FrameRecord& frame : record.frames) samples.push_back({i, &frame});
  }
  result.images = samples.size();
  return samples;
}

CacheHeader cache_header(const BuildOptions& options, const std::vector<SourceFile>& sources,
                         const std::vector<Sample>& samples) {
  CacheHeader header;
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
    const LabelMask& mask = f.targets.mask;
    if (f.targets.mask_state == TargetState::kValid && (mask.height != f.height || mask.width != f.width)) {
      throw FormatError("the preprocessed mask of " + sources[s.source].report_path + " is " +
                        std::to_string(mask.width) + "x" + std::to_string(mask.height) + ", its image " +
                        std::to_string(f.width) + "x" + std::to_string(f.height));
    }
  }
  return header;
}

namespace {

// Sample `info`'s row of /label_matrix: 1 for its labels, -1 for its unknown labels, 0 for the
// other classes; all -1 when it is unlabeled (an unlabeled sample is not a negative).
std::vector<std::int8_t> label_row(const SampleInfo& info,
                                   const std::map<std::string, std::int64_t>& class_index) {
  std::vector<std::int8_t> row(class_index.size(), info.unlabeled() ? -1 : 0);
  for (const auto& label : info.labels) row[static_cast<std::size_t>(class_index.at(label))] = 1;
  for (const auto& label : info.unknown_labels) row[static_cast<std::size_t>(class_index.at(label))] = -1;
  return row;
}

// Appends `row` to the matrix and counts its unknown entries into the build's figures.
void append_label_row(const std::vector<std::int8_t>& row, CacheColumns& columns, BuildResult& result) {
  columns.label_matrix.insert(columns.label_matrix.end(), row.begin(), row.end());
  const auto unknown = static_cast<std::size_t>(std::count(row.begin(), row.end(), std::int8_t{-1}));
  result.unknown_label_entries += unknown;
  if (unknown > 0) ++result.samples_with_unknown_labels;
}

// The /targets rows of the samples, and the classes they use: the class map's, or without one the
// names read_inputs gave, extended to the largest id a stored mask, box or landmark uses.
TargetColumns target_columns(const BuildInputs& inputs, const std::vector<Sample>& samples,
                             TargetSummary& summary) {
  TargetColumns columns;
  std::vector<std::string> names = inputs.target_classes.names;
  if (names.empty()) names.emplace_back("background");
  std::int32_t largest = 0;
  for (const Sample& s : samples) {
    const FrameTargets& t = s.frame->targets;
    append_targets(columns, t);
    ++summary.masks[static_cast<std::size_t>(t.mask_state)];
    ++summary.boxes[static_cast<std::size_t>(t.boxes_state)];
    ++summary.landmarks[static_cast<std::size_t>(t.landmarks_state)];
    summary.box_count += t.boxes.size();
    summary.boxes_dropped += t.boxes_dropped;
    summary.landmark_count += t.landmarks.size();
    summary.landmarks_dropped += t.landmarks_dropped;
    largest = std::max<std::int32_t>(largest, s.frame->mask_max);
    for (const Box& b : t.boxes) largest = std::max(largest, b.label);
    for (const Landmark& p : t.landmarks) largest = std::max(largest, p.label);
  }
  if (!inputs.class_map) {
    while (static_cast<std::int32_t>(names.size()) <= largest) names.push_back(std::to_string(names.size()));
  }
  summary.classes = names.size();
  columns.classes = std::move(names);
  return columns;
}

}  // namespace

CacheColumns build_columns(const BuildOptions& options, const BuildInputs& inputs,
                           const std::map<std::size_t, FileRecord>& records,
                           const std::vector<Sample>& samples, PrivacyFilter& privacy, BuildResult& result) {
  const auto& class_names = inputs.class_names;
  std::map<std::string, std::int64_t> class_index;
  for (std::size_t k = 0; k < class_names.size(); ++k)
    class_index[class_names[k]] = static_cast<std::int64_t>(k);
  CacheColumns columns;
  columns.multi_label = inputs.multi_label;
  RawMeta raw;
  std::set<std::string> meta_names;
  for (const Sample& s : samples) {
    const SourceFile& source = inputs.sources[s.source];
    const FrameRecord& f = *s.frame;
    const FileRecord& file = records.at(s.source);
    const auto& labels = source.info.labels;
    columns.labels.push_back(labels.size() == 1 ? class_index.at(labels[0]) : -1);
    if (source.info.unlabeled()) ++result.unlabeled;
    if (inputs.multi_label) append_label_row(label_row(source.info, class_index), columns, result);
    // What the manifest or folder says now wins; the decoded header fills the rest.
    // A previous cache's values are already in this build's form (require_compatible).
    const bool stored = f.cache_index >= 0;
    columns.patient_ids.push_back(privacy.patient_id(source.info.patient_id, f.patient_id, stored));
    columns.sites.push_back(privacy.site(source.info.site, f.site, stored));
    columns.source_paths.push_back(privacy.source_path(source));
    columns.source_hashes.push_back(file.source_hash);
    columns.frame_indices.push_back(f.frame_index);
    columns.source_indices.push_back(static_cast<std::int64_t>(inputs.first + s.source));
    columns.pixel_hashes.push_back(file.pixel_hash);
    columns.checksums.push_back(f.checksum);
    columns.geometry.push_back(f.geometry);
    std::map<std::string, std::string> meta = f.meta;
    for (const auto& [name, value] : raw_meta(source.info)) meta[name] = value;
    privacy.metadata(meta);
    for (const auto& [name, value] : meta) meta_names.insert(name);
    raw.push_back(std::move(meta));
  }
  columns.meta = impute_columns(raw, std::vector<std::string>(meta_names.begin(), meta_names.end()),
                                columns.labels, options.impute, &result.imputed);
  if (inputs.has_targets) columns.targets = target_columns(inputs, samples, result.targets);
  return columns;
}

}  // namespace medload::loader::detail
