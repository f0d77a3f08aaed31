#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "medload/core/hash.h"

namespace {

// Reference values from the xxHash project's own test vectors (XXH64).
TEST(Hash64, MatchesXxh64ReferenceValues) {
  EXPECT_EQ(medload::hash64_text(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(medload::hash64_text("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(medload::hash64_text("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(medload::hash64_text("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
}

TEST(Hash64, DependsOnEveryByteAndOnTheSeed) {
  std::vector<unsigned char> data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7);
  const auto base = medload::hash64(data.data(), data.size());
  for (std::size_t i : {0u, 31u, 32u, 500u, 999u}) {
    auto copy = data;
    copy[i] ^= 1;
    EXPECT_NE(medload::hash64(copy.data(), copy.size()), base) << "byte " << i;
  }
  EXPECT_NE(medload::hash64(data.data(), data.size(), 1), base);
  EXPECT_NE(medload::hash64(data.data(), data.size() - 1), base);
}

TEST(HashHex, IsSixteenLowercaseDigits) {
  EXPECT_EQ(medload::hash_hex(0), "0000000000000000");
  EXPECT_EQ(medload::hash_hex(0xEF46DB3751D8E999ULL), "ef46db3751d8e999");
}

}  // namespace
