#pragma once
// Running the build's `medload` command as a user runs it, for the command tests.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace medload::test {

/// What a command run gave: exit code (-1 when it did not exit normally), its output, and the
/// peak memory of the process in KiB.
struct CommandResult {
  int exit_code = -1;
  std::string output;
  long max_rss_kib = 0;
};

/// Runs `medload ARGS` (the build's binary, MEDLOAD_BINARY_DIR/bin/medload) through /bin/sh;
/// `output` is stdout followed by stderr interleaved as written, or stdout alone when
/// `with_stderr` is false (stderr then goes to the test's own).
inline CommandResult run_medload(const std::string& args, bool with_stderr = true) {
  CommandResult result;
  static int counter = 0;
  const std::filesystem::path out_path =
      std::filesystem::temp_directory_path() /
      ("medload-command-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".txt");
  const std::string command = std::string(MEDLOAD_BINARY_DIR) + "/bin/medload " + args + " > " +
                              out_path.string() + (with_stderr ? " 2>&1" : "");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid < 0) return result;
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.max_rss_kib = usage.ru_maxrss;
  std::ifstream in(out_path);
  result.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(out_path);
  return result;
}

}  // namespace medload::test
