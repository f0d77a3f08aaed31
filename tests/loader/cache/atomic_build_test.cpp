// A build killed with SIGKILL at several points leaves the target absent or the previous complete
// cache, never a partial one; running it again finishes the job, reuses finished work, and gives
// the same content as an uninterrupted build. A full disk (RLIMIT_FSIZE) is a clear error that
// leaves the previous cache alone.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cache_compare.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/merge.h"
#include "test_util.h"

namespace {

using medload::loader::CacheReader;
using medload::loader::test::TempDir;
namespace fs = std::filesystem;

constexpr int kFiles = 60;

struct Child {
  pid_t pid = -1;
  std::string out;  // file with its stdout + stderr
};

Child spawn(const std::vector<std::string>& args, const std::string& out,
            const std::vector<std::string>& environment = {}) {
  Child child;
  child.out = out;
  child.pid = fork();
  if (child.pid == 0) {
    for (const std::string& setting : environment) ::putenv(const_cast<char*>(setting.c_str()));
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    std::string binary = MEDLOAD_BUILD_CHILD;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return child;
}

// Waits for the child; returns its exit code (-signal when killed).
int wait_for(const Child& child) {
  int status = 0;
  waitpid(child.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The number after "decoded=" in the child's output.
int decoded_count(const std::string& text) {
  const auto at = text.find("decoded=");
  return at == std::string::npos ? -1 : std::stoi(text.substr(at + 8));
}

bool has_batch(const std::string& work) {
  std::error_code error;
  if (!fs::is_directory(work, error)) return false;
  for (const auto& entry : fs::directory_iterator(work, error)) {
    if (entry.path().extension() == ".bin") return true;
  }
  return false;
}

// Starts a build and SIGKILLs it when `ready()` turns true (or after 20 s). Returns whether it
// was killed (false: it finished first).
bool build_and_kill(const std::vector<std::string>& args, const std::string& log,
                    const std::function<bool()>& ready) {
  const Child child = spawn(args, log);
  const auto start = std::chrono::steady_clock::now();
  while (!ready()) {
    int status = 0;
    if (waitpid(child.pid, &status, WNOHANG) == child.pid) return false;
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20)) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(child.pid, SIGKILL);
  wait_for(child);
  return true;
}

void expect_intact(const std::string& path) {
  const CacheReader reader(path);  // throws on a partial file
  for (std::size_t i = 0; i < reader.size(); ++i) ASSERT_TRUE(reader.verify(i)) << path << " image " << i;
}

// Runs build_child with `args` (a --walk-writes run) under the fail_writes shim: every failing
// write kept its rules (see medload_test/walk_writes.h), and more than `minimum` were walked.
void expect_walk(const std::vector<std::string>& args, const std::string& log, int minimum) {
  const int code = wait_for(spawn(args, log, {"LD_PRELOAD=" + std::string(MEDLOAD_FAIL_WRITES)}));
  const std::string text = read_text(log);
  ASSERT_EQ(code, 0) << text;
  const auto at = text.find("walked ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stoi(text.substr(at + 7)), minimum) << text;
}

// Builds ROOT as two shards at 48 px (dir/shard0.h5, dir/shard1.h5), appending their paths.
void build_two_shards(const TempDir& dir, const std::string& root, std::vector<std::string>& shards) {
  for (const char* shard : {"0/2", "1/2"}) {
    shards.push_back(dir.path(std::string("shard") + shard[0] + ".h5"));
    ASSERT_EQ(wait_for(spawn({root, shards.back(), "--size", "48", "--shard", shard}, dir.path("shard.log"))), 0)
        << read_text(dir.path("shard.log"));
  }
}

struct KillPoint {
  const char* name;
  std::function<bool(const std::string& output)> ready;
  bool expect_reuse;  // killed after finished work existed: the resume decodes fewer files
};

std::vector<KillPoint> kill_points() {
  return {
      {"at start", [](const std::string&) { return true; }, false},
      {"after the first batch", [](const std::string& output) { return has_batch(output + ".partial"); },
       true},
      {"while assembling", [](const std::string& output) { return fs::exists(output + ".tmp"); }, true},
  };
}

}  // namespace

TEST(AtomicBuild, KilledBuildLeavesNothingThenResumesToTheSameCache) {
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b", "c"}, kFiles / 3);
  const std::vector<std::string> common{"--batch", "4", "--size", "256"};
  auto args = [&](const std::string& output) {
    std::vector<std::string> a{root, output};
    a.insert(a.end(), common.begin(), common.end());
    return a;
  };
  const std::string reference = dir.path("reference.h5");
  ASSERT_EQ(wait_for(spawn(args(reference), dir.path("ref.log"))), 0) << read_text(dir.path("ref.log"));

  int index = 0;
  for (const KillPoint& point : kill_points()) {
    const std::string output = dir.path("cache" + std::to_string(index++) + ".h5");
    const bool killed =
        build_and_kill(args(output), dir.path("kill.log"), [&] { return point.ready(output); });
    EXPECT_TRUE(killed) << point.name << ": the build finished before the kill";
    EXPECT_FALSE(fs::exists(output)) << point.name << ": a killed first build left a file at the target";
    const Child resume = spawn(args(output), dir.path("resume.log"));
    ASSERT_EQ(wait_for(resume), 0) << read_text(dir.path("resume.log"));
    const int decoded = decoded_count(read_text(dir.path("resume.log")));
    if (point.expect_reuse && killed) {
      EXPECT_LT(decoded, kFiles) << point.name << ": the resumed build decoded everything again";
    }
    expect_intact(output);
    medload::loader::test::expect_same_content(output, reference);
    EXPECT_FALSE(fs::exists(output + ".partial")) << point.name;
  }
}

TEST(AtomicBuild, KilledRebuildKeepsThePreviousCacheThenResumes) {
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b", "c"}, kFiles / 3);
  auto args = [&](const std::string& output, const std::string& size) {
    return std::vector<std::string>{root, output, "--batch", "4", "--size", size};
  };
  const std::string reference = dir.path("reference.h5");
  ASSERT_EQ(wait_for(spawn(args(reference, "256"), dir.path("ref.log"))), 0);

  int index = 0;
  for (const KillPoint& point : kill_points()) {
    const std::string output = dir.path("cache" + std::to_string(index++) + ".h5");
    // The previous cache was built with another size, so the rebuild redoes every image.
    ASSERT_EQ(wait_for(spawn(args(output, "64"), dir.path("prev.log"))), 0);
    const std::string previous = read_text(output);
    const bool killed =
        build_and_kill(args(output, "256"), dir.path("kill.log"), [&] { return point.ready(output); });
    EXPECT_TRUE(killed) << point.name;
    ASSERT_TRUE(fs::exists(output)) << point.name;
    EXPECT_TRUE(read_text(output) == previous) << point.name << ": the previous cache was changed";
    expect_intact(output);
    ASSERT_EQ(wait_for(spawn(args(output, "256"), dir.path("resume.log"))), 0)
        << read_text(dir.path("resume.log"));
    medload::loader::test::expect_same_content(output, reference);
  }
}

TEST(AtomicBuild, ADiskThatFillsAtAnyWriteIsAClearErrorAndKeepsThePreviousCache) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "the LD_PRELOAD shim cannot go before AddressSanitizer's runtime";
#endif
  // For every k from the rebuild's first write to its last, the disk fills at the k-th write:
  // each failure must exit 1 naming the full disk, leave the previous cache byte for byte and no
  // temporary at the target (build_child --walk-writes checks each k, see there).
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 3);
  const std::string output = dir.path("cache.h5");
  ASSERT_EQ(wait_for(spawn({root, output, "--size", "32", "--batch", "2"}, dir.path("first.log"))), 0);
  const std::string previous = read_text(output);
  // More than the batches, the assembly and the report write at the least.
  expect_walk({root, output, "--size", "48", "--batch", "2", "--walk-writes", "1"}, dir.path("walk.log"), 20);
  expect_intact(output);
  EXPECT_FALSE(read_text(output) == previous);  // the last try got through and replaced it
}

TEST(AtomicBuild, ADiskThatFillsAtAnyWriteOfAMergeKeepsThePreviousCache) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "the LD_PRELOAD shim cannot go before AddressSanitizer's runtime";
#endif
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 3);
  std::vector<std::string> shards;
  ASSERT_NO_FATAL_FAILURE(build_two_shards(dir, root, shards));
  // The previous cache at the target: a build of the same inputs at another size.
  const std::string output = dir.path("merged.h5");
  ASSERT_EQ(wait_for(spawn({root, output, "--size", "32"}, dir.path("first.log"))), 0);
  const std::string previous = read_text(output);
  expect_walk({"--merge", output, shards[0], shards[1], "--walk-writes"}, dir.path("walk.log"), 10);
  expect_intact(output);
  EXPECT_FALSE(read_text(output) == previous);
}

