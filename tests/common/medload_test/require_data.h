#pragma once
// Tests on real data that only Debian packages or the fetched corpus provide: skipped where the
// data is missing, failed instead when MEDLOAD_REQUIRE_CORPUS is set (scripts/test.sh and CI set
// it, so a missing install step cannot pass as a skip).

#include <gtest/gtest.h>

#include <cstdlib>

/// In a test body: when `available` is false, fails the test (MEDLOAD_REQUIRE_CORPUS set) or
/// skips it, saying `message` (anything `<<` takes).
#define MEDLOAD_REQUIRE_DATA(available, message)                               \
  do {                                                                         \
    if (!(available)) {                                                        \
      if (std::getenv("MEDLOAD_REQUIRE_CORPUS") != nullptr) FAIL() << message; \
      GTEST_SKIP() << message;                                                 \
    }                                                                          \
  } while (false)
