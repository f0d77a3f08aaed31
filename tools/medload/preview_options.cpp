// medload preview's options, declared in medload (for --help and usage errors) and in
// medload-torch (which runs the command, preview_command.cpp). Torch-free.

#include <CLI/CLI.hpp>

#include <memory>

#include "torch_commands.h"

namespace medload::cli {

void declare_preview_options(CLI::App& command, PreviewArgs& args) {
  command.add_option("cache", args.cache, "The cache (CACHE.h5)")->required()->check(CLI::ExistingFile);
  command.add_option("-o,--output", args.output, "The PNG contact sheet to write")->required();
  command.add_option(
      "--augment", args.augment,
      "Augmentation config: an augment object or a pipeline config (default: the cache's own)");
  command.add_option("--n", args.n, "Samples (rows), picked round-robin over the classes")
      ->check(CLI::Range(1, 256));
  command.add_option("--draws", args.draws, "Augmented columns (epochs 0..draws-1)")
      ->check(CLI::Range(1, 32));
  command.add_option("--tile", args.tile, "Tile side in pixels")->check(CLI::Range(32, 1024));
  command.add_option("--ids", args.ids, "Show these sample ids (rows of the cache) instead")->delimiter(',');
  command.add_option("--seed", args.seed, "Override the augmentation seed")->check(CLI::NonNegativeNumber);
  command.add_option("--threads", args.threads, "Augmentation threads")->check(CLI::Range(1, 256));
}

Runner add_preview_options(CLI::App& command) {
  auto args = std::make_shared<PreviewArgs>();
  declare_preview_options(command, *args);
  return [args] { return kRunInTorchTool; };  // args: CLI11 writes into them while it parses
}

}  // namespace medload::cli
