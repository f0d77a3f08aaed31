#pragma once
/// Augmenting a batch's images and its targets together (docs/serve.md, "Targets"): the images
/// through an Augmenter, then each sample's label mask, boxes and landmarks moved by the same
/// geometry (medload/augment/target_warp.h). Intensity operations never touch targets.
///
/// Targets are in medload's serving layout (medload::loader::Batch), padded per batch; this module
/// does not know the loader: make_target_hook returns a callable that takes any batch-like type
/// with the Batch's fields, so one line plugs it into LoaderOptions::augment_targets:
///
/// ```
/// loader_options.augment_targets =
///     medload::augment::make_target_hook(options, threads, {dataset.mean(), dataset.std()});
/// ```
///
/// Determinism: targets follow the AppliedParams alone, which are a pure function of (seed,
/// epoch, sample id), so a sample's targets come out the same whatever the thread count or batch.
/// Targets are warped on the CPU: a CUDA tensor is copied to the host, warped and copied back
/// (the images keep Augmenter's CUDA path).

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "medload/augment/augment_options.h"
#include "medload/augment/augmenter.h"
#include "medload/augment/target_warp.h"

namespace medload::augment {

/// A batch's targets (B samples), medload::loader::Batch's layout. An undefined tensor is a kind
/// the batch does not have. The functions below change them in place and keep every shape.
struct TargetTensors {
  /// int64 or uint8 [B,1,H,W] (or [B,H,W]) class ids, 0 = background; H, W as the images.
  torch::Tensor masks;
  /// Optional bool [B]: false skips the sample's mask (it holds no labels).
  torch::Tensor mask_valid;
  /// float32 [B,M,5] rows x0, y0, x1, y1 (continuous pixel coordinates), class id; rows past
  /// box_counts[b] are padding, exactly (0, 0, 0, 0, -1).
  torch::Tensor boxes;
  /// int64 [B] boxes per sample (0..M).
  torch::Tensor box_counts;
  /// float32 [B,L,3] rows x, y (continuous pixel coordinates), class id; rows past
  /// landmark_counts[b] are padding, exactly (0, 0, -1).
  torch::Tensor landmarks;
  /// int64 [B] landmarks per sample (0..L).
  torch::Tensor landmark_counts;

  /// The target tensors of `batch`, any type with medload::loader::Batch's fields: handles to
  /// the same storage, so changing them in place changes the batch.
  template <class BatchLike>
  static TargetTensors of(const BatchLike& batch) {
    return {batch.masks,      batch.mask_valid, batch.boxes,
            batch.box_counts, batch.landmarks,  batch.landmark_counts};
  }
};

/// How targets follow a warp.
struct TargetWarpOptions {
  /// A warped box is kept when at least this fraction (0..1) of its enclosing box stays inside
  /// the image (warp_box's min_visible); otherwise it is dropped.
  double min_box_visible = 0.25;

  /// Throws ConfigError naming the field and its range.
  void validate() const;
};

/// Moves `targets` in place with each sample's geometry in `params` (B entries, in batch order,
/// e.g. from Augmenter::apply): masks by warp_mask (nearest, the image's exact warp; int64 ids
/// through uint16), boxes by warp_boxes (a box less than min_box_visible inside is dropped: the
/// rows after it move up, the freed last row becomes padding, box_counts drops), landmarks by
/// warp_landmarks (one that leaves the image is dropped likewise). Paired classes of
/// `laterality` swap under a mirroring warp. `width` and `height` are the images'. Samples with
/// an identity geometry are left as they are. Runs on the calling thread, on the CPU (CUDA
/// tensors are copied to the host and back).
/// Throws ConfigError on a wrong dtype, rank, shape or count (naming the tensor), on uint8 masks
/// with a laterality pair above 255; FormatError naming the sample for an int64 mask id outside
/// 0..65535, a box or landmark that is not finite, or a label that is not an integer.
void warp_targets(TargetTensors& targets, const std::vector<AppliedParams>& params, int width, int height,
                  const Laterality& laterality = {}, const TargetWarpOptions& options = {});

/// An Augmenter whose batches carry targets: the images through Augmenter::apply, then the
/// targets through warp_targets with the same parameters, on the same number of threads.
class TargetAugmenter {
 public:
  /// As Augmenter's constructor; the laterality pairs are options.laterality. Throws ConfigError
  /// for bad options (the Augmenter's, the laterality's, `targets`).
  explicit TargetAugmenter(AugmentOptions options, std::size_t threads = 1, Normalization normalization = {},
                           TargetWarpOptions targets = {});
  ~TargetAugmenter();
  TargetAugmenter(TargetAugmenter&&) noexcept;
  TargetAugmenter& operator=(TargetAugmenter&&) noexcept;

  /// Augments `images` ([B,C,H,W], as Augmenter::apply) and moves `targets` with them. Returns
  /// each sample's parameters. Thread-safe (the loader calls it for several batches at once).
  /// Throws as Augmenter::apply and warp_targets.
  std::vector<AppliedParams> apply(torch::Tensor& images, TargetTensors& targets,
                                   const std::vector<std::int64_t>& sample_ids, std::int64_t epoch);
  /// Applies exactly `params` to images and targets: the same input gives the same output.
  void replay(torch::Tensor& images, TargetTensors& targets, const std::vector<AppliedParams>& params);

  /// The image augmenter.
  Augmenter& augmenter() noexcept;
  /// The class pairs that swap sides.
  const Laterality& laterality() const noexcept;

 private:
  void warp(TargetTensors& targets, const std::vector<AppliedParams>& params, int width, int height);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The loader's hook for images and targets (LoaderOptions::augment_targets): calls
/// TargetAugmenter::apply on a batch-like argument with medload::loader::Batch's fields
/// (images, sample_ids int64 [B], epoch and the target tensors). Copies share one augmenter.
class TargetHook {
 public:
  explicit TargetHook(std::shared_ptr<TargetAugmenter> augmenter) : augmenter_(std::move(augmenter)) {}

  /// Augments `batch` in place.
  template <class BatchLike>
  void operator()(BatchLike& batch) const {
    TargetTensors targets = TargetTensors::of(batch);
    augmenter_->apply(batch.images, targets, ids_of(batch.sample_ids),
                      static_cast<std::int64_t>(batch.epoch));
  }

  /// The augmenter it calls.
  TargetAugmenter& augmenter() const noexcept { return *augmenter_; }

 private:
  // int64 [B] ids as a vector (ConfigError for another dtype or rank).
  static std::vector<std::int64_t> ids_of(const torch::Tensor& sample_ids);

  std::shared_ptr<TargetAugmenter> augmenter_;
};

/// One line for a user: `loader_options.augment_targets = make_target_hook(options, threads,
/// {dataset.mean(), dataset.std()});` (uint8 serving needs no normalization argument).
TargetHook make_target_hook(AugmentOptions options, std::size_t threads = 1, Normalization normalization = {},
                            TargetWarpOptions targets = {});

}  // namespace medload::augment
