#include "medload/loader/cache/inspect.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iomanip>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "h5.h"
#include "medload/core/check_range.h"
#include "medload/core/error.h"
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
      const auto parsed = nlohmann::json::parse(text, nullptr, false);
      attributes[attribute] = parsed.is_discarded() ? nlohmann::json(text) : parsed;
    }
    splits[name] = {{"attributes", attributes}, {"datasets", {{"part", part_counts(reader, core.part)}}}};
  }
  return splits;
}

}  // namespace

nlohmann::json inspect_cache(const std::string& path, const InspectOptions& options) {
  core::check_range("InspectOptions.threads", options.threads, 0, 256);
  const CacheReader reader(path);
  nlohmann::json summary;
  summary["path"] = path;
  summary["schema_version"] = reader.schema_version();
  summary["library_version"] = reader.library_version();
  summary["build_time"] = reader.has_attribute("build_time") ? reader.attribute("build_time") : "";
  summary["config_hash"] = reader.config_hash();
  const auto config = nlohmann::json::parse(reader.config_json(), nullptr, false);
  summary["config"] = config.is_discarded() ? nlohmann::json(reader.config_json()) : config;
  summary["images"] = {{"count", reader.size()},
                       {"channels", reader.channels()},
                       {"height", reader.height()},
                       {"width", reader.width()},
                       {"dtype", reader.dtype() == PixelType::kUInt16 ? "uint16" : "uint8"},
                       {"bytes_per_image", reader.image_bytes()}};

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
  summary["unlabeled"] = unlabeled;
  if (reader.multi_label()) {
    nlohmann::json positives = nlohmann::json::object();
    const auto& matrix = reader.label_matrix();
    for (std::size_t c = 0; c < names.size(); ++c) {
      std::size_t n = 0;
      for (std::size_t i = 0; i < reader.size(); ++i) n += matrix[i * names.size() + c];
      positives[names[c]] = n;
    }
    summary["multi_label"] = positives;
  }
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

  nlohmann::json metadata = nlohmann::json::object();
  for (const std::string& name : reader.meta_names()) {
    const MetaColumn column = reader.meta(name);
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
    metadata[name] = entry;
  }
  summary["metadata"] = metadata;
  summary["splits"] = inspect_splits(reader);
  summary["privacy"] = describe_identifying_fields(reader, schema::read_privacy(schema::CacheFile(path)));

  const auto rejected = reader.rejected();
  std::map<std::string, std::size_t> by_reason;
  nlohmann::json examples = nlohmann::json::array();
  for (const auto& r : rejected) {
    ++by_reason[r.reason];
    if (examples.size() < options.rejected_examples) {
      examples.push_back({{"path", r.path}, {"reason", r.reason}, {"detail", r.detail}});
    }
  }
  summary["rejected"] = {{"count", rejected.size()}, {"by_reason", by_reason}, {"examples", examples}};

  nlohmann::json attributes = nlohmann::json::object();
  const std::set<std::string> shown{"schema_version", "library_version", "build_time",
                                    "config",         "config_hash",     "class_names",
                                    schema::kPrivacy};
  for (const std::string& name : reader.attribute_names()) {
    if (!shown.count(name)) attributes[name] = reader.attribute(name);
  }
  summary["attributes"] = attributes;

  if (options.verify) {
    std::vector<std::uint8_t> ok(reader.size(), 0);
    ThreadPool pool(static_cast<std::size_t>(options.threads));
    pool.parallel_for(reader.size(), [&](std::size_t i) { ok[i] = reader.verify(i) ? 1 : 0; });
    nlohmann::json failures = nlohmann::json::array();
    for (std::size_t i = 0; i < reader.size(); ++i) {
      if (ok[i]) continue;
      failures.push_back({{"index", i},
                          {"source_path", reader.source_paths()[i]},
                          {"frame_index", reader.frame_indices()[i]}});
    }
    summary["verify"] = {{"checked", reader.size()}, {"failed", failures.size()}, {"failures", failures}};
  }
  return summary;
}

