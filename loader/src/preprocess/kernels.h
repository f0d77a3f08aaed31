#pragma once
// The preprocessing chain's kernels: pure functions on one image (no options parsing, no
// timing, no state), each with the types and shapes it accepts checked on entry. preprocess.cpp
// strings them together; each can be tested on a hand-made image alone.
//
// Images are cv::Mat, row-major, channels interleaved (B,G,R for colour). Precondition failures
// throw FormatError (an image of a type or shape the kernel does not accept) or ConfigError (a
// parameter out of its range), naming the kernel.

#include <opencv2/core.hpp>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/staged_frame.h"
#include "medload/loader/preprocess/preprocess_options.h"

namespace medload::loader::detail {

/// A range of pixel values, in the image's own units.
struct ValueRange {
  double lo = 0;
  double hi = 0;
};

/// The exact nearest-rank percentiles of `image`'s values (all channels together): the value at
/// rank floor(low/100 * (n-1)) and the value at rank ceil(high/100 * (n-1)) of the sorted values.
/// Accepts CV_16U and CV_16S (through a histogram) and CV_32F (its finite values), any channel
/// count, not empty; 0 <= low <= high <= 100.
/// Throws FormatError for another depth, an empty image or a float image without a finite value
/// (naming `name`), ConfigError for percentiles out of range or order.
ValueRange percentile_range(const cv::Mat& image, double low, double high, const std::string& name);

/// Whether `voi` can be applied: finite parameters in their ranges, a non-empty table.
bool voi_usable(const VoiTransform& voi);

/// The DICOM VOI transformation `voi` (PS3.3 C.11.2) applied to every value: CV_8U onto 0..255
/// (CV_8U), CV_16U, CV_16S and CV_32F onto 0..65535 (CV_16U, NaN -> 0); same channels. For a
/// MONOCHROME1 frame (`monochrome1`: its values were inverted at decoding, x = mirror - v) the
/// function is applied to v and its result inverted, as the standard's display pipeline does.
/// Throws FormatError for another depth or an empty image, ConfigError when !voi_usable(voi).
cv::Mat apply_voi(const cv::Mat& image, const VoiTransform& voi, bool monochrome1, double mirror);

/// Linear stretch of [range.lo, range.hi] onto 0..65535 with clipping (CV_16U, same channels;
/// NaN -> 0; a range with hi <= lo maps everything to 0). Accepts CV_16U, CV_16S and CV_32F, not
/// empty. Throws FormatError otherwise.
cv::Mat stretch_to_16bit(const cv::Mat& image, ValueRange range);

/// The crop box of an image's content, and whether it fell back to the whole image.
struct RoiBox {
  cv::Rect box;
  bool fallback = false;  ///< no foreground, or the crop would remove more than allowed
};

/// The box around the content of `image`: rows and columns where at least 0.5 % of the pixels
/// (and at least one) lie above threshold (of the min..max range), leaving out thin bands of
/// burned-in text apart from the anatomy, grown by the margin. The whole image, with `fallback`,
/// when the image is constant, nothing is foreground, or the box would remove more than
/// max_crop_fraction of the image. Accepts CV_8U or CV_16U, 1 or 3 channels (3: judged on its
/// luma), not empty; `options` in the ranges PreprocessOptions::validate allows.
/// Throws FormatError / ConfigError otherwise.
RoiBox roi_box(const cv::Mat& image, const RoiCropOptions& options);

/// CLAHE for a 16-bit image with the clip limit meaning what it means for 8-bit images (see
/// kernels.cpp). Accepts CV_16UC1, not empty; clip_limit > 0; 1 <= grid <= min(rows, cols).
/// Returns CV_16UC1 of the same size. Throws FormatError / ConfigError otherwise.
cv::Mat clahe16(const cv::Mat& image, double clip_limit, int grid);

/// `crop` of `image`, resized to fit an options.size square (the longer side exactly) with black
/// padding centring it; same type as `image`. Records the crop box (grown by "area_fast", see
/// kernels.cpp), the scale and the padding in `geometry` (its original size is left alone).
/// Accepts any type OpenCV resizes, not empty, `crop` non-empty and inside it; options.size
/// 1..4096 and a known interpolation. Throws FormatError / ConfigError otherwise.
cv::Mat letterbox(const cv::Mat& image, cv::Rect crop, const LetterboxOptions& options, Geometry& geometry);

}  // namespace medload::loader::detail
