#pragma once
/// The pipeline config: one JSON document with the "validate", "preprocess" and "augment"
/// parts. Its canonical form (sorted keys, every default filled in, one number format) is hashed;
/// the hash, with the library version and the source hash, keys every cached sample, so a
/// changed config can never be served from a stale cache.

#include <string>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/validation_options.h"
#include "medload/loader/preprocess/preprocess_options.h"

namespace medload::loader {

/// The whole pipeline's options.
struct PipelineConfig {
  ValidationOptions validate;    ///< decoding and validation ("validate")
  PreprocessOptions preprocess;  ///< the preprocessing chain ("preprocess")
  /// The augmentation options ("augment"), checked by medload::augment::AugmentOptions (the
  /// torch-free medload::augment_options) and kept with every default filled in; to_json() fills
  /// them in for the `{}` of a default-constructed config too.
  nlohmann::json augment = nlohmann::json::object();

  /// Parses a whole config. Missing parts take defaults; unknown top-level keys, unknown keys
  /// within a part and out-of-range values throw ConfigError naming the key.
  static PipelineConfig from_json(const nlohmann::json& j);
  /// {"augment": ..., "preprocess": ..., "validate": ...} with every default filled in.
  nlohmann::json to_json() const;
  /// to_json() dumped compactly with sorted keys: the same config always gives the same bytes,
  /// whatever the key order or number spelling of the file it came from.
  std::string canonical_json() const;
  /// XXH64 (seed 0) of canonical_json(), as 16 lowercase hex digits.
  std::string config_hash() const;
};

/// Reads and parses a config file. Throws IoError when it cannot be read, ConfigError naming
/// the file (and line/column) when it is not JSON, or naming the key when a value is bad.
PipelineConfig load_pipeline_config(const std::string& path);

}  // namespace medload::loader
