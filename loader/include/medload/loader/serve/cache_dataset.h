#pragma once
/// A dataset over one part of a patient-level split of an HDF5 cache, for `torch::data` and for
/// medload's Loader.
///
/// ```
/// medload::loader::DatasetOptions options;
/// options.part = "train";
/// medload::loader::CacheDataset train("cache.h5", options);
/// auto loader = torch::data::make_data_loader(train.map(medload::loader::Collate()),
///                                             torch::data::samplers::RandomSampler(*train.size()), 32);
/// ```
/// Images are served as float32 [1,H,W] ([C,H,W] for colour caches) = (pixel / max - mean) / std
/// with the training part's mean and std stored with the split, or as the raw uint8 pixels.
///
/// A cache built with targets (masks, boxes, landmarks) serves them too (DatasetOptions::targets):
/// in each CacheExample, and collated by `dataset.map(CollateBatch())` into the same Batch as
/// medload's Loader gives (docs/serve.md, "Targets").

#include <torch/csrc/utils/variadic.h>  // torch::enable_if_t, which map.h of LibTorch 1.13 uses without including
#include <torch/data/datasets/base.h>
#include <torch/data/datasets/map.h>
#include <torch/data/example.h>
#include <torch/data/transforms/base.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/sample_source.h"

namespace medload::loader {

/// Element type of served images.
enum class OutputDtype {
  kFloat32,  ///< float32 scaled to [0, 1], then normalized (when DatasetOptions::normalize)
  kUInt8,    ///< the stored uint8 pixels (8-bit caches only), e.g. for augmentation on the GPU
};

/// Element type of served label masks.
enum class MaskDtype {
  kInt64,  ///< int64, what cross-entropy losses take as class indices
  kUInt8,  ///< uint8, 8x smaller (every class id of the cache must be < 256)
};

/// Options of CacheDataset.
struct DatasetOptions {
  /// The split stored in the cache (`medload split`): "default" (train/val/test) or "kfold";
  /// "" serves the whole cache without a split (part must then be "all" and normalize false).
  std::string split = "default";
  /// "train" | "val" | "test" | "all". For a k-fold split: "train" = every fold but `fold`,
  /// "val" (or "test") = fold `fold`.
  std::string part = "train";
  /// The held-out fold of a k-fold split (0..k-1).
  int fold = 0;
  /// float32 or uint8 output.
  OutputDtype dtype = OutputDtype::kFloat32;
  /// Normalize float32 output with the training part's mean and std (stored with the split).
  bool normalize = true;
  /// Check every image read against its stored XXH64 checksum, so a corrupted sample is an error
  /// naming it instead of silently wrong pixels (costs about 5 us per 224 x 224 image).
  bool verify = true;
  /// Serve the cache's targets (masks, boxes, landmarks: each kind the cache holds for any image)
  /// with the images; false serves images and labels alone, as for a cache without targets.
  bool targets = true;
  /// Element type of served masks (ConfigError when uint8 cannot hold the cache's class ids).
  MaskDtype mask_dtype = MaskDtype::kInt64;

  /// Throws ConfigError naming the field.
  void validate() const;
};

/// One sample.
struct CacheExample {
  /// float32 [C,H,W] (C = 1 for grayscale) or uint8 [C,H,W].
  torch::Tensor image;
  /// int64 scalar class (-1 = unlabeled), or int64 [K] for multi-label caches: 1 present, 0
  /// absent, -1 unknown (the manifest's `unknown_labels`; every entry of an unlabeled sample).
  torch::Tensor label;
  /// The sample's row in the cache.
  std::int64_t sample_id = 0;

