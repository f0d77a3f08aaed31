// fuzz_config: the pipeline config. Arbitrary bytes parsed as JSON (nlohmann) and, when they are
// JSON, as a PipelineConfig. ConfigError naming the key is the expected answer to a bad config;
// nlohmann's parse_error to bad JSON. A config that parses must round-trip: its canonical form
// parses again to the same canonical form and hash (the cache key depends on it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "medload/core/error.h"
#include "medload/loader/preprocess/pipeline_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using medload::loader::PipelineConfig;
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  PipelineConfig config;
  try {
    config = PipelineConfig::from_json(j);
  } catch (const medload::Error&) {
    return 0;
  }
  const std::string canonical = config.canonical_json();
  const std::string hash = config.config_hash();
  PipelineConfig again;
  try {
    again = PipelineConfig::from_json(nlohmann::json::parse(canonical));
  } catch (const std::exception&) {
    std::abort();  // the canonical form of a valid config must itself be valid
  }
  if (again.canonical_json() != canonical || again.config_hash() != hash) std::abort();
  return 0;
}
