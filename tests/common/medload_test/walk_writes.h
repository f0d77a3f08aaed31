#pragma once
// The walk of every write of a job that publishes a file (a build, a merge, a split), for test
// child processes run under LD_PRELOAD=libmedload_fail_writes.so (tests/common/fail_writes).

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

namespace medload::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// A temporary of `output` left in its folder: `output.tmp`, `output.split-tmp-<pid>`, ...
inline std::string leftover_temporary(const std::string& output) {
  namespace fs = std::filesystem;
  const fs::path target(output);
  const std::string prefix = target.filename().string() + ".";
  std::error_code ec;
  for (fs::directory_iterator it(target.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0 && name.find("tmp") != std::string::npos) return name;
  }
  return {};
}

/// Runs `job` (which writes and publishes `output`) once for every k with the disk filling at its
/// k-th write (a forked child per k, so the libraries load once), until a run gets through. After
/// each failure: the child exited 1 with ENOSPC in its message (not by a signal: a crash at exit
/// counts), `output` is byte for byte the previous file, no temporary of it is left. Prints
/// "walked <n> failing writes" and returns 0, or names the first k that broke a rule and returns
/// 1 (2 when not run under the shim).
inline int walk_writes(const std::string& output, const std::function<void()>& job) {
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
    const std::string leftover = leftover_temporary(output);
    if (!WIFEXITED(status)) {
      broken = "the job ended by signal " + std::to_string(WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 1) {
      broken = "the error did not say the disk was full";
    } else if (read_bytes(output) != previous) {
      broken = "the previous file was changed";
    } else if (!leftover.empty()) {
      broken = "a temporary was left beside the target: " + leftover;
    }
    if (!broken.empty()) {
      std::cout << "write " << k << ": " << broken << std::endl;
      return 1;
    }
  }
  std::cout << "the job never finished" << std::endl;
  return 1;
}

}  // namespace medload::test
