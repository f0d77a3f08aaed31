// medload sample's options, declared in medload (for --help and usage errors) and in
// medload-torch (which runs the command, sample_command.cpp). Torch-free.

#include <CLI/CLI.hpp>

#include <memory>

#include "medload/samplers/composition_report.h"
#include "torch_commands.h"

namespace medload::cli {

void declare_sample_options(CLI::App& command, SampleArgs& args) {
  command.description(
      "What a sampler draws from a cache: per-class counts, duplicates, per-rank counts, ns per index");
  auto* cache = command.add_option("cache", args.cache, "The cache (CACHE.h5)");
  auto* labels = command.add_option("--labels", args.labels_csv,
                                    "A CSV table with a `label` column (index or name) and an optional "
                                    "`patient_id` column, instead of a cache");
  cache->excludes(labels);
  labels->excludes(cache);
  command.add_option("--sampler", args.sampler, "The sampler")
      ->required()
      ->check(CLI::IsMember({"weighted", "oversample", "undersample", "sqrt", "balanced-batch"}));
  command.add_option("--split", args.split, "Which split's samples: train, val, test or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "val", "test", "all"}));
  command.add_option("--epochs", args.epochs, "Epochs to draw")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, samplers::kMaxReportEpochs));
  command.add_option("--seed", args.seed, "Sampler seed")->capture_default_str();
  command.add_option("--world-size", args.world_size, "Ranks sharing the stream")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, samplers::kMaxReportWorldSize));
  command.add_option("--classes-per-batch", args.classes_per_batch, "balanced-batch: P classes per batch")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  command.add_option("--samples-per-class", args.samples_per_class, "balanced-batch: K samples per class")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  command
      .add_option("--max-per-patient", args.max_per_patient,
                  "At most this many images of one patient per epoch (class-aware samplers; 0: no cap)")
      ->capture_default_str();
  command.add_flag("--json", args.json, "Print the report as JSON");
}

Runner add_sample_options(CLI::App& command) {
  auto args = std::make_shared<SampleArgs>();
  declare_sample_options(command, *args);
  return [args] { return kRunInTorchTool; };  // args: CLI11 writes into them while it parses
}

}  // namespace medload::cli
