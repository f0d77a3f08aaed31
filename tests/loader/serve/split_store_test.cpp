// Storing a split never endangers the cache: a SIGKILL at any moment of write_split leaves a cache
// that opens, with the previous split or the new one, whole.

#include "medload/loader/serve/split_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload_test/walk_writes.h"
#include "synthetic_images.h"
#include "test_cache.h"

namespace medload::loader {
namespace {

std::vector<testing::TestSample> samples() {
  std::vector<testing::TestSample> out;
  for (int i = 0; i < 60; ++i) {
    testing::TestSample s;
    s.pixels = testing::chest_like(static_cast<std::uint32_t>(900 + i), 96, i % 3 == 0);
    s.label = i % 3 == 0 ? 1 : 0;
    s.patient = "P" + std::to_string(i / 2);
    s.path = std::to_string(i) + ".png";
    out.push_back(std::move(s));
  }
  return out;
}

TEST(SplitStore, AKillAtAnyMomentOfWritingASplitLeavesAWholeCache) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 96, 96, samples());
  StoredSplit first, second;
  {
    const CacheReader cache(path);
    SplitOptions options;
    options.seed = 1;
    first = make_split(cache, options, 1);
    options.seed = 2;
    second = make_split(cache, options, 1);
  }
  ASSERT_NE(first.part, second.part);
  write_split(path, first);
  // A child writes the two splits in turn for ever; it is killed 0, 0.5, 1, ... ms in.
  int killed_mid_write = 0;
  for (int k = 0; k < 40; ++k) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int i = 0;; ++i) write_split(path, i % 2 ? first : second);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500 * k));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself at kill point " << k;
    const CacheReader reader(path);  // throws when HDF5 cannot open what the kill left
    ASSERT_EQ(reader.size(), 60u);
    const StoredSplit stored = read_split(path, "default", 60);
    EXPECT_TRUE(stored.part == first.part || stored.part == second.part) << "kill point " << k;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      killed_mid_write += entry.path().filename().string().find(".split-tmp-") != std::string::npos;
    }
  }
  // The kills landed while a copy was being written, not only between writes.
  EXPECT_GT(killed_mid_write, 0);
}

TEST(SplitStore, ADiskThatFillsAtAnyWriteOfASplitKeepsThePreviousCache) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "the LD_PRELOAD shim cannot go before AddressSanitizer's runtime";
#endif
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 96, 96, samples());
  ASSERT_EQ(std::system((std::string(MEDLOAD_SPLIT_CHILD) + " " + path + " 1").c_str()), 0);
  const std::string previous = test::read_bytes(path);
  const std::string log = dir.path("walk.log");
  const std::string command = "LD_PRELOAD=" + std::string(MEDLOAD_FAIL_WRITES) + " " + MEDLOAD_SPLIT_CHILD + " " +
                              path + " 2 --walk-writes > " + log + " 2>&1";
  const int status = std::system(command.c_str());
  const std::string output = test::read_bytes(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  const auto at = output.find("walked ");
  ASSERT_NE(at, std::string::npos) << output;
  EXPECT_GT(std::stoi(output.substr(at + 7)), 2) << output;  // the copy, the split, the close
  EXPECT_NE(test::read_bytes(path), previous);
  EXPECT_EQ(read_split(path, "default", 60).seed, 2u);
}

TEST(SplitStore, AWriteLeavesNoTemporaryAndClearsThoseOfKilledRuns) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 96, 96, samples());
  const StoredSplit split = make_split(CacheReader(path), SplitOptions{}, 1);
  // What a killed run left: its process is gone.
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  const std::string stale = path + ".split-tmp-" + std::to_string(gone);
  std::ofstream(stale) << "half a copy";
  write_split(path, split);
  EXPECT_FALSE(std::filesystem::exists(stale));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".split-tmp-"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(read_split(path, "default", 60).part, split.part);
}

// write_split stores what it is given; read_split (through the cache schema) refuses a split that
// serving would misuse: statistics that are not finite or not positive, parts out of range.
TEST(SplitStore, ReadSplitRefusesUnusableStatisticsAndPartsOutOfRange) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 96, 96, samples());
  const StoredSplit valid = make_split(CacheReader(path), SplitOptions{}, 1);
  struct Case {
    const char* what;
    std::function<void(StoredSplit&)> damage;
  };
  const std::vector<Case> cases{
      {"/splits/default/mean holds nan", [](StoredSplit& s) { s.mean[0] = std::nan(""); }},
      {"/splits/default/std holds inf", [](StoredSplit& s) { s.std[0] = INFINITY; }},
      {"/splits/default/std holds -0.5", [](StoredSplit& s) { s.std[0] = -0.5; }},
      {"/splits/default/part holds 7 for image 3 (0..2 expected)", [](StoredSplit& s) { s.part[3] = 7; }},
      {"/splits/default/parts is 8 (1..3 expected)",
       [](StoredSplit& s) {
         s.parts = 8;
         s.part[3] = 7;
       }},
  };
  for (const Case& c : cases) {
    StoredSplit split = valid;
    c.damage(split);
    write_split(path, split);
    try {
      read_split(path, "default", 60);
      ADD_FAILURE() << c.what << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.what), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace medload::loader
