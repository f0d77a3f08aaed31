// medload: build, inspect and check medical image caches for LibTorch training.

#include <malloc.h>

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include "command.h"

#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/core/version.h"

namespace medload::cli {

std::string json_output(const nlohmann::json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace medload::cli

namespace {

struct Entry {
  const char* name;
  const char* description;
  medload::cli::Runner (*add)(CLI::App&);
};

constexpr Entry kCommands[] = {
    {"scan", "Validate every image under ROOT and write a JSON report (nothing is modified)",
     medload::cli::add_scan_command},
    {"build", "Decode, validate and preprocess images into a versioned HDF5 cache",
     medload::cli::add_build_command},
    {"merge", "Join caches built with --shard into one cache", medload::cli::add_merge_command},
    {"inspect", "Summarise (and verify) a cache: counts, config, statistics, rejected files",
     medload::cli::add_inspect_command},
    {"split", "Store a stratified patient-level train/val/test split (or k folds) in a cache",
     medload::cli::add_split_command},
    {"audit", "Check a cache's splits for patient, pixel and near-duplicate leakage (exit 3)",
     medload::cli::add_audit_command},
    {"preview", "Write a PNG contact sheet of cached samples and their augmentations",
     medload::cli::add_preview_command},
    {"sample", "Show what a sampler draws from a cache: class counts, duplicates, ranks, speed",
     medload::cli::add_sample_command},
    {"config", "Print the default pipeline and augmentation config", medload::cli::add_config_command},
};

}  // namespace

int main(int argc, char** argv) {
#ifdef M_MMAP_THRESHOLD
  // Image-sized buffers (megabytes each, one after another) stay in the heap for reuse instead of
  // being unmapped when freed, which had the kernel zero fresh pages for every image.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  CLI::App app{"medload " + std::string(medload::kVersion) +
               ": validated, preprocessed HDF5 caches of medical images, served to LibTorch"};
  app.set_version_flag("--version", std::string(medload::kVersion));
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 failure, 2 usage error, 3 leakage found.\n"
      "Run `medload COMMAND --help` for the options of a command.");

  std::vector<std::pair<CLI::App*, medload::cli::Runner>> commands;
  for (const Entry& entry : kCommands) {
    CLI::App* command = app.add_subcommand(entry.name, entry.description);
    commands.emplace_back(command, entry.add(*command));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return medload::cli::kExitUsage;
  }

  for (auto& [command, run] : commands) {
    if (!command->parsed()) {
      continue;
    }
    const std::string prefix = "medload " + command->get_name() + ": ";
    try {
      return run();
    } catch (const medload::ConfigError& e) {
      // Messages may quote file names and header text: print them as UTF-8.
      std::cerr << prefix << "error: " << medload::to_valid_utf8(e.what()) << '\n';
      return medload::cli::kExitUsage;
    } catch (const std::exception& e) {
      std::cerr << prefix << "error: " << medload::to_valid_utf8(e.what()) << '\n';
      return medload::cli::kExitFailure;
    }
  }
  return medload::cli::kExitUsage;  // unreachable: require_subcommand(1)
}
