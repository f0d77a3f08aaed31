#include "medload/loader/cache/inspect.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "h5.h"
#include "medload/core/check_range.h"
#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "medload/core/thread_pool.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/privacy.h"
#include "schema.h"

namespace medload::loader {

namespace {

// Per part value of each split's `part` dataset (read and validated through the schema): the
// sample count and the class counts; the split's attributes as they are.
nlohmann::json part_counts(const CacheReader& reader, const std::vector<std::int8_t>& part) {
  const std::size_t classes = reader.class_names().size();
  std::map<std::int64_t, std::pair<std::size_t, std::vector<std::size_t>>> counts;
  for (std::size_t i = 0; i < part.size(); ++i) {
    auto& [count, per_class] = counts[part[i]];
    per_class.resize(classes + 1, 0);
    ++count;
    const std::int64_t label = reader.labels()[i];
    ++per_class[label >= 0 ? static_cast<std::size_t>(label) : classes];
  }
  nlohmann::json by_value = nlohmann::json::object();
  for (const auto& [value, item] : counts) {
    nlohmann::json class_counts = nlohmann::json::object();
    for (std::size_t c = 0; c < classes; ++c) class_counts[reader.class_names()[c]] = item.second[c];
    class_counts["(unlabeled)"] = item.second[classes];
    by_value[std::to_string(value)] = {{"count", item.first}, {"classes", class_counts}};
  }
  return by_value;
}

nlohmann::json inspect_splits(const CacheReader& reader) {
  nlohmann::json splits = nlohmann::json::object();
  const schema::CacheFile file(reader.path());
  for (const std::string& name : schema::split_names(file)) {
    const schema::SplitCore core = schema::read_split_core(file, name, reader.size());
    const h5::Group split = h5::open_group(file.id(), std::string(schema::kSplits) + "/" + name);
    nlohmann::json attributes = nlohmann::json::object();
    for (const std::string& attribute : h5::list_attributes(split.id())) {
      const std::string text = h5::attribute_as_text(split.id(), attribute);
      const auto parsed = core::parse_json(text);
      attributes[attribute] = parsed.is_discarded() ? nlohmann::json(text) : parsed;
    }
    splits[name] = {{"attributes", attributes}, {"datasets", {{"part", part_counts(reader, core.part)}}}};
  }
  return splits;
}

// Where the file is, which schema and medload version wrote it, when, and with which config.
nlohmann::json provenance(const CacheReader& reader, const std::string& path) {
  nlohmann::json summary;
  summary["path"] = path;
  summary["schema_version"] = reader.schema_version();
  summary["library_version"] = reader.library_version();
  summary["build_time"] = reader.has_attribute(schema::kBuildTime) ? reader.attribute(schema::kBuildTime) : "";
  summary["config_hash"] = reader.config_hash();
  const auto config = core::parse_json(reader.config_json());
  summary["config"] = config.is_discarded() ? nlohmann::json(reader.config_json()) : config;
  return summary;
}

nlohmann::json image_shape(const CacheReader& reader) {
  return {{"count", reader.size()},
          {"channels", reader.channels()},
          {"height", reader.height()},
          {"width", reader.width()},
          {"dtype", reader.dtype() == PixelType::kUInt16 ? "uint16" : "uint8"},
          {"bytes_per_image", reader.image_bytes()}};
}

// In a multi-label cache: "multi_label", the positives (1) per class, and when any entry is
// unknown (-1) "multi_label_unknown", the unknown entries per class.
void add_multi_label_counts(nlohmann::json& summary, const CacheReader& reader) {
  const auto& names = reader.class_names();
  const auto& matrix = reader.label_matrix();
  std::vector<std::size_t> positives(names.size(), 0), unknown(names.size(), 0);
  for (std::size_t e = 0; e < matrix.size(); ++e) {
    positives[e % names.size()] += matrix[e] == 1;
    unknown[e % names.size()] += matrix[e] == -1;
  }
  nlohmann::json positive_counts = nlohmann::json::object(), unknown_counts = nlohmann::json::object();
  for (std::size_t c = 0; c < names.size(); ++c) {
    positive_counts[names[c]] = positives[c];
    unknown_counts[names[c]] = unknown[c];
  }
  summary["multi_label"] = positive_counts;
  if (std::any_of(unknown.begin(), unknown.end(), [](std::size_t n) { return n > 0; })) {
    summary["multi_label_unknown"] = unknown_counts;
  }
}

// Rows of a multi-label cache about which nothing is known: every entry -1.
std::size_t unknown_rows(const CacheReader& reader) {
  const auto& matrix = reader.label_matrix();
  const std::size_t k = reader.class_names().size();
  std::size_t rows = 0;
  for (std::size_t start = 0; k > 0 && start + k <= matrix.size(); start += k) {
    rows += std::all_of(matrix.begin() + static_cast<std::ptrdiff_t>(start),
                        matrix.begin() + static_cast<std::ptrdiff_t>(start + k),
                        [](std::int8_t v) { return v < 0; });
  }
  return rows;
}

// "classes" (samples per class), "unlabeled" (in a multi-label cache, the samples whose every
// entry is unknown: /labels is -1 for every sample without exactly one label) and, in a
// multi-label cache, the counts of add_multi_label_counts.
void add_label_counts(nlohmann::json& summary, const CacheReader& reader) {
  const auto& names = reader.class_names();
  std::vector<std::size_t> per_class(names.size(), 0);
  std::size_t unlabeled = 0;
  for (std::int64_t label : reader.labels()) {
    if (label >= 0) {
      ++per_class[static_cast<std::size_t>(label)];
    } else {
      ++unlabeled;
    }
  }
  nlohmann::json classes = nlohmann::json::array();
  for (std::size_t c = 0; c < names.size(); ++c)
    classes.push_back({{"name", names[c]}, {"count", per_class[c]}});
  summary["classes"] = classes;
  summary["unlabeled"] = reader.multi_label() ? unknown_rows(reader) : unlabeled;
  if (reader.multi_label()) add_multi_label_counts(summary, reader);
}

// "sites" (samples per site), "patients" (distinct ids) and "samples_without_patient".
void add_site_and_patient_counts(nlohmann::json& summary, const CacheReader& reader) {
  std::map<std::string, std::size_t> sites;
  for (const auto& site : reader.sites()) ++sites[site.empty() ? "(unknown)" : site];
  summary["sites"] = sites;
  std::set<std::string> patients;
  std::size_t without_patient = 0;
  for (const auto& patient : reader.patient_ids()) {
    if (patient.empty()) {
      ++without_patient;
    } else {
      patients.insert(patient);
    }
  }
  summary["patients"] = patients.size();
  summary["samples_without_patient"] = without_patient;
}

// One metadata column: how many values were imputed; the mean and range of a numeric column
// (over the values that are not NaN, when there are any), the value counts of a text column with
// at most 20 distinct values and the number of distinct values of any text column.
nlohmann::json metadata_column_summary(const MetaColumn& column) {
  std::size_t imputed = 0;
  for (auto flag : column.imputed) imputed += flag;
  nlohmann::json entry{{"numeric", column.numeric}, {"imputed", imputed}};
  if (column.numeric) {
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    std::size_t n = 0;
    for (double v : column.values) {
      if (std::isnan(v)) continue;
      sum += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      ++n;
    }
    if (n > 0) {
      entry["mean"] = sum / static_cast<double>(n);
      entry["min"] = lo;
      entry["max"] = hi;
    }
  } else {
    std::map<std::string, std::size_t> values;
    for (const auto& v : column.text) ++values[v];
    if (values.size() <= 20) entry["values"] = values;
    entry["distinct"] = values.size();
  }
  return entry;
}

nlohmann::json metadata_summary(const CacheReader& reader) {
  nlohmann::json metadata = nlohmann::json::object();
  for (const std::string& name : reader.meta_names())
    metadata[name] = metadata_column_summary(reader.meta(name));
  return metadata;
}

// All rejected files counted by reason; the first `listed` of them by path, reason and detail.
nlohmann::json rejected_summary(const CacheReader& reader, std::size_t listed) {
  const auto rejected = reader.rejected();
  std::map<std::string, std::size_t> by_reason;
  nlohmann::json examples = nlohmann::json::array();
  for (const auto& r : rejected) {
    ++by_reason[r.reason];
    if (examples.size() < listed) {
      examples.push_back({{"path", r.path}, {"reason", r.reason}, {"detail", r.detail}});
    }
  }
  return {{"count", rejected.size()}, {"by_reason", by_reason}, {"examples", examples}};
}

// The root attributes the other fields do not already show, as text.
nlohmann::json other_attributes(const CacheReader& reader) {
  nlohmann::json attributes = nlohmann::json::object();
  const std::set<std::string> shown{schema::kSchemaVersion, schema::kLibraryVersion, schema::kBuildTime,
                                    schema::kConfig,        schema::kConfigHash,     schema::kClassNames,
                                    schema::kPrivacy};
  for (const std::string& name : reader.attribute_names()) {
    if (!shown.count(name)) attributes[name] = reader.attribute(name);
  }
  return attributes;
}

// Images per state of one kind of target: {"valid", "invalid", "none"}.
nlohmann::json state_counts(const std::vector<TargetState>& states) {
  std::size_t counts[3] = {0, 0, 0};
  for (const TargetState state : states) ++counts[static_cast<std::size_t>(state)];
  return {{"valid", counts[1]}, {"invalid", counts[2]}, {"none", counts[0]}};
}

std::size_t sum(const std::vector<std::uint32_t>& counts) {
  std::size_t total = 0;
  for (const std::uint32_t n : counts) total += n;
  return total;
}

// The targets: the classes, and per kind the images per state; the boxes' and landmarks' totals
// and how many preprocessing dropped.
nlohmann::json targets_summary(const CacheReader& reader) {
  nlohmann::json masks = state_counts(reader.mask_states());
  masks["stored"] = reader.has_masks();
  nlohmann::json boxes = state_counts(reader.box_states());
  boxes["count"] = reader.box_count();
  boxes["dropped"] = sum(reader.boxes_dropped());
  nlohmann::json landmarks = state_counts(reader.landmark_states());
  landmarks["count"] = reader.landmark_count();
  landmarks["dropped"] = sum(reader.landmarks_dropped());
  return {{"classes", reader.target_classes().names},
          {"masks", masks},
          {"boxes", boxes},
          {"landmarks", landmarks}};
}

// The images whose `ok` entry is 0, by index, source path and frame.
nlohmann::json failures_of(const CacheReader& reader, const std::vector<std::uint8_t>& ok) {
  nlohmann::json failures = nlohmann::json::array();
  for (std::size_t i = 0; i < reader.size(); ++i) {
    if (ok[i]) continue;
    failures.push_back({{"index", i},
                        {"source_path", reader.source_paths()[i]},
                        {"frame_index", reader.frame_indices()[i]}});
  }
  return failures;
}

// Every image read and compared with its checksum on `threads` threads (0 = all cores); the
// failures by index, source path and frame. With masks, every kValid mask read and inflated
// (masks have no checksum: a damaged deflate stream fails zlib's own check), under "masks".
nlohmann::json verify_images(const CacheReader& reader, int threads) {
  std::vector<std::uint8_t> ok(reader.size(), 0);
  ThreadPool pool(static_cast<std::size_t>(threads));
  pool.parallel_for(reader.size(), [&](std::size_t i) { ok[i] = reader.verify(i) ? 1 : 0; });
  const nlohmann::json failures = failures_of(reader, ok);
  nlohmann::json verified{{"checked", reader.size()}, {"failed", failures.size()}, {"failures", failures}};
  if (!reader.has_masks()) return verified;
  std::vector<std::uint8_t> mask_ok(reader.size(), 1);
  std::size_t checked = 0;
  for (const TargetState state : reader.mask_states()) checked += state == TargetState::kValid ? 1 : 0;
  pool.parallel_for(reader.size(), [&](std::size_t i) {
    if (reader.mask_states()[i] != TargetState::kValid) return;
    std::vector<std::uint16_t> mask(static_cast<std::size_t>(reader.height()) *
                                    static_cast<std::size_t>(reader.width()));
    try {
      reader.read_mask(i, mask.data());
    } catch (const Error&) {
      mask_ok[i] = 0;
    }
  });
  const nlohmann::json mask_failures = failures_of(reader, mask_ok);
  verified["masks"] = {{"checked", checked}, {"failed", mask_failures.size()}, {"failures", mask_failures}};
  return verified;
}

}  // namespace

nlohmann::json inspect_cache(const std::string& path, const InspectOptions& options) {
  core::check_range("InspectOptions.threads", options.threads, 0, 256);
  const CacheReader reader(path);
  nlohmann::json summary = provenance(reader, path);
  summary["images"] = image_shape(reader);
  add_label_counts(summary, reader);
  add_site_and_patient_counts(summary, reader);
  summary["metadata"] = metadata_summary(reader);
  if (reader.has_targets()) summary["targets"] = targets_summary(reader);
  summary["splits"] = inspect_splits(reader);
  summary["privacy"] = describe_identifying_fields(reader, schema::read_privacy(schema::CacheFile(path)));
  summary["rejected"] = rejected_summary(reader, options.rejected_examples);
  summary["attributes"] = other_attributes(reader);
  if (options.verify) summary["verify"] = verify_images(reader, options.threads);
  return summary;
}

}  // namespace medload::loader
