#include "medload/loader/cache/privacy.h"

#include <algorithm>
#include <set>

#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/json_text.h"
#include "medload/core/regular_file.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/ingest/source.h"
#include "schema.h"

namespace medload::loader {

namespace {

constexpr std::uint64_t kMaxSiteMapBytes = 1 << 20;

bool is_code(const std::string& code) {
  if (code.empty() || code.size() > 32) return false;
  return std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
  });
}

bool is_lower_hex(const std::string& text, std::size_t digits) {
  return text.size() == digits && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A path token: kPseudonymHexDigits hex digits, optionally ".ext".
bool is_path_token(const std::string& path) {
  const std::size_t dot = path.find('.');
  return is_lower_hex(path.substr(0, dot), kPseudonymHexDigits);
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string count_text(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// How a list of stored paths reads: absolute, relative, keyed tokens.
std::string describe_paths(const std::vector<std::string>& paths, bool hashed, const char* what) {
  if (paths.empty()) return std::string("none (no ") + what + ")";
  std::size_t absolute = 0, tokens = 0;
  for (const auto& p : paths) {
    absolute += !p.empty() && p[0] == '/' ? 1 : 0;
    tokens += is_path_token(p) ? 1 : 0;
  }
  if (absolute > 0) {
    return "absolute (" + std::to_string(absolute) + " of " + std::to_string(paths.size()) +
           " start at the file system root; folder and file names as on disk, which often hold names "
           "and dates)";
  }
  if (hashed && tokens == paths.size()) return "keyed tokens (no folder or file names)";
  if (hashed) {
    return "keyed tokens according to the record, but " + std::to_string(paths.size() - tokens) + " of " +
           std::to_string(paths.size()) + " are not tokens: treat them as verbatim";
  }
  return "relative to the build's root (folder and file names as on disk, which often hold names and dates)";
}

}  // namespace

void PrivacyOptions::validate() const {
  if (share && !key) {
    throw ConfigError(
        "--share needs --pseudonymize KEYFILE: a shared cache holds only pseudonymised patient ids and "
        "keyed path tokens (make a key with `medload keygen -o FILE`)");
  }
  if (!keep_metadata.empty() && !share) {
    throw ConfigError("--keep-meta applies only with --share (without it every metadata column is kept)");
  }
  for (const auto& name : keep_metadata) {
    if (name.empty()) throw ConfigError("--keep-meta names an empty column");
  }
  for (const auto& [name, code] : site_map) {
    if (!is_code(code)) {
      throw ConfigError("--site-map: the site code for an institution is \"" + code +
                        "\"; codes are 1 to 32 letters, digits, '_' or '-'");
    }
  }
}

std::map<std::string, std::string> load_site_map(const std::string& path, const std::string& option) {
  const std::string where = option + ": " + path;
  std::string text;
  try {
    text = core::read_regular_file(path, option + ":", kMaxSiteMapBytes);
  } catch (const IoError& e) {
    throw ConfigError(e.what());  // an option's file: a usage error
  }
  std::string why;
  const nlohmann::json j = core::parse_json(text, &why);
  if (j.is_discarded()) throw ConfigError(where + " is not JSON: " + why);
  if (!j.is_object()) {
    throw ConfigError(where + " is not a JSON object of {\"institution name\": \"SITE_CODE\"}");
  }
  std::map<std::string, std::string> map;
  for (const auto& [name, code] : j.items()) {
    const std::string trimmed = normalize_patient_id(name);  // the same whitespace trimming
    if (trimmed.empty()) throw ConfigError(where + " maps an empty institution name");
    if (!code.is_string() || !is_code(code.get<std::string>())) {
      throw ConfigError(where + ": the code " + code.dump() + " of \"" + trimmed +
                        "\" is not 1 to 32 letters, digits, '_' or '-'");
    }
    if (!map.emplace(trimmed, code.get<std::string>()).second) {
      throw ConfigError(where + " maps \"" + trimmed +
                        "\" twice (names are compared without surrounding whitespace)");
    }
  }
  return map;
}

nlohmann::json PrivacyRecord::to_json() const {
  nlohmann::json j{{"version", 1},
                   {"profile", share ? "share" : "local"},
                   {"patient_ids", pseudonymised ? "pseudonymised" : "verbatim"},
                   {"source_paths", hashed_paths ? "keyed_tokens" : "as_listed"},
                   {"sites", sites},
                   {"patient_id_origin", patient_id_origin},
                   {"removed", removed}};
  if (pseudonymised) {
    j["pseudonym"] = {{"method", "HMAC-SHA-256"},
                      {"hex_digits", kPseudonymHexDigits},
                      {"key_fingerprint", key_fingerprint}};
  }
  if (!site_map_id.empty()) j["site_map"] = site_map_id;
  if (share) j["keep_metadata"] = keep_metadata;
  return j;
}

PrivacyRecord PrivacyRecord::from_json(const nlohmann::json& j, const std::string& where) {
  auto fail = [&](const std::string& what) -> void { throw FormatError(where + ": " + what); };
  if (!j.is_object()) fail("it is not a JSON object");
  auto text = [&](const char* key, const std::vector<std::string>& allowed) {
    if (!j.contains(key) || !j[key].is_string()) fail(std::string("it has no text field \"") + key + "\"");
    const std::string value = j[key].get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      fail(std::string("its field \"") + key + "\" is \"" + value + "\" (expected " + join(allowed, ", ") +
           ")");
    }
    return value;
  };
  PrivacyRecord record;
  record.recorded = true;
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<std::int64_t>() != 1) {
    fail("its version is not 1 (a newer medload wrote it; use a newer medload)");
  }
  record.share = text("profile", {"local", "share"}) == "share";
  record.pseudonymised = text("patient_ids", {"verbatim", "pseudonymised"}) == "pseudonymised";
  record.hashed_paths = text("source_paths", {"as_listed", "keyed_tokens"}) == "keyed_tokens";
  record.sites = text("sites", {"verbatim", "mapped", "codes"});
  if (record.pseudonymised) {
    const auto& p = j.contains("pseudonym") ? j["pseudonym"] : nlohmann::json();
    if (!p.is_object() || !p.contains("key_fingerprint") || !p["key_fingerprint"].is_string() ||
        !is_lower_hex(p["key_fingerprint"].get<std::string>(), 16)) {
      fail("it says pseudonymised but has no key fingerprint of 16 hex digits");
    }
    record.key_fingerprint = p["key_fingerprint"].get<std::string>();
  }
  if (j.contains("site_map")) {
    if (!j["site_map"].is_string()) fail("its site_map is not text");
    record.site_map_id = j["site_map"].get<std::string>();
  }
  try {
    if (j.contains("keep_metadata"))
      record.keep_metadata = j["keep_metadata"].get<std::vector<std::string>>();
    if (j.contains("patient_id_origin")) {
      record.patient_id_origin = j["patient_id_origin"].get<std::map<std::string, std::size_t>>();
    }
    if (j.contains("removed")) record.removed = j["removed"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("a list in it has the wrong type: ") + e.what());
  }
  return record;
}

