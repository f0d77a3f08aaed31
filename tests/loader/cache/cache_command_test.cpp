// The medload build / inspect / merge commands: exit codes and what they print.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cache_compare.h"
#include "medload/core/file_descriptor.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload_test/command.h"
#include "test_util.h"

namespace {

using medload::loader::test::TempDir;

using medload::test::CommandResult;

CommandResult run(const std::string& arguments) { return medload::test::run_medload(arguments); }

}  // namespace

TEST(CacheCommands, BuildInspectVerifyAndMerge) {
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 4);
  const std::string cache = dir.path("c.h5");
  CommandResult built = run("build " + root + " -o " + cache + " --size 32 --threads 2 --in-process -q");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_NE(built.output.find("8 images from 8 of 8 files"), std::string::npos) << built.output;

  CommandResult json = run("inspect " + cache + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const auto summary = nlohmann::json::parse(json.output);
  EXPECT_EQ(summary["images"]["count"], 8);
  EXPECT_EQ(summary["images"]["height"], 32);

  for (int i = 0; i < 2; ++i) {
    const CommandResult shard = run("build " + root + " -o " + dir.path("s" + std::to_string(i) + ".h5") +
                                    " --size 32 --shard " + std::to_string(i) + "/2 --in-process -q");
    ASSERT_EQ(shard.exit_code, 0) << shard.output;
  }
  const CommandResult merged =
      run("merge -q -o " + dir.path("m.h5") + " " + dir.path("s1.h5") + " " + dir.path("s0.h5"));
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  medload::loader::test::expect_same_content(dir.path("m.h5"), cache);

  // A flipped byte in image 6: --verify exits 1 and names the sample.
  std::vector<std::uint8_t> image;
  std::string source;
  {
    const medload::loader::CacheReader reader(cache);
    image.resize(reader.image_bytes());
    reader.read_image(6, image.data());
    source = reader.source_paths()[6];
  }
  const std::string bytes = medload::loader::test::file_bytes(cache);
  const auto at = bytes.find(std::string(image.begin(), image.end()));
  ASSERT_NE(at, std::string::npos);
  const medload::core::FileDescriptor fd(::open(cache.c_str(), O_WRONLY));
  const char flipped = static_cast<char>(bytes[at + 10] ^ 0x40);
  ASSERT_EQ(::pwrite(fd.get(), &flipped, 1, static_cast<off_t>(at + 10)), 1);
  const CommandResult verify = run("inspect " + cache + " --verify");
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_NE(verify.output.find("checksum mismatch: image 6 (" + source), std::string::npos) << verify.output;
}

TEST(CacheCommands, BadInputsAreClearErrors) {
  TempDir dir;
  CommandResult missing = run("build " + dir.path("nowhere") + " -o " + dir.path("c.h5") + " -q");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nowhere"), std::string::npos) << missing.output;
  CommandResult bad_shard = run("build " + dir.str() + " -o " + dir.path("c.h5") + " --shard 2/2 -q");
  EXPECT_EQ(bad_shard.exit_code, 2) << bad_shard.output;
  EXPECT_NE(bad_shard.output.find("shard_index"), std::string::npos) << bad_shard.output;
  CommandResult not_cache = run("inspect " + dir.path("none.h5"));
  EXPECT_EQ(not_cache.exit_code, 1);
  EXPECT_NE(not_cache.output.find("none.h5"), std::string::npos) << not_cache.output;
}
