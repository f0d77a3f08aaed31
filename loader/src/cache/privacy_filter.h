#pragma once
// Applying a build's PrivacyOptions to what it writes (docs/privacy.md): the patient id, site,
// source path and metadata of each sample, the report entries (which become the /rejected
// table's outcomes too) and the report itself. Used by build_cache only; a merge copies values
// already filtered and checks the records agree.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/cache/privacy.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader::detail {

class PrivacyFilter {
 public:
  /// `sources`: this build's (shard's) inputs, in order; `root` and `manifest` as given to the
  /// build. Keeps references to nothing.
  PrivacyFilter(const PrivacyOptions& options, const std::string& root,
                const std::optional<std::string>& manifest, const std::vector<SourceFile>& sources);

  /// Throws ConfigError when the existing cache `output` (with record `previous`) was built with
  /// other privacy settings: reusing its samples would mix verbatim ids and pseudonyms, or two
  /// keys, in one cache.
  void require_compatible(const std::string& output, const PrivacyRecord& previous) const;

  /// The stored patient id of a sample: the manifest's id when it has one, else the decoded
  /// header's; normalised, then pseudonymised when there is a key. `stored`: `decoded_id` comes
  /// from the previous cache and is already in this build's form.
  std::string patient_id(const std::string& manifest_id, const std::string& decoded_id, bool stored);
  /// The stored site: the manifest's, else the header's; mapped to a site code (share: removed
  /// when there is none). `stored` as for patient_id.
  std::string site(const std::string& manifest_site, const std::string& decoded_site, bool stored);
  /// The stored source path of `source`: its cache_path(), or (share) its keyed token.
  std::string source_path(const SourceFile& source) const;
  /// Under share, removes the metadata columns the profile does not keep and caps ages.
  void metadata(std::map<std::string, std::string>& meta);
  /// Under share, replaces the source paths in a report entry by their tokens: "path" and
  /// "duplicate_of", and those paths (and the root's folder) inside any other text ("detail");
  /// drops "path_bytes".
  void scrub_outcome(nlohmann::json& outcome) const;
  /// Adds the record to the report; under share, names the output by its file name only.
  void finish_report(nlohmann::json& report) const;

  /// The record to store in the cache (with the counts gathered so far).
  PrivacyRecord record() const;

 private:
  std::string scrub_text(std::string text,
                         const std::vector<std::pair<std::string, std::string>>& forms) const;
  void scrub_json(nlohmann::json& value, const std::vector<std::pair<std::string, std::string>>& forms) const;

  PrivacyOptions options_;
  PrivacyRecord record_;
  // Share: every spelling of a source's path (as reported, as bytes, as read, absolute) -> its
  // token, and back.
  std::unordered_map<std::string, std::string> token_of_;
  std::unordered_map<std::string, std::vector<std::string>> spellings_of_;
  // Share: an image's token -> its mask's token (a mask's path is as telling as its image's).
  std::unordered_map<std::string, std::string> mask_of_;
  std::vector<std::pair<std::string, std::string>> prefixes_;  // root folder spellings -> "<root>/"
  std::map<std::string, std::size_t> removed_columns_;
  std::map<std::string, std::size_t> removed_values_;
  std::size_t removed_sites_ = 0;
};

}  // namespace medload::loader::detail
