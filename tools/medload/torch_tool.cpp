// exec_torch_tool: medload hands `preview` and `sample` to medload-torch (torch_commands.h).

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "medload/core/error.h"
#include "torch_commands.h"

// Where `cmake --install` puts medload-torch, relative to the folder of medload
// (tools/medload/CMakeLists.txt).
#ifndef MEDLOAD_TORCH_TOOL_FROM_BINDIR
#error "MEDLOAD_TORCH_TOOL_FROM_BINDIR must be defined by the build"
#endif

namespace medload::cli {

namespace {

constexpr char kTorchToolName[] = "medload-torch";

// The places medload-torch may be, best first: beside this executable (the build tree, where
// both are in bin/), then the installed layout.
std::vector<std::filesystem::path> torch_tool_candidates() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw IoError("cannot find this executable (/proc/self/exe): " + error.message());
  const std::filesystem::path folder = self.parent_path();
  return {folder / kTorchToolName, (folder / MEDLOAD_TORCH_TOOL_FROM_BINDIR).lexically_normal()};
}

}  // namespace

void exec_torch_tool(char** argv) {
  std::string tried;
  for (const std::filesystem::path& candidate : torch_tool_candidates()) {
    if (::access(candidate.c_str(), X_OK) != 0) {
      tried += (tried.empty() ? "" : ", ") + candidate.string();
      continue;
    }
    std::cout.flush();
    std::cerr.flush();
    ::execv(candidate.c_str(), argv);
    throw IoError("cannot run " + candidate.string() + ": " + std::strerror(errno));
  }
  throw IoError(std::string(kTorchToolName) +
                ", which runs the commands that need LibTorch, is missing (looked for " + tried +
                "); reinstall medload");
}

}  // namespace medload::cli
