#pragma once
/// What a scan's stage made of one decoded frame, the contract between ingest (which runs the
/// stage where the frame was decoded, inside its decoder worker, and carries the result back) and
/// preprocessing (the cache build's stage). Plain structs: the worker wire format
/// (loader/src/ingest/wire_format.h) sends them field by field.

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/decoded_image.h"

namespace medload::loader {

/// Where the output came from, so a coordinate in the output maps back to the original image.
/// Coordinates are continuous pixel coordinates: pixel (i, j) covers [i, i+1) x [j, j+1), its
/// centre is (i + 0.5, j + 0.5). The crop box was resized to resized_width() x resized_height()
/// output pixels and padded; output -> original, along each axis with its own factor (the resize's):
///   x_orig = crop_x + (x_out - pad_left) * crop_w / resized_width()
///   y_orig = crop_y + (y_out - pad_top) * crop_h / resized_height()
/// Both sides map exactly (the longer side's factor is `scale`; the shorter side was resized to a
/// whole number of pixels, so its factor differs from `scale` by less than 0.5 output pixels).
struct Geometry {
  int original_height = 0;  ///< rows of the decoded image
  int original_width = 0;   ///< columns of the decoded image
  int crop_x = 0;           ///< crop box left column, in original pixels
  int crop_y = 0;           ///< crop box top row, in original pixels
  int crop_w = 0;           ///< crop box width (the whole image when nothing was cropped)
  int crop_h = 0;           ///< crop box height
  double scale = 1.0;       ///< output pixels per original pixel (letterbox resize)
  int pad_top = 0;          ///< black rows added above the resized crop, in output pixels
  int pad_left = 0;         ///< black columns added left of it
  int pad_bottom = 0;       ///< black rows added below it
  int pad_right = 0;        ///< black columns added right of it

  /// Columns the crop box was resized to: the output's width without its padding. The longer
  /// crop side becomes round(longer * scale), the shorter round(side * scale), at least 1 (the
  /// letterbox's own arithmetic). 0 when the crop box is empty (a default Geometry).
  int resized_width() const;
  /// Rows the crop box was resized to (as resized_width).
  int resized_height() const;
  /// Output coordinate -> original coordinate (continuous, see above).
  void map_to_original(double x, double y, double& x_orig, double& y_orig) const;
  /// Original coordinate -> output coordinate (the inverse of map_to_original).
  void map_to_output(double x_orig, double y_orig, double& x, double& y) const;

  nlohmann::json to_json() const;  ///< {"original_height": ..., "crop_x": ..., ...}
  /// The inverse of to_json; a missing key keeps its default. Throws nlohmann::json::exception
  /// when a value has the wrong type.
  static Geometry from_json(const nlohmann::json& j);
};

/// Nanoseconds spent in each step of one `preprocess` call (0 for a step that is switched off).
/// Add them up over a build for the report's "cost of each stage".
struct StageTimes {
  std::int64_t grayscale_ns = 0;
  std::int64_t intensity_ns = 0;
  std::int64_t roi_crop_ns = 0;
  std::int64_t letterbox_ns = 0;
  std::int64_t clahe_ns = 0;
  std::int64_t bilateral_ns = 0;
  std::int64_t output_ns = 0;  ///< final conversion to the output dtype and copy out
  std::int64_t total_ns = 0;   ///< the whole call

  StageTimes& operator+=(const StageTimes& other);
  nlohmann::json to_json() const;  ///< {"grayscale_ns": ..., ..., "total_ns": ...}
  /// The inverse of to_json; a missing key is 0. Throws nlohmann::json::exception when a value
  /// has the wrong type.
  static StageTimes from_json(const nlohmann::json& j);
};

/// Boxes as JSON rows [[x0, y0, x1, y1, label], ...], landmarks as [[x, y, label], ...]: the rows
/// of targets_to_json, and of the boxes and landmarks a decoder worker is sent.
nlohmann::json box_rows(const std::vector<Box>& boxes);
nlohmann::json landmark_rows(const std::vector<Landmark>& points);

/// A frame's targets as JSON, without the mask's labels (they travel as bytes beside the image's):
/// {"mask": state, "mask_height", "mask_width", "boxes": state, "box_rows": [[x0,y0,x1,y1,label],
/// ...], "boxes_dropped", "landmarks": state, "landmark_rows": [[x,y,label], ...],
/// "landmarks_dropped"} (states as TargetState numbers). The decoder workers' replies and the
/// build's work batches carry targets this way.
nlohmann::json targets_to_json(const FrameTargets& targets);
/// The inverse of targets_to_json; the mask gets its size and no labels. Throws FormatError naming
/// the field when a state is out of range, a number is not finite, a box has no area, a label is
/// not 1..kMaxTargetClass or the mask's size is not 1..65535 on each side; nlohmann::json::exception
/// when a field is missing or of the wrong type.
FrameTargets targets_from_json(const nlohmann::json& j);

/// What a FrameStage made of one frame: for the cache build, the preprocessed image in the
/// cache's planar layout with its shape, geometry, timings and hashes. A stage fills what it
/// has; the scan carries every field back unchanged.
struct StagedFrame {
  int height = 0;                      ///< rows of the output image
  int width = 0;                       ///< columns
  int channels = 1;                    ///< channels (planar in `bytes`)
  PixelType type = PixelType::kUInt8;  ///< element type of `bytes`
  Geometry geometry;                   ///< where the output came from in the decoded frame
  StageTimes times;                    ///< what each preprocessing step cost
  std::uint64_t checksum = 0;          ///< XXH64 of `bytes`
  /// A hash of the decoded frame's pixels (they stay in the worker), for duplicate detection
  /// across resumed builds.
  std::uint64_t decoded_hash = 0;
  std::vector<std::uint8_t> bytes;  ///< the output's bytes (for the build: [C,H,W], native order)
  /// The frame's targets on the output grid (a mask of height x width), moved there with
  /// `geometry` (medload/loader/preprocess/targets.h).
  FrameTargets targets;
};

}  // namespace medload::loader
