#pragma once
// The commands that need LibTorch, `preview` and `sample`, run in medload-torch, a second
// executable beside medload, so that every other command starts without loading LibTorch.
// medload declares their options too (declare_*_options, torch-free), so `medload --help`,
// `medload preview --help` and usage errors come from medload itself; once the command line
// parses, medload replaces itself with medload-torch given the same arguments (exec_torch_tool),
// which parses them again with the same declarations and runs the command (add_*_command).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "command.h"

namespace medload::cli {

/// One line each in `medload --help` (and `medload-torch --help`).
inline constexpr char kPreviewDescription[] =
    "Write a PNG contact sheet of cached samples and their augmentations";
inline constexpr char kSampleDescription[] =
    "Show what a sampler draws from a cache: class counts, duplicates, ranks, speed";

/// `medload preview`'s options (preview_options.cpp).
struct PreviewArgs {
  std::string cache;
  std::string output;
  std::string augment;
  int n = 8;
  int draws = 4;
  int tile = 192;
  std::vector<std::int64_t> ids;
  std::int64_t seed = -1;
  std::size_t threads = 2;
};

/// `medload sample`'s options (sample_options.cpp).
struct SampleArgs {
  std::string cache;
  std::string labels_csv;
  std::string sampler;
  std::string split = "train";
  std::size_t epochs = 1;
  std::uint64_t seed = 0;
  std::size_t world_size = 1;
  bool json = false;
  std::size_t classes_per_batch = 2;
  std::size_t samples_per_class = 4;
  std::size_t max_per_patient = 0;
};

/// Declares preview's options on `command`, storing into `args` (which must outlive the parse).
void declare_preview_options(CLI::App& command, PreviewArgs& args);
/// Declares sample's options on `command`, storing into `args` (which must outlive the parse).
void declare_sample_options(CLI::App& command, SampleArgs& args);

/// medload: declare the options and return a runner that answers kRunInTorchTool, on which
/// run_command_line hands the parsed command line to medload-torch.
Runner add_preview_options(CLI::App& command);
Runner add_sample_options(CLI::App& command);

/// medload-torch: declare the options and return the runner that does the work.
Runner add_preview_command(CLI::App& command);
Runner add_sample_command(CLI::App& command);

/// Replaces this process with medload-torch, run with `argv` unchanged (so its messages and exit
/// code are the command's own). medload-torch is looked for beside this executable (the build
/// tree) and then where `cmake --install` puts it (libexec/medload). Returns only on failure, by
/// throwing IoError naming the paths it tried.
[[noreturn]] void exec_torch_tool(char** argv);

}  // namespace medload::cli