std::string PrivacyRecord::settings_text() const {
  std::string text = pseudonymised ? "patient ids pseudonymised (key fingerprint " + key_fingerprint + ")"
                                   : "patient ids verbatim";
  if (share) text += ", share profile";
  if (!site_map_id.empty()) text += ", site map " + site_map_id;
  if (!keep_metadata.empty()) text += ", extra metadata kept: " + join(keep_metadata, ",");
  return text;
}

bool PrivacyRecord::compatible_with(const PrivacyRecord& other) const {
  return share == other.share && pseudonymised == other.pseudonymised &&
         key_fingerprint == other.key_fingerprint && hashed_paths == other.hashed_paths &&
         site_map_id == other.site_map_id && keep_metadata == other.keep_metadata;
}

PrivacyRecord PrivacyRecord::combined(const std::vector<PrivacyRecord>& records) {
  PrivacyRecord out;
  const auto first = std::find_if(records.begin(), records.end(), [](const auto& r) { return r.recorded; });
  if (first == records.end()) return out;
  out = *first;
  out.patient_id_origin.clear();
  // "what (N images)" lines: the same what, the counts added.
  std::map<std::string, std::size_t> counted;
  std::set<std::string> plain;
  for (const PrivacyRecord& r : records) {
    for (const auto& [origin, n] : r.patient_id_origin) out.patient_id_origin[origin] += n;
    for (const std::string& line : r.removed) {
      const std::size_t open = line.rfind(" (");
      const std::string suffix = " images)";
      if (open != std::string::npos && line.size() > suffix.size() &&
          line.compare(line.size() - suffix.size(), suffix.size(), suffix) == 0) {
        const std::string number = line.substr(open + 2, line.size() - suffix.size() - open - 2);
        if (!number.empty() && number.size() <= 18 &&
            std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          counted[line.substr(0, open)] += std::stoull(number);
          continue;
        }
      }
      plain.insert(line);
    }
  }
  for (const auto& [what, n] : counted) plain.insert(what + " (" + std::to_string(n) + " images)");
  out.removed.assign(plain.begin(), plain.end());
  return out;
}

