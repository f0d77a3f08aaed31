#include "medload/augment/augment_options.h"

#include <gtest/gtest.h>

#include <string>

#include "medload/core/error.h"

using medload::ConfigError;
using medload::augment::AugmentOptions;
using nlohmann::json;

namespace {

// The message of the ConfigError that from_json(j) throws ("" when it does not throw).
std::string error_of(const json& j) {
  try {
    AugmentOptions::from_json(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AugmentOptions, DefaultsMatchTheMedicalPolicy) {
  const AugmentOptions o;
  EXPECT_NO_THROW(o.validate());
  EXPECT_TRUE(o.active_overrides().empty());
  EXPECT_EQ(o.rotation.max_degrees, 7.0);
  EXPECT_EQ(o.translation.max_fraction, 0.05);
  EXPECT_EQ(o.scale.min, 0.95);
  EXPECT_EQ(o.scale.max, 1.05);
  EXPECT_EQ(o.horizontal_flip.probability, 0.0);
  EXPECT_EQ(o.vertical_flip.probability, 0.0);
  EXPECT_EQ(o.gamma.min, 0.7);
  EXPECT_EQ(o.gamma.max, 1.5);
  EXPECT_NO_THROW(AugmentOptions::full_chain().validate());
}

TEST(AugmentOptions, RotationPastTheLimitIsAnErrorNamingKeyAndLimit) {
  EXPECT_EQ(
      error_of({{"rotation", {{"max_degrees", 15}}}}),
      "augment.rotation.max_degrees is 15; the medical limit is 10 (set augment.unsafe_override to allow)");
  EXPECT_EQ(error_of({{"rotation", {{"max_degrees", 10}}}}), "");
}

TEST(AugmentOptions, UnsafeOverrideAllowsPastTheLimitAndIsReported) {
  const auto o = AugmentOptions::from_json({{"unsafe_override", true}, {"rotation", {{"max_degrees", 15}}}});
  EXPECT_EQ(o.rotation.max_degrees, 15.0);
  ASSERT_EQ(o.active_overrides().size(), 1u);
  EXPECT_EQ(o.active_overrides()[0],
            "unsafe_override: augment.rotation.max_degrees is 15; the medical limit is 10");
  // Over the hard range, even the override does not help.
  EXPECT_NE(
      error_of({{"unsafe_override", true}, {"rotation", {{"max_degrees", 200}}}}).find("allowed 0..180"),
      std::string::npos);
}

TEST(AugmentOptions, AnyVerticalFlipIsAnError) {
  const std::string e = error_of({{"vertical_flip", {{"probability", 0.01}}}});
  EXPECT_NE(e.find("augment.vertical_flip.probability is 0.01"), std::string::npos) << e;
  EXPECT_NE(e.find("the medical limit is 0"), std::string::npos) << e;
  EXPECT_EQ(error_of({{"vertical_flip", {{"probability", 0}}}}), "");
}

TEST(AugmentOptions, HorizontalFlipNeedsItsOwnOverride) {
  const std::string e = error_of({{"horizontal_flip", {{"probability", 0.5}}}});
  EXPECT_NE(e.find("augment.horizontal_flip.probability is 0.5"), std::string::npos) << e;
  EXPECT_NE(e.find("augment.allow_horizontal_flip"), std::string::npos) << e;
  // unsafe_override is not the flip override: laterality is a separate decision.
  EXPECT_NE(error_of({{"unsafe_override", true}, {"horizontal_flip", {{"probability", 0.5}}}}), "");
  const auto o = AugmentOptions::from_json(
      {{"allow_horizontal_flip", true}, {"horizontal_flip", {{"probability", 0.5}}}});
  ASSERT_EQ(o.active_overrides().size(), 1u);
  EXPECT_EQ(o.active_overrides()[0], "allow_horizontal_flip: augment.horizontal_flip.probability is 0.5");
}

TEST(AugmentOptions, EveryMedicalLimitIsChecked) {
  const json cases[] = {
      {{"translation", {{"max_fraction", 0.2}}}},
      {{"scale", {{"min", 0.8}}}},
      {{"scale", {{"max", 1.2}}}},
      {{"gamma", {{"min", 0.4}}}},
      {{"gamma", {{"max", 2.5}}}},
      {{"brightness", {{"min", 0.5}}}},
      {{"brightness", {{"max", 1.5}}}},
      {{"contrast", {{"min", 0.5}}}},
      {{"contrast", {{"max", 1.5}}}},
      {{"gaussian_noise", {{"max_sigma", 0.1}}}},
      {{"poisson_noise", {{"min_photons", 50}}}},
      {{"blur", {{"max_sigma", 3}}}},
      {{"downsample", {{"min_factor", 0.1}}}},
  };
  for (const json& j : cases) {
    const std::string e = error_of(j);
    EXPECT_NE(e.find("the medical limit is"), std::string::npos) << j.dump() << ": " << e;
    EXPECT_NE(e.find("augment." + j.begin().key() + "."), std::string::npos) << e;
    json unsafe = j;
    unsafe["unsafe_override"] = true;
    EXPECT_EQ(error_of(unsafe), "") << unsafe.dump();
  }
}

TEST(AugmentOptions, UnknownKeysAndWrongTypesAreErrors) {
  EXPECT_NE(error_of({{"rotaton", json::object()}}).find("unknown key augment.rotaton"), std::string::npos);
  EXPECT_NE(error_of({{"rotation", {{"max_deg", 5}}}}).find("unknown key augment.rotation.max_deg"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"gamma", {{"probability", "high"}}}}).find("augment.gamma.probability must be a number"),
      std::string::npos);
  EXPECT_NE(error_of({{"enabled", 1}}).find("augment.enabled must be true or false"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("augment must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of({{"seed", -1}}).find("augment.seed is -1"), std::string::npos);
}

TEST(AugmentOptions, RangesAndOrderAreChecked) {
  EXPECT_NE(error_of({{"gamma", {{"min", 1.2}, {"max", 0.9}}}})
                .find("augment.gamma.min is 1.2, above augment.gamma.max"),
            std::string::npos);
  EXPECT_NE(error_of({{"rotation", {{"probability", 1.5}}}})
                .find("augment.rotation.probability is 1.5; allowed 0..1"),
            std::string::npos);
}

TEST(AugmentOptions, JsonRoundTripKeepsEveryField) {
  json j = AugmentOptions::full_chain().to_json();
  j["seed"] = 42;
  j["allow_horizontal_flip"] = true;
  j["horizontal_flip"]["probability"] = 0.25;
  j["blur"]["max_sigma"] = 1.5;
  const AugmentOptions o = AugmentOptions::from_json(j);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.horizontal_flip.probability, 0.25);
  EXPECT_EQ(o.blur.max_sigma, 1.5);
  EXPECT_EQ(o.to_json(), j);
  // Missing keys take the defaults: {} is the default config.
  EXPECT_EQ(AugmentOptions::from_json(json::object()).to_json(), AugmentOptions().to_json());
}
