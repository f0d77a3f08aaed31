// medload: build, inspect and check medical image caches for LibTorch training.
// This executable loads no LibTorch: `preview` and `sample`, which need it, are declared here
// (their --help and usage errors are medload's) and run by medload-torch (torch_commands.h).

#include <iterator>

#include "command.h"
#include "torch_commands.h"

namespace {

using Entry = medload::cli::CommandEntry;

constexpr Entry kCommands[] = {
    {"scan", "Validate every image under ROOT and write a JSON report (nothing is modified)",
     medload::cli::add_scan_command},
    {"build", "Decode, validate and preprocess images into a versioned HDF5 cache",
     medload::cli::add_build_command},
    {"merge", "Join caches built with --shard into one cache", medload::cli::add_merge_command},
    {"inspect", "Summarise (and verify) a cache: counts, config, statistics, rejected files",
     medload::cli::add_inspect_command},
    {"keygen", "Write a new pseudonymisation key file (mode 0600) for build --pseudonymize",
     medload::cli::add_keygen_command},
    {"split", "Store a stratified patient-level train/val/test split (or k folds) in a cache",
     medload::cli::add_split_command},
    {"audit", "Check a cache's splits for patient, pixel and near-duplicate leakage (exit 3)",
     medload::cli::add_audit_command},
    {"preview", medload::cli::kPreviewDescription, medload::cli::add_preview_options},
    {"sample", medload::cli::kSampleDescription, medload::cli::add_sample_options},
    {"config", "Print the default pipeline and augmentation config", medload::cli::add_config_command},
};

}  // namespace

int main(int argc, char** argv) {
  return medload::cli::run_command_line(argc, argv, std::data(kCommands), std::size(kCommands));
}