PrivacyRecord read_privacy_record(const std::string& path) {
  const schema::CacheFile file(path);
  return schema::read_privacy(file);
}

nlohmann::json describe_identifying_fields(const CacheReader& reader, const PrivacyRecord& record) {
  nlohmann::json out;
  out["profile"] = !record.recorded ? "not recorded (built before medload recorded privacy settings: assume "
                                      "everything is as the sources gave it)"
                   : record.share   ? "share"
                                    : "local (identifying fields kept for use inside the institution)";

  std::size_t with_id = 0, shaped = 0;
  for (const auto& id : reader.patient_ids()) {
    if (id.empty()) continue;
    ++with_id;
    shaped += is_lower_hex(id, kPseudonymHexDigits) ? 1 : 0;
  }
  std::string ids;
  if (with_id == 0) {
    ids = "none (no image has a patient id)";
  } else if (record.pseudonymised && shaped == with_id) {
    ids = "pseudonymised (HMAC-SHA-256, " + std::to_string(kPseudonymHexDigits) +
          " hex digits, key fingerprint " + record.key_fingerprint +
          "; without the key they cannot be reversed or confirmed)";
  } else if (record.pseudonymised) {
    ids = "pseudonymised according to the record, but " + std::to_string(with_id - shaped) + " of " +
          std::to_string(with_id) + " ids are not pseudonyms: treat them as verbatim";
  } else {
    std::vector<std::string> origins;
    const auto& o = record.patient_id_origin;
    if (auto it = o.find("dicom"); it != o.end() && it->second > 0)
      origins.push_back("from DICOM PatientID: " + count_text(it->second, "image", "images"));
    if (auto it = o.find("manifest"); it != o.end() && it->second > 0)
      origins.push_back("from the manifest: " + count_text(it->second, "image", "images"));
    if (auto it = o.find("previous_cache"); it != o.end() && it->second > 0)
      origins.push_back("from the cache it rebuilt: " + count_text(it->second, "image", "images"));
    ids = "verbatim (" +
          (origins.empty() ? std::string("from the manifest or DICOM PatientID") : join(origins, "; ")) + ")";
  }
  out["patient_ids"] = ids;
  out["source_paths"] = describe_paths(reader.source_paths(), record.hashed_paths, "images");
  std::vector<std::string> rejected;
  for (const auto& r : reader.rejected()) rejected.push_back(r.path);
  out["rejected_paths"] = describe_paths(rejected, record.hashed_paths, "rejected files");

  std::set<std::string> sites;
  for (const auto& s : reader.sites()) {
    if (!s.empty()) sites.insert(s);
  }
  const std::string distinct = count_text(sites.size(), "distinct value", "distinct values");
  if (sites.empty()) {
    out["sites"] = "none (no image has a site or institution)";
  } else if (record.sites == "codes") {
    out["sites"] = "site codes only (" + distinct + "; institution names without a code were removed)";
  } else if (record.sites == "mapped") {
    out["sites"] = "institution names mapped to site codes where the site map has one, others verbatim (" +
                   distinct + ")";
  } else {
    out["sites"] =
        "verbatim institution names (DICOM InstitutionName or the manifest's site column; " + distinct + ")";
  }

  const std::vector<std::string> columns = reader.meta_names();
  if (columns.empty()) {
    out["metadata"] = "none";
  } else if (record.share) {
    std::vector<std::string> shown;
    for (const auto& c : columns) shown.push_back(c == "age" ? "age (over 89 stored as 90)" : c);
    out["metadata"] = "kept by the share profile: " + join(shown, ", ");
  } else {
    out["metadata"] = "verbatim, as the manifest or DICOM header gave them: " + join(columns, ", ");
  }
  out["report"] = !record.recorded ? "not recorded"
                  : record.share   ? "lists files by keyed tokens and names the output by its file name"
                                   : "lists every input file by its path";
  out["removed"] = record.removed;
  out["record"] = record.recorded ? record.to_json() : nlohmann::json();
  return out;
}

}  // namespace medload::loader
