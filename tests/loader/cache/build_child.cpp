// A child process for the cache tests that must kill or limit a build: runs build_cache once.
//   medload_cache_build_child ROOT OUTPUT [--batch N] [--size S] [--shard I/N] [--fsize BYTES]
//                             [--threads T] [--manifest M] [--walk-writes 1]
//   medload_cache_build_child --merge OUTPUT SHARD... [--walk-writes]   (merge_caches instead)
// --fsize sets RLIMIT_FSIZE with SIGXFSZ ignored, so writes past it fail with EFBIG (a full disk).
// Prints "decoded=<n> resumed=<n> reused=<n> images=<n>"; exit 0, or 1 with the error on stderr.

#include <dlfcn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <string>

#include "medload/loader/cache/build.h"
#include "medload/loader/cache/merge.h"

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// --walk-writes: under LD_PRELOAD=libmedload_fail_writes.so, runs `job` (a build or a merge
// writing `output`) once for every k with the disk filling at its k-th write (a forked child per
// k, so the libraries load once), until a run gets through. After each failure: the child exited
// 1 with ENOSPC in its message (not by a signal: a crash at exit counts), `output` is byte for
// byte the previous file, no `output`.tmp is left. Prints "walked <n> failing writes" and exits
// 0, or names the first k that broke a rule and exits 1.
int walk_writes(const std::string& output, const std::function<void()>& job) {
  using Arm = void (*)(long);
  const auto arm = reinterpret_cast<Arm>(dlsym(RTLD_DEFAULT, "medload_fail_writes_at"));
  if (arm == nullptr) {
    std::cerr << "--walk-writes needs LD_PRELOAD=libmedload_fail_writes.so\n";
    return 2;
  }
  const std::string previous = read_bytes(output);
  for (long k = 1; k < 100000; ++k) {
    std::filesystem::remove_all(output + ".partial");  // every try rebuilds from the start
    const pid_t pid = ::fork();
    if (pid == 0) {
      arm(k);
      try {
        job();
        std::exit(0);  // exit, not _exit: what runs at exit is part of what is tested
      } catch (const std::exception& e) {
        const bool full = std::strstr(e.what(), "No space left on device") != nullptr;
        if (!full) std::cerr << "write " << k << ": " << e.what() << std::endl;
        std::exit(full ? 1 : 3);
      }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      std::cout << "walked " << k - 1 << " failing writes" << std::endl;
      return 0;
    }
    std::string broken;
    if (!WIFEXITED(status)) broken = "the build ended by signal " + std::to_string(WTERMSIG(status));
    else if (WEXITSTATUS(status) != 1) broken = "the error did not say the disk was full";
    else if (read_bytes(output) != previous) broken = "the previous cache was changed";
    else if (std::filesystem::exists(output + ".tmp")) broken = "a temporary was left at the target";
    if (!broken.empty()) {
      std::cout << "write " << k << ": " << broken << std::endl;
      return 1;
    }
  }
  std::cout << "the build never finished" << std::endl;
  return 1;
}

// --merge OUTPUT SHARD... [--walk-writes]
int merge(int argc, char** argv) {
  medload::loader::MergeOptions options;
  options.output = argv[2];
  options.progress = medload::ProgressStyle::kQuiet;
  bool walk = false;
  for (int i = 3; i < argc; ++i) {
    if (std::string(argv[i]) == "--walk-writes") {
      walk = true;
    } else {
      options.inputs.push_back(argv[i]);
    }
  }
  if (walk) return walk_writes(options.output, [&] { medload::loader::merge_caches(options); });
  try {
    medload::loader::merge_caches(options);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--merge") return merge(argc, argv);
  if (argc < 3) {
    std::cerr << "usage: medload_cache_build_child ROOT OUTPUT [options]\n";
    return 2;
  }
  medload::loader::BuildOptions options;
  options.root = argv[1];
  options.output = argv[2];
  options.progress = medload::ProgressStyle::kLines;
  options.config.preprocess.letterbox.size = 64;
  options.config.validate.isolation = medload::loader::Isolation::kInProcess;
  options.threads = 2;
  bool walk = false;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--batch") {
      options.batch_files = std::stoi(value);
    } else if (flag == "--size") {
      options.config.preprocess.letterbox.size = std::stoi(value);
    } else if (flag == "--threads") {
      options.threads = std::stoi(value);
    } else if (flag == "--manifest") {
      options.manifest = value;
    } else if (flag == "--shard") {
      options.shard_index = std::stoi(value.substr(0, value.find('/')));
      options.shard_count = std::stoi(value.substr(value.find('/') + 1));
    } else if (flag == "--walk-writes") {
      walk = value == "1";
    } else if (flag == "--fsize") {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit limit{};
      limit.rlim_cur = limit.rlim_max = std::stoull(value);
      setrlimit(RLIMIT_FSIZE, &limit);
    } else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  if (walk) return walk_writes(options.output, [&] { medload::loader::build_cache(options); });
  try {
    const auto result = medload::loader::build_cache(options);
    std::cout << "decoded=" << result.decoded_files << " resumed=" << result.resumed_files
              << " reused=" << result.reused_files << " images=" << result.images << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
