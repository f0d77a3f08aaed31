#pragma once
/// Per-batch augmentation of `[B,C,H,W]` tensors (DESIGN.md §7).
///
/// Augmenter::apply draws each sample's parameters from a counter-based generator keyed by
/// (seed, epoch, sample id, view), so a sample gets the same augmentation whatever the thread
/// count and whichever batch it lands in, and a different one each epoch. The view (0 unless
/// set) tells apart two augmentations of one sample in the same epoch: the weak and strong views
/// of consistency training (make_two_view_hooks, docs/semisupervised.md). The applied parameters are
/// returned; Augmenter::replay applies given parameters and reproduces the output exactly.
///
/// CPU tensors are augmented per sample on a thread pool with OpenCV kernels (uint8 stays
/// uint8: fixed-point warps and lookup tables); CUDA tensors with batched affine_grid /
/// grid_sample and elementwise tensor ops, with the same parameter semantics (equal up to
/// interpolation rounding; the noise fields are bit-identical).

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "medload/augment/augment_options.h"

namespace medload::augment {

/// The parameters one sample was augmented with. Identity values mean "not applied"
/// (rotation 0, scale 1, gamma 1, sigma 0, photons 0, downsample 1, ...).
struct AppliedParams {
  std::int64_t sample_id = 0;             ///< the sample's id (its index in the cache)
  std::int64_t epoch = 0;                 ///< the epoch it was drawn for
  std::uint32_t view = 0;                 ///< the view it was drawn for (0 = the only or weak view)
  bool horizontal_flip = false;           ///< mirrored left-right (before the warp)
  bool vertical_flip = false;             ///< mirrored top-bottom (before the warp)
  double rotation_degrees = 0.0;          ///< clockwise on screen, about the image centre
  double translate_x = 0.0;               ///< fraction of the width, + is to the right
  double translate_y = 0.0;               ///< fraction of the height, + is down
  double scale = 1.0;                     ///< isotropic, about the centre
  double downsample_factor = 1.0;         ///< down-then-up factor (1 = not applied)
  double blur_sigma = 0.0;                ///< Gaussian blur sigma in pixels (0 = not applied)
  double gamma = 1.0;                     ///< x -> x^gamma (1 = not applied)
  double brightness = 1.0;                ///< x -> brightness * x (1 = not applied)
  double contrast = 1.0;                  ///< blend with the mean (1 = not applied)
  double poisson_photons = 0.0;           ///< photons at full intensity (0 = not applied)
  double gaussian_sigma = 0.0;            ///< fraction of the full range (0 = not applied)
  std::uint64_t noise_key = 0;            ///< key of the sample's noise fields
  bool horizontal_flip_override = false;  ///< the config set allow_horizontal_flip
  bool unsafe_override = false;           ///< the config set unsafe_override

  /// {"sample_id": .., "epoch": .., ..., "noise_key": "<16 hex digits>", "overrides": [...]},
  /// plus "view" when it is not 0.
  nlohmann::json to_json() const;
  /// The inverse of to_json ("view" optional, 0 when absent); throws ConfigError naming a
  /// missing or mistyped key.
  static AppliedParams from_json(const nlohmann::json& j);
  /// True when the warp is the identity (no flip, rotation, translation or scale).
  bool identity_geometry() const noexcept;
};

/// The loader's augmentation hook: augments `batch` in place for these sample ids and epoch.
using AugmentHook = std::function<void(torch::Tensor& batch, const std::vector<std::int64_t>& sample_ids,
                                       std::int64_t epoch)>;

/// How float32 batches are normalised when they reach the augmenter: values are
/// (x - mean) / std with x in [0, 1] (the loader's SampleOutput / CacheDataset::mean(), std()).
/// Augmentation works on x: it undoes the normalisation, augments, and normalises again.
/// uint8 batches ignore it.
struct Normalization {
  float mean = 0.0f;  ///< subtracted after scaling to [0, 1]
  float std = 1.0f;   ///< divides after the mean; > 0
};

class Augmenter {
 public:
  /// Validates `options` (ConfigError) and starts `threads` - 1 worker threads (the caller is
  /// the last one); threads = 0 means one per hardware thread. threads only changes speed.
  /// `normalization`: see Normalization (ConfigError unless std > 0 and both are finite).
  /// `view`: which view of a sample this augmenter draws (0 = the only or the weak one; 1 = the
  /// strong one of make_two_view_hooks); view 0 draws what it always drew.
  explicit Augmenter(AugmentOptions options, std::size_t threads = 1, Normalization normalization = {},
                     std::uint32_t view = 0);
  ~Augmenter();
  Augmenter(Augmenter&&) noexcept;
  Augmenter& operator=(Augmenter&&) noexcept;

