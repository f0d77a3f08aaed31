#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "medload/core/hash.h"

#include <unistd.h>

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

namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& bytes) {
  const fs::path path = fs::temp_directory_path() / ("medload_hash_test_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(ContentHash, IsXxh64OfTheBytesAndNoneForZeroBytes) {
  EXPECT_EQ(medload::content_hash("abc", 3), std::optional<std::uint64_t>(0x44BC2CF5AD770999ULL));
  EXPECT_FALSE(medload::content_hash("", 0).has_value());
}

TEST(FileContentHash, AgreesWithContentHashOfTheBytes) {
  // Larger than the 64 KiB read buffer, so several reads are joined.
  std::string bytes(200000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  const fs::path path = write_file("big", bytes);
  EXPECT_EQ(medload::file_content_hash(path.string()), medload::content_hash(bytes.data(), bytes.size()));
  fs::remove(path);
}

TEST(FileContentHash, EmptyOrMissingFileHasNoHash) {
  const fs::path path = write_file("empty", "");
  EXPECT_FALSE(medload::file_content_hash(path.string()).has_value());
  fs::remove(path);
  EXPECT_FALSE(medload::file_content_hash(path.string()).has_value());
}

}  // namespace
