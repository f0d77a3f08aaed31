#include "privacy_filter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "medload/core/error.h"
#include "medload/core/hash.h"

namespace medload::loader::detail {

namespace fs = std::filesystem;

namespace {

std::string lower_ascii(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// "/a/b/" for a folder given as "/a/b", "a/b/." or "a/b/"; "" when it is the file system root or
// the working folder (replacing "/" or "./" would mangle every path).
std::string folder_prefix(const fs::path& folder) {
  std::error_code error;
  fs::path absolute = fs::absolute(folder, error).lexically_normal();
  if (error) return "";
  std::string text = absolute.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  if (text.size() <= 1) return "";
  return text + "/";
}

std::string given_prefix(std::string text) {
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  if (text.size() < 3 || text == "./" || text == "..") return "";
  return text + "/";
}

}  // namespace

PrivacyFilter::PrivacyFilter(const PrivacyOptions& options, const std::string& root,
                             const std::optional<std::string>& manifest,
                             const std::vector<SourceFile>& sources)
    : options_(options) {
  options_.validate();
  record_.recorded = true;
  record_.share = options_.share;
  record_.pseudonymised = options_.key.has_value();
  if (options_.key) record_.key_fingerprint = options_.key->fingerprint();
  record_.hashed_paths = options_.share;
  record_.sites = options_.share ? "codes" : options_.site_map.empty() ? "verbatim" : "mapped";
  if (!options_.site_map.empty()) {
    const std::string canonical = nlohmann::json(options_.site_map).dump();
    record_.site_map_id = options_.key ? options_.key->keyed_digest("medload/site_map/v1", canonical)
                                       : hash_hex(hash64_text(canonical));
  }
  std::set<std::string> keep(options_.keep_metadata.begin(), options_.keep_metadata.end());
  record_.keep_metadata.assign(keep.begin(), keep.end());
  if (!options_.share) return;

  std::error_code error;
  for (const SourceFile& source : sources) {
    const std::string token = options_.key->path_token(source.cache_path());
    std::vector<std::string> spellings{source.report_path, source.path_bytes, source.path,
                                       fs::absolute(source.path, error).lexically_normal().string()};
    for (const std::string& spelling : spellings) {
      if (spelling.empty() || !token_of_.emplace(spelling, token).second) continue;
      spellings_of_[token].push_back(spelling);
    }
    const TargetSources& targets = source.targets;
    if (targets.mask_path.empty()) continue;
    const std::string mask_token = options_.key->path_token("mask:" + targets.mask_report_path);
    mask_of_[token] = mask_token;
    for (const std::string& spelling : {targets.mask_report_path, targets.mask_path,
                                        fs::absolute(targets.mask_path, error).lexically_normal().string()}) {
      if (!spelling.empty() && token_of_.emplace(spelling, mask_token).second) {
        spellings_of_[mask_token].push_back(spelling);
      }
    }
  }
  std::vector<std::string> folders{folder_prefix(root), given_prefix(root)};
  if (manifest) {
    const fs::path folder = fs::path(*manifest).parent_path();
    folders.push_back(folder_prefix(folder.empty() ? fs::path(".") : folder));
    folders.push_back(given_prefix(folder.string()));
  }
  for (const std::string& folder : folders) {
    if (!folder.empty()) prefixes_.emplace_back(folder, "<root>/");
  }
  std::sort(prefixes_.begin(), prefixes_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void PrivacyFilter::require_compatible(const std::string& output, const PrivacyRecord& previous) const {
  if (record_.compatible_with(previous)) return;
  throw ConfigError(
      "the existing cache " + output + " was built with " + previous.settings_text() + ", this build with " +
      record_.settings_text() +
      " (--pseudonymize, --share, --site-map, --keep-meta). A rebuild reuses the samples of the "
      "cache it replaces and would mix the two in one cache; remove " +
      output + " (and its report) or write to another output");
}

std::string PrivacyFilter::patient_id(const std::string& manifest_id, const std::string& decoded_id,
                                      bool stored) {
  if (manifest_id.empty() && stored) {
    ++record_.patient_id_origin[decoded_id.empty() ? "none" : "previous_cache"];
    return decoded_id;
  }
  const std::string id = normalize_patient_id(!manifest_id.empty() ? manifest_id : decoded_id);
  ++record_.patient_id_origin[id.empty() ? "none" : !manifest_id.empty() ? "manifest" : "dicom"];
  return options_.key ? options_.key->pseudonym(id) : id;
}

std::string PrivacyFilter::site(const std::string& manifest_site, const std::string& decoded_site,
                                bool stored) {
  if (manifest_site.empty() && stored) return decoded_site;
  const std::string& name = !manifest_site.empty() ? manifest_site : decoded_site;
  if (name.empty()) return "";
  if (const auto it = options_.site_map.find(normalize_patient_id(name)); it != options_.site_map.end()) {
    return it->second;
  }
  if (!options_.share) return name;
  ++removed_sites_;
  return "";
}

std::string PrivacyFilter::source_path(const SourceFile& source) const {
  return options_.share ? options_.key->path_token(source.cache_path()) : source.cache_path();
}

void PrivacyFilter::metadata(std::map<std::string, std::string>& meta) {
  if (!options_.share) return;
  for (auto it = meta.begin(); it != meta.end();) {
    const std::string name = lower_ascii(it->first);
    const bool listed = std::any_of(std::begin(kShareMetadata), std::end(kShareMetadata),
                                    [&](const char* kept) { return name == kept; });
    const bool asked =
        std::binary_search(record_.keep_metadata.begin(), record_.keep_metadata.end(), it->first);
    if (!listed && !asked) {
      ++removed_columns_[it->first];
      it = meta.erase(it);
      continue;
    }
    if (name == "age" && !asked) {
      char* end = nullptr;
      const double age = std::strtod(it->second.c_str(), &end);
      if (it->second.empty() || end != it->second.c_str() + it->second.size() || !std::isfinite(age)) {
        ++removed_values_["age values that are not numbers"];
        it = meta.erase(it);
        continue;
      }
      if (age > kShareAgeCap) {
        it->second = std::to_string(static_cast<int>(kShareAgeCap) + 1);
        ++removed_values_["ages over 89 (stored as 90)"];
      }
    }
    ++it;
  }
}

std::string PrivacyFilter::scrub_text(std::string text,
                                      const std::vector<std::pair<std::string, std::string>>& forms) const {
  for (const auto& [from, to] : forms) replace_all(text, from, to);
  for (const auto& [from, to] : prefixes_) replace_all(text, from, to);
  return text;
}

void PrivacyFilter::scrub_json(nlohmann::json& value,
                               const std::vector<std::pair<std::string, std::string>>& forms) const {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    const auto it = token_of_.find(text);
    value = it != token_of_.end() ? it->second : scrub_text(text, forms);
  } else if (value.is_structured()) {
    for (auto& item : value) scrub_json(item, forms);
  }
}

void PrivacyFilter::scrub_outcome(nlohmann::json& outcome) const {
  if (!options_.share) return;
  // The spellings of every path the entry names (its own, the file it duplicates), longest first,
  // so that a path inside another is not half replaced.
  std::vector<std::pair<std::string, std::string>> forms;
  auto add = [&](const nlohmann::json& field) {
    if (!field.is_string()) return;
    const auto it = token_of_.find(field.get<std::string>());
    if (it == token_of_.end()) return;
    const auto add_token = [&](const std::string& token) {
      const auto spellings = spellings_of_.find(token);
      if (spellings == spellings_of_.end()) return;
      for (const std::string& spelling : spellings->second) forms.emplace_back(spelling, token);
    };
    add_token(it->second);
    if (const auto mask = mask_of_.find(it->second); mask != mask_of_.end()) add_token(mask->second);
  };
  if (outcome.is_object()) {
    for (const char* key : {"path", "path_bytes", "duplicate_of"}) {
      if (outcome.contains(key)) add(outcome[key]);
    }
    outcome.erase("path_bytes");  // the token names the file; its raw bytes are a verbatim path
  }
  std::sort(forms.begin(), forms.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  scrub_json(outcome, forms);
}

void PrivacyFilter::finish_report(nlohmann::json& report) const {
  report["privacy"] = record().to_json();
  if (options_.share && report.contains("build") && report["build"].contains("output") &&
      report["build"]["output"].is_string()) {
    report["build"]["output"] = fs::path(report["build"]["output"].get<std::string>()).filename().string();
  }
}

PrivacyRecord PrivacyFilter::record() const {
  PrivacyRecord record = record_;
  std::set<std::string> removed;
  if (options_.key) removed.insert("patient ids (stored as pseudonyms)");
  if (options_.share) {
    removed.insert("source paths in the cache, /rejected and the report (stored as keyed tokens)");
    removed.insert("the output's folder in the report");
  }
  if (removed_sites_ > 0) {
    removed.insert("institution names without a site code (" + std::to_string(removed_sites_) + " images)");
  }
  for (const auto& [name, n] : removed_columns_) {
    removed.insert("metadata column " + name + " (" + std::to_string(n) + " images)");
  }
  for (const auto& [what, n] : removed_values_) removed.insert(what + " (" + std::to_string(n) + " images)");
  record.removed.assign(removed.begin(), removed.end());
  return record;
}

}  // namespace medload::loader::detail
