#pragma once
/// What identifying fields a cache and its build report hold (docs/privacy.md): patient ids
/// verbatim or pseudonymised (pseudonym_key.h), and the share profile, which keeps only what a
/// cache that leaves the hospital needs. Every cache records its profile in the root attribute
/// `privacy` (PrivacyRecord); `medload inspect` states it, and a rebuild or merge that would mix
/// two profiles (verbatim ids with pseudonyms, two keys) is refused.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/cache/pseudonym_key.h"

namespace medload::loader {

class CacheReader;

/// The metadata columns the share profile keeps without being asked (compared in lower case):
/// "age" (numbers over 89 stored as 90, other text dropped), "sex", "modality", "view".
inline constexpr const char* kShareMetadata[] = {"age", "sex", "modality", "view"};
/// Ages above this are stored as kShareAgeCap + 1 under the share profile (HIPAA Safe Harbor
/// groups ages over 89).
inline constexpr double kShareAgeCap = 89;

/// What a build does with identifying fields. The default keeps everything verbatim.
struct PrivacyOptions {
  /// Pseudonymisation key: patient ids are stored as PseudonymKey::pseudonym(id). std::nullopt:
  /// stored verbatim.
  std::optional<PseudonymKey> key;
  /// The share profile (`medload build --share`): pseudonyms only; source paths (cache, /rejected,
  /// report) as keyed tokens (PseudonymKey::path_token); institution names only as site codes
  /// from `site_map` (others removed); metadata limited to kShareMetadata and `keep_metadata`;
  /// the report names the output by its file name only. Needs `key`.
  bool share = false;
  /// Institution (site) name -> site code, applied in every build (names are compared after
  /// trimming surrounding whitespace). Under share, names without a code are removed; otherwise
  /// they stay as they are.
  std::map<std::string, std::string> site_map;
  /// Under share, further metadata columns to keep verbatim (whoever names one vouches that it
  /// identifies nobody). Only with share.
  std::vector<std::string> keep_metadata;

  /// Throws ConfigError naming the option: share without a key, keep_metadata without share.
  void validate() const;
};

/// Reads a site map: a JSON object {"institution name": "CODE", ...}, at most 1 MiB. Codes are 1
/// to 32 ASCII letters, digits, '_' or '-' (so a code cannot carry a name). Throws ConfigError
/// starting with `option` and naming the file and the entry.
std::map<std::string, std::string> load_site_map(const std::string& path,
                                                 const std::string& option = "--site-map");

/// What a cache records about its identifying fields: the root attribute `privacy` (JSON).
struct PrivacyRecord {
  /// False for a cache without the attribute (built before medload recorded it): everything in
  /// it is as its sources gave it.
  bool recorded = false;
  /// True when built with the share profile.
  bool share = false;
  /// True when patient ids are pseudonyms.
  bool pseudonymised = false;
  /// PseudonymKey::fingerprint() of the key, when pseudonymised.
  std::string key_fingerprint;
  /// True when source paths (/source_path, /rejected/path, the report) are keyed tokens.
  bool hashed_paths = false;
  /// "verbatim", "mapped" (some names replaced by site codes, the rest kept) or "codes" (share:
  /// only site codes; names without one removed).
  std::string sites = "verbatim";
  /// Identity of the site map used ("" = none): a keyed digest of it when there is a key, else
  /// its XXH64.
  std::string site_map_id;
  /// Under share, the extra metadata columns kept (PrivacyOptions::keep_metadata), sorted.
  std::vector<std::string> keep_metadata;
  /// Images per origin of their patient id: "manifest", "dicom" (PatientID), "previous_cache"
  /// (reused from the cache being rebuilt), "none".
  std::map<std::string, std::size_t> patient_id_origin;
  /// What the share profile removed, for a person ("institution names without a site code (3
  /// images)", "metadata column birth_date", ...), sorted.
  std::vector<std::string> removed;

  /// The attribute's JSON.
  nlohmann::json to_json() const;
  /// Parses the attribute's JSON; throws FormatError "`where`: ..." naming the field.
  static PrivacyRecord from_json(const nlohmann::json& j, const std::string& where);
  /// True when caches with `this` and `other` may be combined (a rebuild reusing samples, a
  /// merge): same share profile, same pseudonymisation (and key), same site map and kept
  /// metadata. Whether either was recorded does not matter: an older cache is verbatim.
  bool compatible_with(const PrivacyRecord& other) const;
  /// The record of a merge of caches with these records (each compatible_with the others):
  /// the settings of the first, patient_id_origin and the counts in `removed` summed.
  /// recorded is true when any of them is.
  static PrivacyRecord combined(const std::vector<PrivacyRecord>& records);
  /// The settings in a few words: "patient ids verbatim", "patient ids pseudonymised (key
  /// 1a2b...), share profile", ...
  std::string settings_text() const;
};

/// Reads the `privacy` record of the cache at `path` (a record with recorded = false when it has
/// none). Throws what CacheReader throws, FormatError when the attribute is malformed.
PrivacyRecord read_privacy_record(const std::string& path);

/// Which identifying fields `reader`'s cache holds, judged from its record and from its content
/// (an absolute path is reported as absolute whatever the record says), for `medload inspect`:
/// {"profile", "patient_ids", "source_paths", "rejected_paths", "sites", "metadata", "report",
///  "removed": [...], "record": {...}}, each a sentence for a person.
nlohmann::json describe_identifying_fields(const CacheReader& reader, const PrivacyRecord& record);

}  // namespace medload::loader
