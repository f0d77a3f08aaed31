#include "medload/loader/preprocess/pipeline_config.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <string>

#include "medload/core/error.h"

namespace medload::loader {
namespace {

using nlohmann::json;

std::string hash_of(const json& j) { return PipelineConfig::from_json(j).config_hash(); }

// Every scalar leaf of `j` as a JSON pointer.
void leaves(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  if (j.is_object()) {
    for (const auto& item : j.items()) leaves(item.value(), at / item.key(), out);
  } else {
    out.push_back(at);
  }
}

// Other values worth trying for a leaf; the first one the config accepts is used.
std::vector<json> alternatives(const json& v) {
  if (v.is_boolean()) return {!v.get<bool>()};
  if (v.is_number_integer() || v.is_number_unsigned()) {
    const auto i = v.get<std::int64_t>();
    return {i + 1, i - 1, i * 2, i / 2};
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return {d * 1.1, d * 0.9, d + 0.5, d - 0.5, d == 0.0 ? 0.01 : d / 2};
  }
  if (v.is_string()) return {"linear", "cubic", "uint16", "uint8", "process", "thread"};
  return {};
}

// A named object, not PipelineConfig{} temporaries (GCC 12 warns falsely on those).
const PipelineConfig kDefaults;

TEST(PipelineConfig, EmptyObjectGivesTheDefaults) {
  const auto config = PipelineConfig::from_json(json::object());
  EXPECT_EQ(config.canonical_json(), kDefaults.canonical_json());
  const json j = config.to_json();
  EXPECT_TRUE(j.contains("validate"));
  EXPECT_TRUE(j.contains("augment"));
  EXPECT_EQ(j["preprocess"]["letterbox"]["size"], 256);
  EXPECT_EQ(config.config_hash().size(), 16u);
}

TEST(PipelineConfig, HashChangesWhenAnyParameterChanges) {
  const json defaults = kDefaults.to_json();
  const std::string base = kDefaults.config_hash();
  std::vector<json::json_pointer> all;
  leaves(defaults, json::json_pointer(), all);
  std::set<std::string> hashes{base};
  int changed_preprocess = 0, preprocess_leaves = 0;
  for (const auto& pointer : all) {
    const bool in_preprocess = pointer.to_string().rfind("/preprocess/", 0) == 0;
    preprocess_leaves += in_preprocess;
    for (const json& value : alternatives(defaults[pointer])) {
      if (value == defaults[pointer]) continue;  // 0 * 1.1 is still 0: not a change
      json changed = defaults;
      changed[pointer] = value;
      std::string h;
      try {
        h = hash_of(changed);
      } catch (const ConfigError&) {
        continue;  // out of range: try the next alternative
      }
      EXPECT_NE(h, base) << pointer.to_string() << " = " << value.dump();
      hashes.insert(h);
      changed_preprocess += in_preprocess;
      break;
    }
  }
  // Every preprocess parameter was changed, each to a distinct hash.
  EXPECT_EQ(changed_preprocess, preprocess_leaves);
  EXPECT_GE(preprocess_leaves, 20);
  EXPECT_GE(hashes.size(), static_cast<std::size_t>(preprocess_leaves) + 1);
}

TEST(PipelineConfig, HashIgnoresKeyOrderAndNumberSpelling) {
  const std::string a = R"({"preprocess": {"clahe": {"clip_limit": 3, "tile_grid": 4},
                                          "letterbox": {"size": 512}},
                             "validate": {}})";
  const std::string b = R"({"validate": {},
                             "preprocess": {"letterbox": {"size": 512.0},
                                            "clahe": {"tile_grid": 4, "clip_limit": 3.0e0}}})";
  EXPECT_EQ(hash_of(json::parse(a)), hash_of(json::parse(b)));
  EXPECT_EQ(PipelineConfig::from_json(json::parse(a)).canonical_json(),
            PipelineConfig::from_json(json::parse(b)).canonical_json());
  EXPECT_NE(hash_of(json::parse(a)), kDefaults.config_hash());
}

TEST(PipelineConfig, CanonicalJsonHasSortedKeysAndEveryDefault) {
  const std::string text = kDefaults.canonical_json();
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_LT(text.find("\"augment\""), text.find("\"preprocess\""));
  EXPECT_LT(text.find("\"preprocess\""), text.find("\"validate\""));
  EXPECT_NE(text.find("\"clip_limit\":2.0"), std::string::npos) << text;
  EXPECT_NE(text.find("\"max_crop_fraction\":0.75"), std::string::npos) << text;
}

// The hash keys every cached sample: it is the same in every build configuration (the augment
// part is always checked and filled in by the torch-free medload::augment_options) and moves
// only when the config format or a default changes, which makes every existing cache stale.
TEST(PipelineConfig, HashOfAFixedConfigIsPinned) {
  EXPECT_EQ(kDefaults.config_hash(), "a94a837f991b9f85") << kDefaults.canonical_json();
  const json config = json::parse(
      R"({"augment": {"rotation": {"max_degrees": 5}, "seed": 7}, "preprocess": {"output_dtype": "uint16"}})");
  EXPECT_EQ(hash_of(config), "f26071477dc7dd04") << PipelineConfig::from_json(config).canonical_json();
}

TEST(PipelineConfig, AugmentPartIsCheckedAndFilledIn) {
  const json augment = PipelineConfig::from_json({{"augment", {{"seed", 3}}}}).to_json()["augment"];
  EXPECT_EQ(augment["seed"], 3);
  EXPECT_EQ(augment["rotation"]["max_degrees"], 7.0);
  EXPECT_EQ(augment["horizontal_flip"]["probability"], 0.0);
  EXPECT_THROW(PipelineConfig::from_json({{"augment", {{"rotaton", json::object()}}}}), ConfigError);
  try {
    PipelineConfig::from_json({{"augment", {{"rotation", {{"max_degrees", 15}}}}}});
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("augment.rotation.max_degrees is 15"), std::string::npos)
        << e.what();
  }
}

TEST(PipelineConfig, ErrorsNameTheKey) {
  auto message = [](const json& j) -> std::string {
    try {
      PipelineConfig::from_json(j);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"preproces", json::object()}})
                .find("unknown key preproces; allowed keys: validate, preprocess, augment"),
            std::string::npos);
  EXPECT_EQ(message({{"preprocess", {{"letterbox", {{"size", 3}}}}}}),
            "preprocess.letterbox.size is 3; allowed 16..4096");
  EXPECT_NE(message(json::array()).find("must be a JSON object"), std::string::npos);
}

TEST(PipelineConfig, LoadsAFileAndNamesItInErrors) {
  const std::string path =
      ::testing::TempDir() + "medload_pipeline_config_test_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"output_dtype": "uint16"}})";
  }
  EXPECT_EQ(load_pipeline_config(path).preprocess.output_dtype, PixelType::kUInt16);
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"output_dtype": "uint16",}})";
  }
  try {
    load_pipeline_config(path);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"clahe": {"tile_grid": 0}}})";
  }
  try {
    load_pipeline_config(path);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("preprocess.clahe.tile_grid is 0"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
  EXPECT_THROW(load_pipeline_config(path), IoError);
}

}  // namespace
}  // namespace medload::loader