std::string format_inspection(const nlohmann::json& s) {
  std::ostringstream out;
  const auto& images = s["images"];
  out << s["path"].get<std::string>() << ": " << images["count"] << " images, " << images["channels"] << "x"
      << images["height"] << "x" << images["width"] << " " << images["dtype"].get<std::string>() << "\n";
  out << "  schema " << s["schema_version"] << ", built by medload "
      << s["library_version"].get<std::string>() << " at " << s["build_time"].get<std::string>()
      << ", config " << s["config_hash"].get<std::string>() << "\n";
  out << "  classes:";
  for (const auto& c : s["classes"]) out << " " << c["name"].get<std::string>() << "=" << c["count"];
  out << " (unlabeled " << s["unlabeled"] << ")\n";
  if (s.contains("multi_label")) {
    out << "  multi-label positives:";
    for (const auto& [name, n] : s["multi_label"].items()) out << " " << name << "=" << n;
    out << "\n";
  }
  out << "  sites:";
  for (const auto& [name, n] : s["sites"].items()) out << " " << name << "=" << n;
  out << "\n  patients: " << s["patients"]
      << " (samples without a patient id: " << s["samples_without_patient"] << ")\n";
  if (!s["metadata"].empty()) {
    out << "  metadata:\n";
    for (const auto& [name, m] : s["metadata"].items()) {
      out << "    " << name << ": ";
      if (m["numeric"].get<bool>() && m.contains("mean")) {
        out << "mean " << m["mean"].get<double>() << ", range " << m["min"].get<double>() << ".."
            << m["max"].get<double>();
      } else if (m.contains("values")) {
        bool first = true;
        for (const auto& [v, n] : m["values"].items()) {
          out << (first ? "" : ", ") << (v.empty() ? "(missing)" : v) << "=" << n;
          first = false;
        }
      } else if (m.contains("distinct")) {
        out << m["distinct"] << " distinct values";
      }
      out << " (imputed " << m["imputed"] << ")\n";
    }
  }
  if (!s["splits"].empty()) {
    out << "  splits:\n";
    for (const auto& [name, split] : s["splits"].items()) {
      out << "    " << name << ":";
      for (const auto& [dataset, values] : split["datasets"].items()) {
        out << " " << dataset << " {";
        bool first = true;
        for (const auto& [value, entry] : values.items()) {
          out << (first ? "" : ", ") << value << ": " << entry["count"];
          first = false;
        }
        out << "}";
      }
      for (const char* key : {"mean", "std"}) {
        if (split["attributes"].contains(key)) out << " " << key << "=" << split["attributes"][key].dump();
      }
      out << "\n";
    }
  }
  const auto& rejected = s["rejected"];
  out << "  rejected files: " << rejected["count"];
  if (!rejected["by_reason"].empty()) {
    out << " (";
    bool first = true;
    for (const auto& [reason, n] : rejected["by_reason"].items()) {
      out << (first ? "" : ", ") << reason << " " << n;
      first = false;
    }
    out << ")";
  }
  out << "\n";
  for (const auto& e : rejected["examples"]) {
    out << "    " << e["path"].get<std::string>() << ": " << e["reason"].get<std::string>() << " ("
        << e["detail"].get<std::string>() << ")\n";
  }
  if (s.contains("privacy")) {
    const auto& p = s["privacy"];
    out << "  identifying fields (profile: " << p["profile"].get<std::string>() << "):\n";
    for (const char* key : {"patient_ids", "source_paths", "rejected_paths", "sites", "metadata", "report"}) {
      std::string label = key;
      std::replace(label.begin(), label.end(), '_', ' ');
      out << "    " << label << ": " << p[key].get<std::string>() << "\n";
    }
    for (const auto& removed : p["removed"]) out << "    removed: " << removed.get<std::string>() << "\n";
  }
  const auto& config = s["config"];
  if (config.is_object() && config.contains("preprocess"))
    out << "  preprocess: " << config["preprocess"].dump() << "\n";
  if (s.contains("verify")) {
    const auto& v = s["verify"];
    out << "  verify: " << v["checked"] << " images checked, " << v["failed"] << " failed\n";
    for (const auto& f : v["failures"]) {
      out << "    checksum mismatch: image " << f["index"] << " (" << f["source_path"].get<std::string>()
          << ", frame " << f["frame_index"] << ")\n";
    }
  }
  return out.str();
}

}  // namespace medload::loader
