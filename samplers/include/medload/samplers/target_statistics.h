#pragma once
/// Which target classes the images of a set of cache rows contain (mask classes with their pixel
/// counts, box and landmark labels), for target_sample_weights and pixel_class_weights
/// (target_weights.h). Only valid kinds count: a mask, boxes or landmarks whose state is kNone or
/// kInvalid say nothing about the image.
///
/// Cost: every valid mask of the rows is read once (CacheReader::read_mask: a pread and, for a
/// compressed cache, an inflate), on `threads` threads; boxes and landmarks come from the
/// in-memory tables. docs/samplers.md, "Targets", gives a measured figure.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/core/progress.h"
#include "medload/samplers/target_reader.h"

namespace medload::samplers {

/// Pixels of one class in one mask.
struct ClassPixels {
  std::int32_t class_id = 0;  ///< 0 = background
  std::int64_t pixels = 0;    ///< > 0
};

/// The target classes of one image.
struct ImageTargets {
  bool mask_valid = false;       ///< the mask is kValid
  bool boxes_valid = false;      ///< the boxes are kValid (none of them: a negative image)
  bool landmarks_valid = false;  ///< the landmarks are kValid
  /// A valid mask's pixels per class, ascending class id, only classes with pixels (background
  /// included); empty when the mask is not valid.
  std::vector<ClassPixels> mask_pixels;
  /// Distinct labels of valid boxes, ascending; empty when none or not valid.
  std::vector<std::int32_t> box_classes;
  /// Distinct labels of valid landmarks, ascending; empty when none or not valid.
  std::vector<std::int32_t> landmark_classes;
};

/// Options of target_statistics.
struct TargetStatisticsOptions {
  /// Threads reading masks; 0 = one per hardware thread.
  std::size_t threads = 0;
  /// How the progress of the mask reads is shown ("target statistics: 120/1000 masks").
  ProgressStyle progress = ProgressStyle::kQuiet;

  /// Throws ConfigError naming the field (threads above 1024).
  void validate() const;
};

/// The target classes of a set of cache rows.
struct TargetStatistics {
  /// The target classes' names by class id (K entries; 0 = background).
  std::vector<std::string> class_names;
  /// Pixels of one mask (H * W); 0 when the cache holds no masks.
  std::size_t mask_pixels = 0;
  /// [n] the cache rows, in the order given (index i of a dataset over them is row rows[i]).
  std::vector<std::int64_t> rows;
  /// [n] each row's targets.
  std::vector<ImageTargets> images;
  /// [K] pixels of class c over all valid masks.
  std::vector<std::int64_t> class_pixels;
  /// [K] valid masks with at least one pixel of class c.
  std::vector<std::int64_t> class_mask_images;
  /// Images with a valid mask, valid boxes, valid landmarks.
  std::size_t valid_masks = 0, valid_boxes = 0, valid_landmarks = 0;
};

/// The target classes of cache rows `rows` (e.g. CacheDataset::sample_ids() of the training
/// part), reading each valid mask once in parallel. Throws ConfigError for a row outside
/// [0, reader.size()) naming its index and value, and from options.validate(); FormatError naming
/// the row for a valid mask while the reader has no masks, for a mask value that is no target
/// class (>= K), and for a box or landmark label outside [1, K); what reader throws passes through.
TargetStatistics target_statistics(const TargetReader& reader, const std::vector<std::int64_t>& rows,
                                   TargetStatisticsOptions options = {});

/// target_statistics over every row 0..N-1 of the cache, with the default options.
TargetStatistics target_statistics(const TargetReader& reader);

}  // namespace medload::samplers
