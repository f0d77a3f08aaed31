#pragma once
/// The contract between ingest (decoding, validation) and preprocessing: one decoded 2D image
/// with everything the later stages need. A plain struct, so OpenCV stays out of public headers;
/// `pixels` wraps into a cv::Mat without a copy:
///   cv::Mat(img.height, img.width, CV_MAKETYPE(depth_of(img.type), img.channels), img.pixels.data())

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace medload::loader {

/// Element type of DecodedImage::pixels.
enum class PixelType : std::uint8_t {
  kUInt8,    ///< 8-bit raster images, 8-bit DICOM
  kUInt16,   ///< 16-bit raster images, unsigned DICOM without a rescale
  kInt16,    ///< signed DICOM without a rescale (CT stored values)
  kFloat32,  ///< DICOM after a non-identity Modality LUT (rescale slope/intercept), e.g. HU
};

/// Bytes per element of `type`.
constexpr int bytes_per_element(PixelType type) {
  return type == PixelType::kUInt8 ? 1 : type == PixelType::kFloat32 ? 4 : 2;
}

/// Metadata of the sample the image belongs to. DICOM headers fill what a manifest leaves empty.
struct SampleInfo {
  /// Class names; empty = unlabeled; several = multi-label.
  std::vector<std::string> labels;
  /// Patient identifier; empty when neither the manifest nor the header has one.
  std::string patient_id;
  std::string modality;    ///< DICOM (0008,0060), e.g. "CT", "MR", "XA"; or from the manifest
  std::string series_uid;  ///< DICOM (0020,000E)
  std::string view;        ///< DICOM ViewPosition (0018,5101), e.g. "PA"
  std::string site;        ///< institution (0008,0080) or the manifest's site column
  /// Further metadata columns of the manifest (age, sex, ...) as text, by column name.
  std::map<std::string, std::string> metadata;
};

/// One decoded frame. Pixel values follow DICOM semantics already: Modality LUT applied,
/// MONOCHROME1 inverted (bright = dense), signed values kept signed, BitsStored masked.
struct DecodedImage {
  int height = 0;    ///< rows
  int width = 0;     ///< columns
  int channels = 1;  ///< 1 (gray) or 3 (colour, in B,G,R order as OpenCV uses)
  PixelType type = PixelType::kUInt8;
  /// Row-major, channels interleaved, height * width * channels * bytes_per_element(type) bytes.
  std::vector<std::uint8_t> pixels;

  /// Bits of information per sample in the source (8, 12, 16, ...): DICOM BitsStored, else the
  /// raster depth. Percentile clipping applies when this is above 8.
  int bits_stored = 8;
  /// DICOM VOI window (first centre/width, in the units of `pixels`), when the header has one.
  std::optional<double> window_center;
  std::optional<double> window_width;
  /// True when the source was MONOCHROME1 (already inverted in `pixels`).
  bool was_monochrome1 = false;

  std::string source_path;  ///< the input file, as listed in the scan report
  /// XXH64 of the input file's bytes as decoded (the scan report's content_hash), so that later
  /// stages can identify the file without reading it again.
  std::uint64_t source_hash = 0;
  int frame_index = 0;  ///< 0-based frame within a multi-frame source
  int frame_count = 1;  ///< frames in the source
  std::string format;   ///< decoder that produced it: "png", "jpeg", "tiff", "bmp", "dicom"
  SampleInfo info;
};

}  // namespace medload::loader
