#pragma once
/// Segmentation metrics for a validation split: Dice and IoU per class, their mean over the
/// foreground classes, pixel accuracy and the pixel confusion matrix. Plain C++ over label arrays
/// (no torch), so they can be checked exactly on hand-made masks.
///
/// Dice is computed over the whole split (all its pixels pooled), per class c:
/// 2 |T_c & P_c| / (|T_c| + |P_c|), T_c the pixels whose truth is c and P_c those predicted c.
/// A class absent from both truth and prediction has no Dice (NaN, written null), rather than a
/// perfect 1 it did nothing to earn.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medload::examples {

/// Metrics of a C-class segmentation (class 0 = background).
struct SegmentationMetrics {
  /// Images counted (those added with a valid mask).
  std::size_t images = 0;
  /// Pixels counted.
  std::int64_t pixels = 0;
  /// Share of pixels whose predicted class is the truth's; NaN without pixels.
  double pixel_accuracy = 0.0;
  /// Mean Dice over the foreground classes (1..C-1) whose Dice is defined; NaN when none is.
  double mean_dice = 0.0;
  /// Dice per class [C], background included; NaN where undefined.
  std::vector<double> dice;
  /// Intersection over union per class [C]; NaN where undefined.
  std::vector<double> iou;
  /// Truth pixels per class [C].
  std::vector<std::int64_t> support;
  /// confusion[truth][predicted] pixel counts [C][C].
  std::vector<std::vector<std::int64_t>> confusion;

  /// {"images", "pixels", "pixel_accuracy", "mean_dice", "dice": {"<class>": ...},
  ///  "iou": {...}, "support": {...}, "confusion": [[...]]}; NaN is written as null. `class_names`
  /// must have C names (or be empty: classes are then named "0", "1", ...). Throws ConfigError.
  nlohmann::json to_json(const std::vector<std::string>& class_names = {}) const;
};

/// Counts pixels of predictions against truth, image by image, then gives their metrics.
class SegmentationConfusion {
 public:
  /// `classes` >= 2 (background and at least one structure). Throws ConfigError.
  explicit SegmentationConfusion(std::size_t classes);

  /// Adds one image (or several, concatenated): `count` truth and predicted class ids, each in
  /// [0, C). `images` is how many images they are. Throws ConfigError naming the first id out of
  /// range (nothing of the call is counted then).
  void add(const std::int64_t* truth, const std::int64_t* predicted, std::size_t count,
           std::size_t images = 1);

  /// The metrics of everything added so far.
  SegmentationMetrics metrics() const;
  /// The number of classes.
  std::size_t classes() const noexcept { return classes_; }

 private:
  std::size_t classes_;
  std::size_t images_ = 0;
  std::vector<std::int64_t> counts_;  // [C*C], truth-major
};

}  // namespace medload::examples
