#pragma once
/// The preprocessing chain (DESIGN.md §3): grayscale -> intensity range -> ROI crop ->
/// letterbox -> CLAHE -> bilateral -> output dtype. Ordered for speed: everything after the
/// letterbox runs at the target size. Pure and deterministic: the same image and options give
/// the same bytes, on any thread; no shared state.

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/preprocess/preprocess_options.h"

namespace medload::loader {

/// Where the output came from, so a coordinate in the output maps back to the original image.
/// Coordinates are continuous pixel coordinates: pixel (i, j) covers [i, i+1) x [j, j+1), its
/// centre is (i + 0.5, j + 0.5). Output -> original:
///   x_orig = crop_x + (x_out - pad_left) / scale,   y_orig = crop_y + (y_out - pad_top) / scale
/// The longer crop side maps exactly; the shorter one is rounded to whole output pixels, so it
/// is exact to within 0.5 output pixels (0.5 / scale original pixels).
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

  /// Output coordinate -> original coordinate (continuous, see above).
  void map_to_original(double x, double y, double& x_orig, double& y_orig) const;
  /// Original coordinate -> output coordinate (the inverse of map_to_original).
  void map_to_output(double x_orig, double y_orig, double& x, double& y) const;

  nlohmann::json to_json() const;  ///< {"original_height": ..., "crop_x": ..., ...}
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
};

/// One preprocessed image, ready to be written to the cache.
struct PreprocessedImage {
  int height = 0;                      ///< rows
  int width = 0;                       ///< columns
  int channels = 1;                    ///< 1, or 3 (B,G,R) when grayscale is switched off for colour input
  PixelType type = PixelType::kUInt8;  ///< kUInt8 or kUInt16 (PreprocessOptions::output_dtype)
  /// Row-major, channels interleaved, height * width * channels * bytes_per_element(type) bytes
  /// (native byte order).
  std::vector<std::uint8_t> pixels;
  Geometry geometry;
  /// True when the ROI crop found no foreground or would have removed more than
  /// RoiCropOptions::max_crop_fraction of the image, so the whole image was kept.
  bool roi_fallback = false;
  /// True when the DICOM window was applied (false: percentile clip or values kept).
  bool windowed = false;
};

/// Runs the chain on `image`.
/// Accepts: 1 or 3 channels; uint8, uint16, int16 (offset to unsigned), float32 (needs the
/// intensity step: window or percentiles). `options` is validated first.
/// Throws ConfigError on invalid options (or float32 input with intensity switched off),
/// FormatError naming image.source_path when the image is empty, has another channel count,
/// or its pixel buffer does not match height * width * channels * element size.
/// `times`, when given, receives the cost of each step.
PreprocessedImage preprocess(const DecodedImage& image, const PreprocessOptions& options,
                             StageTimes* times = nullptr);

}  // namespace medload::loader
