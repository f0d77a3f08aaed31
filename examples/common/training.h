#pragma once
/// The examples' training code: a small CNN classifier trained on a medload SampleSource through
/// medload's Loader, a sampler (class-balanced, weighted or a plain shuffle, optionally sliced
/// per rank), per-batch augmentation, an optionally class-weighted loss, validation metrics
/// every epoch, and checkpoints that resume exactly (model, optimizer, sampler position,
/// augmentation epoch, the partial epoch's loss). train_classifier and ddp_train are thin
/// command lines over `train`; the end-to-end tests call it directly.

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "medload/augment/augment_options.h"
#include "medload/loader/serve/sample_source.h"
#include "metrics.h"
#include "synthetic.h"

namespace medload::examples {

/// What to train on: two parts of a patient-level split, served as float32 in [0, 1]
/// (SampleOutput scale only: normalisation happens after augmentation, in the training step).
struct TrainingData {
  /// The training part.
  std::shared_ptr<const loader::SampleSource> train;
  /// The validation part (metrics every epoch).
  std::shared_ptr<const loader::SampleSource> val;
  /// Class per training sample [train->size()], in [0, C); samplers and class weights use them.
  std::vector<std::int64_t> train_labels;
  /// Patient id per training sample [train->size()].
  std::vector<std::string> train_patient_ids;
  /// Class names [C].
  std::vector<std::string> class_names;
  /// Normalisation of [0, 1] pixels applied after augmentation: (x - mean) / std.
  float mean = 0.0f;
  /// See mean; > 0.
  float std = 1.0f;
  /// Augmentation stored with the data (a cache's pipeline config); nullopt = the defaults.
  std::optional<augment::AugmentOptions> augment;
  /// One line for the log ("cache.h5: 270 train / 58 val images, classes CT, MR, XA").
  std::string description;
};

/// The generated planted-nodule dataset split by patient into train and val (see synthetic.h):
/// `val_fraction` of the patients, chosen by a seeded hash, go to val.
TrainingData synthetic_training_data(const SyntheticOptions& options, double val_fraction = 0.25);

/// How the training part is sampled each epoch (every choice draws train->size() indices).
enum class SamplerChoice {
  kBalanced,  ///< medload ClassBalancedSampler, oversampling: every class equally often
  kWeighted,  ///< medload WeightedRandomSampler over inverse class frequencies (with replacement)
  kNone,      ///< a seeded shuffle of the training part (each sample once per epoch)
};
/// "balanced" | "weighted" | "none".
std::string to_string(SamplerChoice choice);
/// Parses a name of to_string; throws ConfigError naming the value.
SamplerChoice sampler_choice_from_string(const std::string& name);

/// Options of `train`.
struct TrainOptions {
  /// Epochs to train (>= 1); a resumed run continues up to this many.
  std::size_t epochs = 2;
  /// Samples per step on each rank (>= 1).
  std::size_t batch_size = 32;
  /// Loader threads (>= 1): reading and augmenting batches ahead of the training step.
  std::size_t threads = 2;
  /// torch intra-op threads of the model's forward and backward (>= 1). The small CNN on small
  /// images gains little from more, and OpenMP threads that spin while the loader's threads
  /// work slow both down on a busy machine (16 s instead of 1 s for the end-to-end test).
  std::size_t compute_threads = 1;
  /// Seed of the model's initialisation, the sampler and the augmentation.
  std::uint64_t seed = 0;
  /// The sampler.
  SamplerChoice sampler = SamplerChoice::kBalanced;
  /// Weight the cross-entropy by inverse class frequency (medload::samplers::class_weights).
  bool weighted_loss = false;
  /// Apply per-batch augmentation (TrainingData::augment, or the defaults).
  bool augment = true;
  /// Adam learning rate (> 0).
  double learning_rate = 1e-3;
  /// Adam weight decay (>= 0).
  double weight_decay = 1e-4;
  /// Resize inputs to input_size x input_size after augmentation (0 = as stored).
  std::int64_t input_size = 0;
  /// Width of the first convolution; later ones double up to 4x (>= 4).
  std::int64_t width = 16;
  /// Directory of checkpoints ("" = none). `checkpoint.pt` is replaced atomically.
  std::string checkpoint_dir;
  /// Continue from checkpoint_dir/checkpoint.pt when it exists (a fresh start otherwise).
  bool resume = false;
  /// Also checkpoint every this many steps inside an epoch (0 = only at the end of each epoch).
  std::size_t checkpoint_every = 0;
  /// Stop, as if killed, after this many steps in total (counted across resumes; 0 = never).
  /// `train` then returns with TrainResult::interrupted set, after the step's checkpoint if any.
  std::size_t stop_after_steps = 0;
  /// Keep the sample ids each epoch consumed in TrainResult::samples_seen.
  bool record_samples = false;
  /// Distributed training: number of ranks and this rank (the sampler is sliced per rank).
  std::size_t world_size = 1;
  /// See world_size; in [0, world_size).
  std::size_t rank = 0;
  /// Distributed training: sums a float32 CPU tensor in place across ranks (required when
  /// world_size > 1). Gradients are summed, then divided by world_size, every step.
  std::function<void(torch::Tensor&)> allreduce_sum;
  /// Distributed training: overwrites a tensor in place with rank 0's (initial parameters).
  std::function<void(torch::Tensor&)> broadcast;
  /// Called after every step with the total step count (after the step's checkpoint, if any).
  std::function<void(std::size_t)> on_step;
  /// Where progress and per-epoch lines go (nullptr = std::cerr); nothing when quiet.
  std::ostream* log = nullptr;
  /// No log output.
  bool quiet = false;
  /// Throws ConfigError naming the field and its limit.
  void validate() const;
};

/// One finished epoch.
struct EpochRecord {
  /// 1-based epoch number.
  std::size_t epoch = 0;
  /// Mean training loss over the epoch's samples (over all ranks when distributed).
  double train_loss = 0.0;
  /// Steps taken in the epoch (on this rank).
  std::size_t steps = 0;
  /// Metrics on the validation part.
  ClassificationMetrics val;
};

/// What `train` returns.
struct TrainResult {
  /// Finished epochs, including those finished before a resume.
  std::vector<EpochRecord> epochs;
  /// XXH64 over every parameter's float32 bytes, in registration order (16 hex digits).
  std::string param_checksum;
  /// The final parameters, flattened (float32 [P]).
  torch::Tensor parameters;
  /// True when stop_after_steps ended the run early.
  bool interrupted = false;
  /// Steps taken in total (across resumes).
  std::size_t steps = 0;
  /// The epoch and batch the run resumed from, when it did.
  std::optional<std::pair<std::size_t, std::size_t>> resumed_from;
  /// With record_samples: the sample ids consumed, per epoch of this run (epochs begun before a
  /// resume hold only what this run consumed).
  std::vector<std::vector<std::int64_t>> samples_seen;
  /// {"epochs": [{"epoch", "train_loss", "steps", "val": {...}}], "param_checksum": "..."}.
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

/// Trains a classifier on `data` (see the file comment). Throws ConfigError for bad options or
/// data (a label outside the classes, an empty part), FormatError when a checkpoint belongs to
/// another configuration, and the Loader's WorkerError when a sample cannot be read.
TrainResult train(const TrainingData& data, const TrainOptions& options);

}  // namespace medload::examples
