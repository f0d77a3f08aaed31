#include "medload/loader/preprocess/preprocess.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "medload/core/error.h"

namespace medload::loader {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t elapsed_ns(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count();
}

int cv_depth(PixelType type) {
  switch (type) {
    case PixelType::kUInt8:
      return CV_8U;
    case PixelType::kUInt16:
      return CV_16U;
    case PixelType::kInt16:
      return CV_16S;
    case PixelType::kFloat32:
      return CV_32F;
  }
  return CV_8U;
}

std::string name_of(const DecodedImage& image) {
  return image.source_path.empty() ? std::string("<unnamed image>") : image.source_path;
}

// ---------------------------------------------------------------------------------------------
// The steps: each one kernel call (kernels.h) or an OpenCV call, timed into `t`

// cv::Mat over the image's bytes: read only, never written through.
cv::Mat input_of(const DecodedImage& image) {
  return cv::Mat(image.height, image.width, CV_MAKETYPE(cv_depth(image.type), image.channels),
                 const_cast<std::uint8_t*>(image.pixels.data()));
}

cv::Mat grayscale_step(const cv::Mat& input, const GrayscaleOptions& o, StageTimes& t) {
  const auto start = Clock::now();
  cv::Mat src = input;
  if (src.channels() == 3 && src.depth() == CV_16S) {
    // cvtColor takes no int16: go through float32, which the intensity step handles exactly.
    src.convertTo(src, CV_32F);
  }
  if (src.channels() == 3 && o.enabled) {
    cv::Mat gray;
    cv::cvtColor(src, gray, cv::COLOR_BGR2GRAY);
    src = gray;
    t.grayscale_ns = elapsed_ns(start);
  }
  return src;
}

// int16 values offset to uint16 (-32768 -> 0); other images as they are.
cv::Mat unsigned_values(const cv::Mat& src) {
  if (src.depth() != CV_16S) return src;
  cv::Mat dst;
  src.convertTo(dst, CV_16U, 1.0, 32768.0);
  return dst;
}

// Onto the working range (8-bit stays 8-bit, deeper becomes 16-bit): the DICOM window when there
// is a usable one, else the percentile clip for deeper images, else the values as they are.
cv::Mat intensity_step(const cv::Mat& src, const DecodedImage& image, const IntensityOptions& o,
                       bool& windowed, StageTimes& t) {
  const auto start = Clock::now();
  cv::Mat out;
  if (!o.enabled) {
    if (src.depth() == CV_32F) {
      throw ConfigError("preprocess.intensity.enabled is false, but " + name_of(image) +
                        " is float32 and needs the intensity step (window or percentiles)");
    }
    out = unsigned_values(src);
  } else if (o.use_dicom_window && image.voi && detail::voi_usable(*image.voi)) {
    windowed = true;
    out = detail::apply_voi(src, *image.voi, image.was_monochrome1, image.monochrome1_mirror);
  } else if (src.depth() != CV_8U && o.percentile_clip) {
    out = detail::stretch_to_16bit(
        src, detail::percentile_range(src, o.low_percentile, o.high_percentile, name_of(image)));
  } else if (src.depth() == CV_32F) {
    throw ConfigError("preprocess.intensity.percentile_clip is false and " + name_of(image) +
                      " is float32 without a DICOM window: it has no integer range to keep");
  } else {
    out = unsigned_values(src);
  }
  t.intensity_ns = elapsed_ns(start);
  return out;
}

// The crop box (the whole image when the step is off or falls back).
cv::Rect crop_step(const cv::Mat& work, const RoiCropOptions& o, bool& fallback, StageTimes& t) {
  if (!o.enabled) return cv::Rect(0, 0, work.cols, work.rows);
  const auto start = Clock::now();
  const detail::RoiBox roi = detail::roi_box(work, o);
  fallback = roi.fallback;
  t.roi_crop_ns = elapsed_ns(start);
  return roi.box;
}

// `box` of `work`, letterboxed when the step is on; the crop lands in `g` either way.
cv::Mat letterbox_step(const cv::Mat& work, const cv::Rect& box, const LetterboxOptions& o, Geometry& g,
                       StageTimes& t) {
  if (!o.enabled) {
    g.crop_x = box.x;
    g.crop_y = box.y;
    g.crop_w = box.width;
    g.crop_h = box.height;
    return work(box);
  }
  const auto start = Clock::now();
  cv::Mat out = detail::letterbox(work, box, o, g);
  t.letterbox_ns = elapsed_ns(start);
  return out;
}

// CLAHE: 8-bit through OpenCV's, 16-bit through clahe16; colour works on the luma of YCrCb.
cv::Mat clahe_step(const cv::Mat& roi, const ClaheOptions& o, StageTimes& t) {
  if (!o.enabled) return roi;
  const auto start = Clock::now();
  // No more tiles than pixels per side (small images with the letterbox off); the border
  // that rounds the image up to whole tiles must be smaller than the image.
  const int grid = std::max(1, std::min({o.tile_grid, roi.rows, roi.cols}));
  auto clahe = cv::createCLAHE(o.clip_limit, cv::Size(grid, grid));
  const auto apply = [&](const cv::Mat& plane, cv::Mat& out) {
    if (plane.depth() == CV_16U) {
      out = detail::clahe16(plane, o.clip_limit, grid);
    } else {
      clahe->apply(plane, out);
    }
  };
  cv::Mat result;
  if (roi.channels() == 1) {
    apply(roi, result);
  } else {
    cv::Mat ycrcb;
    cv::cvtColor(roi, ycrcb, cv::COLOR_BGR2YCrCb);
    std::vector<cv::Mat> planes;
    cv::split(ycrcb, planes);
    cv::Mat y;
    apply(planes[0], y);
    planes[0] = y;
    cv::merge(planes, ycrcb);
    cv::cvtColor(ycrcb, result, cv::COLOR_YCrCb2BGR);
  }
  t.clahe_ns = elapsed_ns(start);
  return result;
}

// Bilateral filter: 8-bit directly; 16-bit through float32 in 0..255 units, back to 16 bits.
cv::Mat bilateral_step(const cv::Mat& roi, const BilateralOptions& b, StageTimes& t) {
  if (!b.enabled) return roi;
  const auto start = Clock::now();
  cv::Mat result;
  if (roi.depth() == CV_8U) {
    cv::bilateralFilter(roi, result, b.diameter, b.sigma_color, b.sigma_space);
  } else {
    cv::Mat f, filtered;
    roi.convertTo(f, CV_32F, 1.0 / 257.0);
    cv::bilateralFilter(f, filtered, b.diameter, b.sigma_color, b.sigma_space);
    filtered.convertTo(result, CV_16U, 257.0);
  }
  t.bilateral_ns = elapsed_ns(start);
  return result;
}

// Converts to the output dtype and copies the rows out into `out`.
void output_step(const cv::Mat& roi, PixelType dtype, PreprocessedImage& out, StageTimes& t) {
  const auto start = Clock::now();
  cv::Mat final_mat;
  if (dtype == PixelType::kUInt16 && roi.depth() == CV_8U) {
    roi.convertTo(final_mat, CV_16U, 257.0);  // 255 -> 65535: full scale stays full scale
  } else if (dtype == PixelType::kUInt8 && roi.depth() == CV_16U) {
    roi.convertTo(final_mat, CV_8U, 1.0 / 257.0);
  } else {
    final_mat = roi;
  }
  out.height = final_mat.rows;
  out.width = final_mat.cols;
  out.channels = final_mat.channels();
  out.type = dtype;
  const std::size_t row_bytes = final_mat.cols * final_mat.elemSize();
  out.pixels.resize(row_bytes * static_cast<std::size_t>(final_mat.rows));
  for (int r = 0; r < final_mat.rows; ++r) {
    std::memcpy(out.pixels.data() + row_bytes * static_cast<std::size_t>(r), final_mat.ptr(r), row_bytes);
  }
  t.output_ns = elapsed_ns(start);
}

void check_input(const DecodedImage& image) {
  if (image.height <= 0 || image.width <= 0) {
    throw FormatError("preprocess: " + name_of(image) + " is empty (" + std::to_string(image.height) + "x" +
                      std::to_string(image.width) + ")");
  }
  if (image.channels != 1 && image.channels != 3) {
    throw FormatError("preprocess: " + name_of(image) + " has " + std::to_string(image.channels) +
                      " channels; 1 or 3 are accepted");
  }
  const std::size_t expected =
      static_cast<std::size_t>(image.height) * static_cast<std::size_t>(image.width) *
      static_cast<std::size_t>(image.channels) * static_cast<std::size_t>(bytes_per_element(image.type));
  if (image.pixels.size() != expected) {
    throw FormatError("preprocess: " + name_of(image) + " has " + std::to_string(image.pixels.size()) +
                      " pixel bytes; " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                      "x" + std::to_string(image.channels) + " needs " + std::to_string(expected));
  }
}

PreprocessedImage run_chain(const DecodedImage& image, const PreprocessOptions& options, StageTimes& t) {
  PreprocessedImage out;
  out.geometry.original_height = image.height;
  out.geometry.original_width = image.width;
  const cv::Mat gray = grayscale_step(input_of(image), options.grayscale, t);
  const cv::Mat work = intensity_step(gray, image, options.intensity, out.windowed, t);
  const cv::Rect box = crop_step(work, options.roi_crop, out.roi_fallback, t);
  cv::Mat roi = letterbox_step(work, box, options.letterbox, out.geometry, t);
  roi = clahe_step(roi, options.clahe, t);
  roi = bilateral_step(roi, options.bilateral, t);
  output_step(roi, options.output_dtype, out, t);
  return out;
}

}  // namespace

PreprocessedImage preprocess(const DecodedImage& image, const PreprocessOptions& options, StageTimes* times) {
  options.validate();
  check_input(image);
  const auto start = Clock::now();
  StageTimes t;
  PreprocessedImage out;
  try {
    out = run_chain(image, options, t);
  } catch (const cv::Exception& e) {
    throw FormatError("preprocess: OpenCV failed on " + name_of(image) + ": " + e.what());
  }
  t.total_ns = elapsed_ns(start);
  if (times) *times = t;
  return out;
}

}  // namespace medload::loader
