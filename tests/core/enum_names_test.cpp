#include <gtest/gtest.h>

#include <string>

#include "medload/core/enum_names.h"

namespace {

enum class Color { kRed, kGreen, kBlue, kUnnamed };

constexpr auto kColors =
    medload::core::enum_names<Color>({{Color::kRed, "red"}, {Color::kGreen, "green"}, {Color::kBlue, "blue"}});

TEST(EnumNames, NameAndValueRoundTrip) {
  for (Color c : {Color::kRed, Color::kGreen, Color::kBlue}) {
    EXPECT_EQ(kColors.value(kColors.name(c), "color"), c);
  }
  EXPECT_EQ(kColors.name(Color::kGreen), "green");
  static_assert(kColors.name(Color::kBlue) == "blue");
  static_assert(*kColors.find("red") == Color::kRed);
}

TEST(EnumNames, UnknownValueGetsTheFallback) {
  EXPECT_EQ(kColors.name(Color::kUnnamed), "?");
  EXPECT_EQ(kColors.name(Color::kUnnamed, "unknown"), "unknown");
}

TEST(EnumNames, UnknownNameListsTheAllowedNames) {
  EXPECT_FALSE(kColors.find("Red").has_value());  // names match exactly
  try {
    kColors.value("purple", "ColorOptions.color");
    FAIL() << "expected ConfigError";
  } catch (const medload::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "ColorOptions.color is \"purple\"; allowed red, green, blue");
  }
}

}  // namespace
