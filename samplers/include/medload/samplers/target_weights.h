#pragma once
/// Weights from target statistics (target_statistics.h): per-sample weights for
/// WeightedRandomSampler that oversample images holding rare target classes, and class weights
/// from pixel frequencies for segmentation losses.

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "medload/samplers/class_weights.h"
#include "medload/samplers/target_statistics.h"

namespace medload::samplers {

/// Options of target_sample_weights: which kinds of target say which classes an image holds.
struct TargetSampleWeightOptions {
  /// How an image's weight combines the inverse frequencies of its classes (as for
  /// multilabel_sample_weights).
  MultiLabelCombine combine = MultiLabelCombine::kMax;
  /// Mask classes (ids >= 1) count.
  bool masks = true;
  /// Box labels count.
  bool boxes = true;
  /// Landmark labels count (off: landmarks are usually the same points on every image).
  bool landmarks = false;
  /// A mask holds class c when c covers at least this many pixels (>= 1).
  std::int64_t min_mask_pixels = 1;

  /// Throws ConfigError naming the field: no kind selected, min_mask_pixels < 1.
  void validate() const;
};

/// True when one of the kinds `options` selects is valid for `image`: the image says which
/// classes it holds (possibly none: a negative).
bool target_annotated(const ImageTargets& image, const TargetSampleWeightOptions& options);

/// The foreground classes (ids >= 1) `image` holds under `options`, distinct and ascending.
std::vector<std::int32_t> target_classes_of(const ImageTargets& image,
                                            const TargetSampleWeightOptions& options);

/// Per-sample weights for WeightedRandomSampler (index i = stats.images[i]), mirroring
/// multilabel_sample_weights: with n_c the annotated images holding class c, an image's weight
/// combines 1 / n_c over its classes (max or mean); annotated images holding no class (negatives)
/// are their own group, weight 1 / (number of negatives). With single-class images every class,
/// and the negatives, are drawn equally often in expectation. Images that are not annotated
/// (every selected kind kNone or kInvalid) get weight 0: nothing says whether they hold a rare
/// class, and their loss term would be skipped anyway. Returns n float64 weights. Throws
/// ConfigError from options.validate(), and when no image is annotated.
std::vector<double> target_sample_weights(const TargetStatistics& stats,
                                          TargetSampleWeightOptions options = {});

/// How pixel_class_weights derives class weights from the masks' pixels.
enum class PixelWeighting {
  /// Median frequency balancing (Eigen & Fergus 2015): freq_c = pixels of c / pixels of the
  /// masks holding c, w_c = median_c(freq_c) / freq_c (median over the weighted classes; the mean
  /// of the two middle values for an even count). Not normalised: the median class weighs 1.
  kMedianFrequency,
  /// class_weights(stats.class_pixels, options.class_weighting): inverse, sqrt-inverse, balanced,
  /// effective-number, over total pixel counts.
  kClassWeighting,
};

/// Options of pixel_class_weights.
struct PixelWeightOptions {
  /// The scheme.
  PixelWeighting weighting = PixelWeighting::kMedianFrequency;
  /// kClassWeighting only: the scheme over pixel counts (beta for kEffectiveNumber).
  ClassWeightOptions class_weighting = {};
  /// A class with no pixel in any valid mask: false throws ConfigError naming it; true gives it
  /// weight 0 and weighs the other classes as if it did not exist.
  bool zero_absent_classes = false;
};

/// Class weights for a segmentation loss from the pixels of the valid masks in `stats` (the
/// training part): float32 [K], K = stats.class_names.size(), background (class 0) included, for
/// `CrossEntropyLoss`'s `weight` with masks of class ids. Throws ConfigError when `stats` has no
/// valid mask, and (unless zero_absent_classes) naming the id and name of a class with no pixel;
/// as class_weights for its options.
torch::Tensor pixel_class_weights(const TargetStatistics& stats, PixelWeightOptions options = {});

}  // namespace medload::samplers
