#pragma once
/// The segmentation example's model and training: a small U-Net trained on the label masks a
/// medload cache serves with its images (Batch::masks, Batch::mask_valid), through medload's
/// Loader and a seeded shuffle, optionally augmented (images and masks warped together), with a
/// cross-entropy + soft Dice loss; Dice per class on the
/// validation part every epoch (segmentation_metrics.h). train_segmenter is a thin command line
/// over `train_segmenter_model`; the end-to-end test runs that program.

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/sample_source.h"
#include "segmentation_metrics.h"

namespace medload::examples {

/// What to train on: two parts of a patient-level split whose samples serve label masks.
struct SegmentationData {
  /// The training part (images normalised as the model sees them; masks int64).
  std::shared_ptr<const loader::SampleSource> train;
  /// The validation part (Dice every epoch).
  std::shared_ptr<const loader::SampleSource> val;
  /// Names of the mask's classes [C], index = class id, 0 = background.
  std::vector<std::string> class_names;
  /// How the served images are normalised, (pixel in [0, 1] - mean) / std: what an augmentation
  /// hook must know to work on them.
  float mean = 0.0f;
  /// See mean; > 0.
  float std = 1.0f;
  /// One line for the log.
  std::string description;
};

/// Options of train_segmenter_model.
struct SegmentationTrainOptions {
  /// Epochs (>= 1).
  std::size_t epochs = 20;
  /// Samples per step (>= 1).
  std::size_t batch_size = 4;
  /// Loader threads (>= 1).
  std::size_t threads = 2;
  /// torch intra-op threads (>= 1).
  std::size_t compute_threads = 1;
  /// Channels of the U-Net's first level; each level below doubles them (>= 2).
  std::int64_t width = 12;
  /// Adam learning rate (> 0).
  double learning_rate = 3e-3;
  /// Seed of the initialisation and the shuffle.
  std::uint64_t seed = 0;
  /// Weight of the soft Dice term added to the cross-entropy (>= 0; 0 = cross-entropy alone).
  double dice_weight = 1.0;
  /// Augmentation of each training batch's images with their masks (and boxes), e.g.
  /// medload::augment::make_target_hook; empty = none. Validation batches are never augmented.
  loader::TargetAugmentHook augment;
  /// Where per-epoch lines go (nullptr = std::cerr).
  std::ostream* log = nullptr;
  /// No log output.
  bool quiet = false;
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// One finished epoch.
struct SegmentationEpoch {
  std::size_t epoch = 0;    ///< 1-based
  double train_loss = 0.0;  ///< mean loss over the epoch's samples with a valid mask
  double seconds = 0.0;     ///< wall time of the epoch, validation included
  SegmentationMetrics val;  ///< on the validation part
};

/// What train_segmenter_model returns.
struct SegmentationTrainResult {
  std::vector<SegmentationEpoch> epochs;
  /// Trainable parameters of the model.
  std::int64_t parameters = 0;
  /// {"epochs": [{"epoch", "train_loss", "seconds", "val": {...}}], "val": the last epoch's
  ///  metrics, "parameters": P}.
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

/// Trains the U-Net on `data` (see the file comment). Throws ConfigError for bad options or data
/// (an empty part, a source without masks, fewer than 2 classes, a mask id outside the classes)
/// and the Loader's WorkerError when a sample cannot be read.
SegmentationTrainResult train_segmenter_model(const SegmentationData& data,
                                              const SegmentationTrainOptions& options);

}  // namespace medload::examples
