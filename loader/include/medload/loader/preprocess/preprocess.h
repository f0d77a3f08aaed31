#pragma once
/// The preprocessing chain (DESIGN.md §3): grayscale -> intensity range -> ROI crop ->
/// letterbox -> CLAHE -> bilateral -> output dtype. Ordered for speed: everything after the
/// letterbox runs at the target size. Pure and deterministic: the same image and options give
/// the same bytes, on any thread; no shared state.

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/staged_frame.h"
#include "medload/loader/preprocess/preprocess_options.h"

namespace medload::loader {

// Geometry (where the output came from) and StageTimes (what each step cost) are declared with
// StagedFrame in staged_frame.h: the decoder workers carry them back from the cache build's
// preprocessing.

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