  /// The options in force.
  const AugmentOptions& options() const noexcept;
  /// The view this augmenter draws.
  std::uint32_t view() const noexcept;

  /// The parameters of `sample_id` in `epoch`: a pure function of (seed, epoch, sample id, view).
  AppliedParams draw(std::int64_t sample_id, std::int64_t epoch) const;

  /// Augments `batch` in place: uint8, or float32 (values in [0, 1], or normalised as the
  /// constructor's Normalization says), `[B,C,H,W]`, on the CPU or a CUDA device;
  /// sample_ids.size() == B. Returns each sample's parameters.
  /// With options().enabled false the batch is unchanged and the parameters are identities.
  /// Throws ConfigError on a wrong dtype, rank or id count; WorkerError naming the sample when
  /// a kernel fails.
  std::vector<AppliedParams> apply(torch::Tensor& batch, const std::vector<std::int64_t>& sample_ids,
                                   std::int64_t epoch);

  /// Applies exactly `params` (one per sample, e.g. from apply() or AppliedParams::from_json)
  /// to `batch`; same input, same params and device give the same output bit for bit.
  void replay(torch::Tensor& batch, const std::vector<AppliedParams>& params);

  /// {"options": ..., "overrides": [...]}: what this augmenter does, for a run's log.
  nlohmann::json describe() const;

 private:
  void replay_unnormalized(torch::Tensor& batch, const std::vector<AppliedParams>& params);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One line for a user: a hook for medload's loader that owns an Augmenter.
/// `loader_options.augment = medload::augment::make_hook(options, threads, {dataset.mean(), dataset.std()});`
/// (uint8 serving needs no normalization argument).
AugmentHook make_hook(AugmentOptions options, std::size_t threads = 1, Normalization normalization = {});

/// The two hooks of weak/strong consistency training (FixMatch and its kin; docs/semisupervised.md).
struct TwoViewHooks {
  AugmentHook weak;    ///< for LoaderOptions::augment: view 0 of `weak`'s options
  AugmentHook strong;  ///< for LoaderOptions::augment_strong: view 1 of `strong`'s options
};

/// Two augmenters over one sample read: the weak view draws from (weak.seed, epoch, id, view 0),
/// the strong one from (strong.seed, epoch, id, view 1), so the two views of a sample differ
/// even with equal options and seeds, and each replays exactly. Both configs are validated
/// against the medical limits (a strong view past a limit needs unsafe_override, recorded in its
/// AppliedParams like any override): ConfigError naming the view, e.g. "strong view:
/// augment.gamma.max is 3; the medical limit is 2 ...". AugmentOptions::weak_view() and
/// strong_view() are sensible pairs.
///   auto views = medload::augment::make_two_view_hooks(AugmentOptions::weak_view(),
///                                                       AugmentOptions::strong_view(), 2, norm);
///   loader_options.augment = views.weak;
///   loader_options.augment_strong = views.strong;
TwoViewHooks make_two_view_hooks(AugmentOptions weak, AugmentOptions strong, std::size_t threads = 1,
                                 Normalization normalization = {});

}  // namespace medload::augment
