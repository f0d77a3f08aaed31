#include "medload/loader/preprocess/pipeline_config.h"

#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/json_fields.h"
#include "medload/core/json_text.h"

#include "medload/augment/augment_options.h"

namespace medload::loader {

namespace {

// The augment part with its defaults filled in, validated by medload::augment_options (torch-free,
// so every build validates it the same way and config_hash never depends on what was built).
nlohmann::json normalise_augment(const nlohmann::json& j) {
  return medload::augment::AugmentOptions::from_json(j).to_json();
}

}  // namespace

PipelineConfig PipelineConfig::from_json(const nlohmann::json& j) {
  const medload::detail::ObjectReader top(j, "", {"validate", "preprocess", "augment"});
  PipelineConfig config;
  if (top.has("validate")) config.validate = ValidationOptions::from_json(top.at("validate"));
  if (top.has("preprocess")) config.preprocess = PreprocessOptions::from_json(top.at("preprocess"));
  config.augment = normalise_augment(top.has("augment") ? top.at("augment") : nlohmann::json::object());
  return config;
}

nlohmann::json PipelineConfig::to_json() const {
  return {{"validate", validate.to_json()},
          {"preprocess", preprocess.to_json()},
          {"augment", normalise_augment(augment)}};
}

std::string PipelineConfig::canonical_json() const {
  // nlohmann::json objects are std::maps: keys come out sorted. Numbers went through typed
  // fields, so 2, 2.0 and 2e0 in a file all print as 2.0 (shortest round-trip form).
  return to_json().dump();
}

std::string PipelineConfig::config_hash() const { return hash_hex(hash64_text(canonical_json())); }

PipelineConfig load_pipeline_config(const std::string& path) {
  const nlohmann::json j = core::read_json_file(path, "the config file");
  try {
    return PipelineConfig::from_json(j);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace medload::loader
