// Wall time from spawning a medload command to its exit, for the commands that load no LibTorch
// (medload --version, medload scan --help) and, as the reference, medload-torch --version (the
// same command line code, linked with LibTorch, as the medload command was before medload-torch
// took the tensor commands). One iteration is one posix_spawn + waitpid, output to /dev/null.
// Run by bench/startup/compare.sh, which also lists the libraries medload loads.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

extern char** environ;

namespace {

std::string tool(const char* name) { return std::string(MEDLOAD_BINARY_DIR) + "/bin/" + name; }

// Runs `argv` to completion with stdout and stderr on /dev/null; false when it cannot start or
// does not exit 0.
bool run_once(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int error = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return false;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void run_command(benchmark::State& state, const std::vector<std::string>& argv) {
  for (auto _ : state) {
    if (!run_once(argv)) {
      state.SkipWithError((argv[0] + " did not run and exit 0; build medload_cli first").c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Startup_MedloadVersion(benchmark::State& state) {
  run_command(state, {tool("medload"), "--version"});
}
void BM_Startup_MedloadScanHelp(benchmark::State& state) {
  run_command(state, {tool("medload"), "scan", "--help"});
}
void BM_Startup_MedloadPreviewHelp(benchmark::State& state) {
  run_command(state, {tool("medload"), "preview", "--help"});
}
void BM_Startup_TorchToolVersion(benchmark::State& state) {
  run_command(state, {tool("medload-torch"), "--version"});
}

BENCHMARK(BM_Startup_MedloadVersion)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Startup_MedloadScanHelp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Startup_MedloadPreviewHelp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Startup_TorchToolVersion)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