  // Targets: undefined tensors (and kNone) when the dataset serves no target of that kind.
  /// int64 (or uint8: DatasetOptions::mask_dtype) [1,H,W] class ids, 0 = background; all 0
  /// unless mask_state is kValid.
  torch::Tensor mask;
  /// Whether the mask is known (kValid) or not (kNone, kInvalid: a loss skips it).
  TargetState mask_state = TargetState::kNone;
  /// float32 [n,5] x0, y0, x1, y1 in output-grid pixels (continuous coordinates), class id (>= 1):
  /// the sample's rows of Batch::boxes, as Batch::box_list() gives them.
  torch::Tensor boxes;
  /// kValid with n = 0 is a negative image.
  TargetState box_state = TargetState::kNone;
  /// float32 [n,3] x, y in output-grid pixels, class id (>= 1), as Batch::landmark_list().
  torch::Tensor landmarks;
  /// As box_state.
  TargetState landmark_state = TargetState::kNone;
};

namespace detail {
class CacheSplitSource;
}

/// The dataset (see the file comment). Copies are cheap and share one open reader; reads are
/// thread-safe and do not take HDF5's global lock (CacheReader::read_image), so the serving path
/// scales with threads.
class CacheDataset : public torch::data::datasets::Dataset<CacheDataset, CacheExample> {
 public:
  /// Opens `path` read-only and selects the part. Throws FormatError (another schema version,
  /// a truncated or foreign file), ConfigError (a missing split or part, a split made for another
  /// set of patients, uint8 output of a 16-bit cache), IoError; each names the file.
  explicit CacheDataset(const std::string& path, DatasetOptions options = {});

  /// Sample `index` of this part. Throws WorkerError naming the sample and file when it cannot be
  /// read (a truncated or corrupted chunk).
  CacheExample get(std::size_t index) override;
  /// Samples `indices`, read in one call each (no per-call tensor allocation beyond the outputs).
  std::vector<CacheExample> get_batch(torch::ArrayRef<std::size_t> indices) override;
  /// Number of samples in this part.
  torch::optional<std::size_t> size() const override;

  /// The part as a SampleSource, for medload's Loader.
  std::shared_ptr<const SampleSource> source() const;
  /// The cache rows of this part's samples, in order (index i of the dataset is row sample_ids()[i]).
  const std::vector<std::int64_t>& sample_ids() const;
  /// Class labels of this part's samples [size()] (-1 = unlabeled; for multi-label caches the
  /// first positive (1) class, -1 when none), for samplers and class weights.
  std::vector<std::int64_t> labels() const;
  /// Patient ids of this part's samples [size()].
  std::vector<std::string> patient_ids() const;
  /// Class names stored in the cache.
  const std::vector<std::string>& class_names() const;
  /// The target kinds served (none when DatasetOptions::targets is false or the cache has none).
  TargetKinds targets() const;
  /// The target classes (names by class id, 0 = background) of the cache's masks, boxes and
  /// landmarks; no names without targets.
  const TargetClasses& target_classes() const;
  /// Serving mean and std (after scaling to [0, 1]; 0 and 1 when not normalizing).
  float mean() const;
  float std() const;
  /// Stored layout of a sample.
  SampleLayout layout() const;
  /// The cache's path.
  const std::string& path() const;
  /// The options.
  const DatasetOptions& options() const noexcept { return options_; }

 private:
  void read_targets(std::size_t index, CacheExample& example) const;

  DatasetOptions options_;
  std::shared_ptr<detail::CacheSplitSource> source_;
};

/// Collates CacheExamples into one Batch-like example for `torch::data` loaders:
/// `dataset.map(Collate())`. Output: data float32/uint8 [B,C,H,W], target int64 [B] (or [B,K]).
/// Sample ids are lost in this path; medload's Loader keeps them.
struct Collate
    : public torch::data::transforms::BatchTransform<std::vector<CacheExample>, torch::data::Example<>> {
  /// Stacks the images and the labels. Throws ConfigError on an empty batch.
  torch::data::Example<> apply_batch(std::vector<CacheExample> examples) override;
};

/// Collates CacheExamples, targets included, into the Batch medload's Loader serves (the same
/// tensors, dtypes and padding): `dataset.map(CollateBatch())`. Batch::index and epoch are 0.
struct CollateBatch : public torch::data::transforms::BatchTransform<std::vector<CacheExample>, Batch> {
  /// Throws ConfigError on an empty batch, when the examples disagree on which targets they have,
  /// or on boxes (landmarks) that are not float32 [n,5] ([n,3]), naming the sample.
  Batch apply_batch(std::vector<CacheExample> examples) override;
};

}  // namespace medload::loader
