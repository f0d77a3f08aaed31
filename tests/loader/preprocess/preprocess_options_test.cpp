#include "medload/loader/preprocess/preprocess_options.h"

#include <gtest/gtest.h>

#include <string>

#include "medload/core/error.h"

namespace medload::loader {
namespace {

using nlohmann::json;

// The message of the ConfigError that parsing `j` throws ("" when none is thrown).
std::string error_of(const json& j) {
  try {
    PreprocessOptions::from_json(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(PreprocessOptions, DefaultsFollowTheDesign) {
  const PreprocessOptions o;
  EXPECT_TRUE(o.grayscale.enabled);
  EXPECT_DOUBLE_EQ(o.intensity.low_percentile, 0.5);
  EXPECT_DOUBLE_EQ(o.intensity.high_percentile, 99.5);
  EXPECT_EQ(o.letterbox.size, 256);
  EXPECT_EQ(o.letterbox.interpolation, "area");
  EXPECT_EQ(o.output_dtype, PixelType::kUInt8);
  EXPECT_NO_THROW(o.validate());
}

TEST(PreprocessOptions, EmptyObjectGivesTheDefaults) {
  EXPECT_EQ(PreprocessOptions::from_json(json::object()).to_json(), PreprocessOptions{}.to_json());
}

TEST(PreprocessOptions, RoundTripsThroughJson) {
  PreprocessOptions o;
  o.grayscale.enabled = false;
  o.intensity.low_percentile = 1.5;
  o.roi_crop.margin = 12;
  o.letterbox.size = 512;
  o.letterbox.interpolation = "cubic";
  o.clahe.tile_grid = 4;
  o.bilateral.enabled = false;
  o.output_dtype = PixelType::kUInt16;
  const auto back = PreprocessOptions::from_json(o.to_json());
  EXPECT_EQ(back.to_json(), o.to_json());
  EXPECT_EQ(back.letterbox.size, 512);
  EXPECT_EQ(back.output_dtype, PixelType::kUInt16);
}

TEST(PreprocessOptions, OutOfRangeValuesNameTheKeyAndTheRange) {
  EXPECT_EQ(error_of({{"letterbox", {{"size", 3}}}}), "preprocess.letterbox.size is 3; allowed 16..4096");
  EXPECT_EQ(error_of({{"clahe", {{"clip_limit", 0}}}}), "preprocess.clahe.clip_limit is 0; allowed 0.1..100");
  EXPECT_EQ(error_of({{"intensity", {{"high_percentile", 100.5}}}}),
            "preprocess.intensity.high_percentile is 100.5; allowed 50..100");
  EXPECT_EQ(error_of({{"bilateral", {{"diameter", 16}}}}),
            "preprocess.bilateral.diameter is 16; allowed 1..15");
  EXPECT_EQ(error_of({{"roi_crop", {{"max_crop_fraction", 1.0}}}}),
            "preprocess.roi_crop.max_crop_fraction is 1; allowed 0..0.99");
  EXPECT_NE(
      error_of({{"letterbox", {{"interpolation", "nearest"}}}}).find("preprocess.letterbox.interpolation"),
      std::string::npos);
  EXPECT_NE(error_of({{"output_dtype", "float32"}}).find("preprocess.output_dtype"), std::string::npos);
}

TEST(PreprocessOptions, UnknownKeysAreErrors) {
  EXPECT_NE(error_of({{"clahe", {{"tiles", 8}}}}).find("unknown key preprocess.clahe.tiles"),
            std::string::npos);
  EXPECT_NE(error_of({{"sharpen", json::object()}}).find("unknown key preprocess.sharpen"),
            std::string::npos);
}

TEST(PreprocessOptions, WrongJsonTypesAreErrors) {
  EXPECT_NE(
      error_of({{"clahe", {{"enabled", "yes"}}}}).find("preprocess.clahe.enabled must be true or false"),
      std::string::npos);
  EXPECT_NE(error_of({{"letterbox", {{"size", 256.5}}}}).find("preprocess.letterbox.size must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of({{"letterbox", 256}}).find("preprocess.letterbox must be a JSON object"),
            std::string::npos);
  // 256.0 is the integer 256.
  EXPECT_EQ(PreprocessOptions::from_json({{"letterbox", {{"size", 256.0}}}}).letterbox.size, 256);
}

TEST(PreprocessOptions, PercentilesMustBeOrdered) {
  EXPECT_NE(error_of({{"intensity", {{"low_percentile", 50}, {"high_percentile", 50}}}})
                .find("preprocess.intensity.low_percentile"),
            std::string::npos);
}

}  // namespace
}  // namespace medload::loader