TEST(AtomicBuild, AKillAtAnyMomentOfAMergeLeavesThePreviousCacheOrTheMergedOne) {
  // A child merges two shards over the previous cache for ever; it is killed at 40 points from the
  // start to twice one merge's time.
  // Whatever the moment, the target is the previous cache or the merged one, whole.
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 4);
  medload::loader::MergeOptions options;
  ASSERT_NO_FATAL_FAILURE(build_two_shards(dir, root, options.inputs));
  options.output = dir.path("merged.h5");
  options.progress = medload::ProgressStyle::kQuiet;
  ASSERT_EQ(wait_for(spawn({root, options.output, "--size", "32"}, dir.path("first.log"))), 0);
  const std::string previous = read_text(options.output);
  // The kill points span twice what one merge takes on this machine and build (an ASan build on a
  // busy machine merges in tens of milliseconds, a Release one in a few): 40 points, k x step.
  medload::loader::MergeOptions timing = options;
  timing.output = dir.path("timing.h5");
  const auto started = std::chrono::steady_clock::now();
  medload::loader::merge_caches(timing);
  const auto step = std::max<std::chrono::steady_clock::duration>(
      std::chrono::milliseconds(1), (std::chrono::steady_clock::now() - started) / 20);
  int killed_mid_write = 0, merged = 0;
  for (int k = 0; k < 40; ++k) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) {
        try {
          medload::loader::merge_caches(options);
        } catch (...) {
          ::_exit(1);
        }
      }
    }
    std::this_thread::sleep_for(k * step);
    killed_mid_write += fs::exists(options.output + ".tmp");
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the merging child stopped by itself at kill point " << k;
    ASSERT_NO_FATAL_FAILURE(expect_intact(options.output)) << "kill point " << k;
    const CacheReader reader(options.output);
    if (read_text(options.output) == previous) continue;
    ++merged;
    EXPECT_EQ(reader.size(), 8u) << "kill point " << k;
  }
  // The kills landed while a merged copy was being written, and after one was published.
  EXPECT_GT(killed_mid_write, 0);
  EXPECT_GT(merged, 0);
  // The next merge replaces what a killed one left behind.
  medload::loader::merge_caches(options);
  expect_intact(options.output);
  EXPECT_FALSE(fs::exists(options.output + ".tmp"));
}

TEST(AtomicBuild, FullDiskIsAClearErrorAndKeepsThePreviousCache) {
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 10);
  const std::string output = dir.path("cache.h5");
  ASSERT_EQ(wait_for(spawn({root, output, "--size", "64"}, dir.path("first.log"))), 0);
  const std::string previous = read_text(output);
  // Any file this build writes may grow to 200 kB: a work batch of 16 images at 256 px (1 MB) does not fit.
  const Child child = spawn({root, output, "--size", "256", "--fsize", "200000"}, dir.path("full.log"));
  EXPECT_EQ(wait_for(child), 1);
  const std::string log = read_text(dir.path("full.log"));
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  EXPECT_TRUE(read_text(output) == previous);
  expect_intact(output);
  EXPECT_FALSE(fs::exists(output + ".tmp"));
}
