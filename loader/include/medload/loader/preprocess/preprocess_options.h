#pragma once
/// The options of the preprocessing chain (DESIGN.md §3), one struct per step, each step
/// switchable. Every field has a default; `PreprocessOptions::from_json` fills missing keys with
/// them and rejects unknown keys and out-of-range values with a ConfigError naming the key and the
/// allowed range (e.g. "preprocess.letterbox.size is 3; allowed 16..4096").

#include <nlohmann/json.hpp>

#include <string>

#include "medload/loader/ingest/decoded_image.h"

namespace medload::loader {

/// Step 1: colour to grayscale.
struct GrayscaleOptions {
  /// true: colour input becomes one channel (luma, BT.601 weights); false: colour stays B,G,R
  /// (CLAHE then works on the luma of YCrCb). Gray input is unaffected either way.
  bool enabled = true;
};

/// Step 2: intensity range. The result spans the working range (0..255 for 8-bit work,
/// 0..65535 for 16-bit work: 16-bit, int16 and float32 input is worked on in 16 bits).
struct IntensityOptions {
  /// false: pixel values are kept (uint8, uint16), int16 is offset by +32768; float32 input
  /// then throws ConfigError (it has no natural integer range).
  bool enabled = true;
  /// Apply the DICOM VOI transformation (VOI LUT Sequence, or window with its VOI LUT Function;
  /// PS3.3 C.11.2) when the image carries one.
  bool use_dicom_window = true;
  /// Without a window: clip to percentiles and stretch, for images whose bits_stored > 8 or
  /// whose type is not uint8 (8-bit images are kept as they are).
  bool percentile_clip = true;
  /// Lower clip percentile, in percent. Range 0..50, below high_percentile.
  double low_percentile = 0.5;
  /// Upper clip percentile, in percent. Range 50..100, above low_percentile.
  double high_percentile = 99.5;
};

/// Step 3: region-of-interest crop (black borders, burned-in text bands). The heuristic is
/// described in docs/preprocess.md.
struct RoiCropOptions {
  bool enabled = true;  ///< crop at all
  /// Foreground = value > min + threshold * (max - min) of the (gray/luma) image. Range 0..0.9.
  double threshold = 0.05;
  /// Pixels of the original image added around the detected box on each side. Range 0..1024.
  int margin = 4;
  /// Drop thin bright row bands at the top/bottom that are separated from the anatomy by
  /// dark rows (burned-in annotation text).
  bool remove_text_bands = true;
  /// A band counts as text when its height is at most this fraction of the image height.
  /// Range 0.01..0.5.
  double max_text_band_fraction = 0.15;
  /// If the box would remove more than this fraction of the image area, no crop is made
  /// (PreprocessedImage::roi_fallback is set). Range 0..0.99.
  double max_crop_fraction = 0.75;
};

/// Step 4: letterbox: scale the longer side to `size` and pad the shorter one with black
/// (centred) to a size x size square. Never squashes the aspect ratio.
struct LetterboxOptions {
  bool enabled = true;  ///< false: the (cropped) image keeps its size
  int size = 256;       ///< output side in pixels (224, 256, 512, ...). Range 16..4096.
  /// "area" (cv::INTER_AREA: exact pixel-area averaging, the right choice for downscaling),
  /// "area_fast" (an integer-factor box average first, then area: about 4x faster at 2048 px,
  /// slightly softer, the crop box may grow by up to k-1 pixels), "linear" or "cubic".
  std::string interpolation = "area";
};

/// Step 5a: contrast-limited adaptive histogram equalisation, at the output size.
struct ClaheOptions {
  bool enabled = true;
  double clip_limit = 2.0;  ///< OpenCV's clip limit (relative to a uniform histogram). Range 0.1..100.
  int tile_grid = 8;        ///< tiles per side. Range 1..64.
};

/// Step 5b: edge-preserving bilateral denoise, at the output size. 16-bit work is filtered in
/// float32 (values scaled to 0..255 so sigma_color means the same for both depths) and
/// converted back, so precision is not lost.
struct BilateralOptions {
  bool enabled = true;
  int diameter = 5;           ///< neighbourhood diameter in pixels. Range 1..15.
  double sigma_color = 10.0;  ///< in 8-bit intensity units (0..255). Range 0.1..255.
  double sigma_space = 3.0;   ///< in pixels. Range 0.1..50.
};

/// The whole chain. Validated when built by `from_json` or by `validate()`.
struct PreprocessOptions {
  GrayscaleOptions grayscale;
  IntensityOptions intensity;
  RoiCropOptions roi_crop;
  LetterboxOptions letterbox;
  ClaheOptions clahe;
  BilateralOptions bilateral;
  /// Stored element type: PixelType::kUInt8 or kUInt16 ("uint8" / "uint16" in JSON).
  PixelType output_dtype = PixelType::kUInt8;

  /// Throws ConfigError naming the first bad field ("preprocess.<step>.<key>") and its range.
  void validate() const;

  /// Parses the "preprocess" object. Missing keys take defaults; unknown keys, wrong JSON types
  /// and out-of-range values throw ConfigError naming the key.
  static PreprocessOptions from_json(const nlohmann::json& j);
  /// Every field, defaults included.
  nlohmann::json to_json() const;
};

}  // namespace medload::loader
