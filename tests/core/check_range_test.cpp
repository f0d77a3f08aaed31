#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "medload/core/check_range.h"

namespace {

template <class V, class L, class H>
std::string error_of(const std::string& key, V value, L lo, H hi) {
  try {
    medload::core::check_range(key, value, lo, hi);
  } catch (const medload::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(CheckRange, NamesTheSettingTheValueAndTheLimits) {
  EXPECT_EQ(error_of("LoaderOptions.threads", std::size_t{300}, 0, 256), "LoaderOptions.threads is 300; allowed 0..256");
  EXPECT_EQ(error_of("validate.file_timeout_s", 0.5, 1, 3600), "validate.file_timeout_s is 0.5; allowed 1..3600");
  EXPECT_EQ(error_of("x", -1, 0, 9), "x is -1; allowed 0..9");
}

TEST(CheckRange, AcceptsBothEnds) {
  EXPECT_EQ(error_of("k", 0, 0, 9), "");
  EXPECT_EQ(error_of("k", 9, 0, 9), "");
  EXPECT_EQ(error_of("k", 1.0, 0, 1), "");
  EXPECT_NE(error_of("k", 10, 0, 9), "");
  EXPECT_NE(error_of("k", 1.0000001, 0, 1), "");
}

TEST(CheckRange, ComparesIntegersOfMixedSignExactly) {
  // Converted naively, -1 as an unsigned would be huge and SIZE_MAX as an int -1.
  EXPECT_FALSE(medload::core::in_range(-1, std::size_t{0}, std::size_t{10}));
  EXPECT_FALSE(medload::core::in_range(std::numeric_limits<std::size_t>::max(), -5, 10));
  EXPECT_TRUE(medload::core::in_range(std::size_t{3}, -5, 10));
  // Integers too large for a double's 53 bits still compare exactly.
  const std::int64_t big = (std::int64_t{1} << 60) + 1;
  EXPECT_FALSE(medload::core::in_range(big, 0, big - 1));
  EXPECT_EQ(error_of("k", big, 0, big - 1), "k is 1152921504606846977; allowed 0..1152921504606846976");
}

TEST(CheckRange, NanIsOutsideEveryRange) {
  EXPECT_NE(error_of("k", std::nan(""), -1e300, 1e300), "");
}

}  // namespace
