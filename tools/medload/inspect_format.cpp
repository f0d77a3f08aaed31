// The text `medload inspect` prints: one function per section of the summary, in print order.

#include "inspect_format.h"

#include <algorithm>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace medload::cli {

namespace {

using nlohmann::json;

// "PATH: N images, CxHxW dtype" and the build line (schema, version, time, config hash).
void write_images_and_build(std::ostream& out, const json& s) {
  const auto& images = s["images"];
  out << s["path"].get<std::string>() << ": " << images["count"] << " images, " << images["channels"] << "x"
      << images["height"] << "x" << images["width"] << " " << images["dtype"].get<std::string>() << "\n";
  out << "  schema " << s["schema_version"] << ", built by medload "
      << s["library_version"].get<std::string>() << " at " << s["build_time"].get<std::string>()
      << ", config " << s["config_hash"].get<std::string>() << "\n";
}

// Samples per class, positives and unknown entries per class (multi-label caches), per site, and
// patients.
void write_labels_sites_patients(std::ostream& out, const json& s) {
  out << "  classes:";
  for (const auto& c : s["classes"]) out << " " << c["name"].get<std::string>() << "=" << c["count"];
  out << " (unlabeled " << s["unlabeled"] << ")\n";
  if (s.contains("multi_label")) {
    out << "  multi-label positives:";
    for (const auto& [name, n] : s["multi_label"].items()) out << " " << name << "=" << n;
    out << "\n";
  }
  if (s.contains("multi_label_unknown")) {
    out << "  multi-label unknown:";
    for (const auto& [name, n] : s["multi_label_unknown"].items()) out << " " << name << "=" << n;
    out << "\n";
  }
  out << "  sites:";
  for (const auto& [name, n] : s["sites"].items()) out << " " << name << "=" << n;
  out << "\n  patients: " << s["patients"]
      << " (samples without a patient id: " << s["samples_without_patient"] << ")\n";
}

// One metadata column: mean and range (numbers), value counts (few distinct texts) or the count
// of distinct values, then how many were imputed.
void write_metadata_column(std::ostream& out, const std::string& name, const json& m) {
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

void write_metadata(std::ostream& out, const json& s) {
  if (s["metadata"].empty()) return;
  out << "  metadata:\n";
  for (const auto& [name, m] : s["metadata"].items()) write_metadata_column(out, name, m);
}

// Images per state of one kind of target ("valid 3, invalid 1, none 2").
std::string state_counts(const json& kind) {
  std::ostringstream text;
  text << "valid " << kind["valid"] << ", invalid " << kind["invalid"] << ", none " << kind["none"];
  return text.str();
}

// The target classes, then per kind the images per state; the boxes' and landmarks' totals.
void write_targets(std::ostream& out, const json& s) {
  if (!s.contains("targets")) return;
  const auto& t = s["targets"];
  out << "  targets: classes";
  for (std::size_t id = 0; id < t["classes"].size(); ++id) {
    out << (id ? ", " : " ") << id << "=" << t["classes"][id].get<std::string>();
  }
  out << "\n    masks: " << state_counts(t["masks"]) << "\n";
  for (const char* kind : {"boxes", "landmarks"}) {
    const auto& k = t[kind];
    out << "    " << kind << ": " << state_counts(k) << " (" << k["count"] << " stored, " << k["dropped"]
        << " dropped by preprocessing)\n";
  }
}

// One line per stored split: samples per value of each of its datasets, and its mean and std.
void write_splits(std::ostream& out, const json& s) {
  if (s["splits"].empty()) return;
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

// The count of rejected files by reason, then the ones the summary lists by name.
void write_rejected(std::ostream& out, const json& s) {
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
}

// How the cache holds each identifying field (privacy.h, describe_identifying_fields).
void write_identifying_fields(std::ostream& out, const json& s) {
  if (!s.contains("privacy")) return;
  const auto& p = s["privacy"];
  out << "  identifying fields (profile: " << p["profile"].get<std::string>() << "):\n";
  for (const char* key : {"patient_ids", "source_paths", "rejected_paths", "sites", "metadata", "report"}) {
    std::string label = key;
    std::replace(label.begin(), label.end(), '_', ' ');
    out << "    " << label << ": " << p[key].get<std::string>() << "\n";
  }
  for (const auto& removed : p["removed"]) out << "    removed: " << removed.get<std::string>() << "\n";
}

void write_preprocess(std::ostream& out, const json& s) {
  const auto& config = s["config"];
  if (config.is_object() && config.contains("preprocess"))
    out << "  preprocess: " << config["preprocess"].dump() << "\n";
}

// With --verify: images checked and failed, and each failure by index, source and frame.
void write_verify(std::ostream& out, const json& s) {
  if (!s.contains("verify")) return;
  const auto& v = s["verify"];
  out << "  verify: " << v["checked"] << " images checked, " << v["failed"] << " failed\n";
  for (const auto& f : v["failures"]) {
    out << "    checksum mismatch: image " << f["index"] << " (" << f["source_path"].get<std::string>()
        << ", frame " << f["frame_index"] << ")\n";
  }
  if (!v.contains("masks")) return;
  const auto& m = v["masks"];
  out << "  verify: " << m["checked"] << " masks checked, " << m["failed"] << " failed\n";
  for (const auto& f : m["failures"]) {
    out << "    unreadable mask: image " << f["index"] << " (" << f["source_path"].get<std::string>()
        << ", frame " << f["frame_index"] << ")\n";
  }
}

}  // namespace

std::string format_inspection(const nlohmann::json& summary) {
  std::ostringstream out;
  write_images_and_build(out, summary);
  write_labels_sites_patients(out, summary);
  write_metadata(out, summary);
  write_targets(out, summary);
  write_splits(out, summary);
  write_rejected(out, summary);
  write_identifying_fields(out, summary);
  write_preprocess(out, summary);
  write_verify(out, summary);
  return out.str();
}

}  // namespace medload::cli
