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

#include "medload/loader/ingest/annotation.h"

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
  /// Class names; empty = unlabeled (unless unknown_labels is not empty); several = multi-label.
  std::vector<std::string> labels;
  /// Class names whose value is not known for this sample (the manifest's `unknown_labels`
  /// column): in a multi-label cache their entries are -1, the classes in `labels` 1 and the
  /// others 0. No class is in both lists (list_sources keeps a class named in both columns here
  /// only, with the warning "label_conflict"). Always empty for folder datasets.
  std::vector<std::string> unknown_labels;

  /// True when nothing is known of the sample's labels: `labels` and `unknown_labels` both empty.
  /// A sample with unknown_labels alone is labeled: every class it does not name is a known 0.
  bool unlabeled() const noexcept { return labels.empty() && unknown_labels.empty(); }
  /// Patient identifier; empty when neither the manifest nor the header has one.
  std::string patient_id;
  std::string modality;    ///< DICOM (0008,0060), e.g. "CT", "MR", "XA"; or from the manifest
  std::string series_uid;  ///< DICOM (0020,000E)
  std::string view;        ///< DICOM ViewPosition (0018,5101), e.g. "PA"
  std::string site;        ///< institution (0008,0080) or the manifest's site column
  /// Further metadata columns of the manifest (age, sex, ...) as text, by column name.
  std::map<std::string, std::string> metadata;
};

/// A DICOM VOI transformation (PS3.3 C.11.2): how a frame's values map to display intensity.
/// It is defined on the Modality LUT's output, before any MONOCHROME1 inversion; preprocessing
/// applies it and then the inversion, in the order of the standard's display pipeline.
struct VoiTransform {
  enum class Function : std::uint8_t {
    kLinear,       ///< VOI LUT Function LINEAR (the default): PS3.3 C.11.2.1.2.1
    kLinearExact,  ///< LINEAR_EXACT: C.11.2.1.3.2
    kSigmoid,      ///< SIGMOID: C.11.2.1.3.1
    kTable,        ///< the first item of the VOI LUT Sequence: C.11.2.1.1
  };
  Function function = Function::kLinear;
  double center = 0;  ///< WindowCenter, for the three functions
  double width = 0;   ///< WindowWidth, for the three functions (> 0; >= 1 for kLinear)
  /// kTable: the input value mapped to table[0] (LUT Descriptor's second value). Inputs below
  /// it take table.front(), inputs past the end table.back().
  double first_mapped = 0;
  /// kTable: bits of each entry (LUT Descriptor's third value); outputs span 0 .. 2^bits - 1.
  int table_bits = 16;
  std::vector<std::uint16_t> table;  ///< kTable: LUT Data
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
  /// The DICOM VOI transformation, when the header has one (a VOI LUT Sequence, else the first
  /// WindowCenter/WindowWidth with its VOI LUT Function). Defined on the Modality LUT's output
  /// before the MONOCHROME1 inversion: for such a frame, apply it to monochrome1_mirror - pixel
  /// and invert the result.
  std::optional<VoiTransform> voi;
  /// True when the source was MONOCHROME1 (already inverted in `pixels`).
  bool was_monochrome1 = false;
  /// For a MONOCHROME1 frame, M such that the Modality LUT's output is M - pixel (the inversion
  /// mirrors the BitsStored range, through the rescale).
  double monochrome1_mirror = 0;

  std::string source_path;  ///< the input file, as listed in the scan report
  /// XXH64 of the input file's bytes as decoded (the scan report's content_hash), so that later
  /// stages can identify the file without reading it again.
  std::uint64_t source_hash = 0;
  int frame_index = 0;  ///< 0-based frame within a multi-frame source
  int frame_count = 1;  ///< frames in the source
  std::string format;   ///< decoder that produced it: "png", "jpeg", "tiff", "bmp", "dicom"
  SampleInfo info;
  /// The frame's mask, boxes and landmarks in its pixel coordinates, decoded and checked
  /// (check_targets); every kind kNone when the source gave none.
  FrameTargets targets;
};

}  // namespace medload::loader
