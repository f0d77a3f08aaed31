#pragma once
/// The command-line flags train_classifier and ddp_train share (DESIGN.md's example contract),
/// and the glue from flags to TrainingData / TrainOptions / the metrics file.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "training.h"

namespace medload::examples {

/// Parsed flags.
struct CommonArgs {
  std::string cache;              ///< --cache C.h5
  std::string split = "default";  ///< --split: the stored split to train on
  std::size_t synthetic = 0;      ///< --synthetic N: generated planted-nodule images instead of a cache
  std::size_t epochs = 2;         ///< --epochs
  std::size_t batch = 32;         ///< --batch (per rank)
  std::int64_t size = 0;          ///< --size: model input size (0 = as stored; synthetic: 32)
  std::string sampler = "balanced";
  bool weighted_loss = false;
  bool no_augment = false;
  std::string augment_json;  ///< --augment aug.json (overrides the cache's augmentation)
  std::uint64_t seed = 0;
  std::size_t threads = 2;          ///< --threads: loader threads
  std::size_t compute_threads = 1;  ///< --compute-threads: torch intra-op threads
  double lr = 1e-3;
  std::string checkpoint;  ///< --checkpoint DIR
  bool resume = false;
  std::size_t checkpoint_every = 0;
  std::size_t kill_after_steps = 0;  ///< --kill-after-steps: SIGKILL itself (crash-recovery tests)
  bool record_samples = false;
  std::string metrics_out;  ///< --metrics-out M.json
  bool quiet = false;
};

/// Adds the shared flags to `app`.
void add_common_flags(CLI::App& app, CommonArgs& args);

/// The data the flags name: a cache's train/val parts, or the synthetic set. Throws ConfigError
/// (no data named, both named) and the cache's errors.
TrainingData load_training_data(const CommonArgs& args);

/// TrainOptions from the flags (distributed fields left at one process).
TrainOptions train_options(const CommonArgs& args);

/// The metrics file's object for one run (TrainResult::to_json plus the run's description).
nlohmann::json metrics_json(const TrainResult& result, const TrainingData& data, const CommonArgs& args);

/// Writes `j` to `path` atomically (temporary file, then rename). Throws IoError.
void write_json_file(const std::string& path, const nlohmann::json& j);

/// Runs `body`, mapping ConfigError to exit code 2 and other errors to 1 (printed to stderr).
int run_guarded(const std::string& program, const std::function<int()>& body);

}  // namespace medload::examples
