#include "medload/loader/preprocess/preprocess.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "medload/core/error.h"

namespace medload::loader {

// ---------------------------------------------------------------------------------------------
// Geometry and StageTimes

void Geometry::map_to_original(double x, double y, double& x_orig, double& y_orig) const {
  x_orig = crop_x + (x - pad_left) / scale;
  y_orig = crop_y + (y - pad_top) / scale;
}

void Geometry::map_to_output(double x_orig, double y_orig, double& x, double& y) const {
  x = (x_orig - crop_x) * scale + pad_left;
  y = (y_orig - crop_y) * scale + pad_top;
}

nlohmann::json Geometry::to_json() const {
  return {{"original_height", original_height},
          {"original_width", original_width},
          {"crop_x", crop_x},
          {"crop_y", crop_y},
          {"crop_w", crop_w},
          {"crop_h", crop_h},
          {"scale", scale},
          {"pad_top", pad_top},
          {"pad_left", pad_left},
          {"pad_bottom", pad_bottom},
          {"pad_right", pad_right}};
}

StageTimes& StageTimes::operator+=(const StageTimes& other) {
  grayscale_ns += other.grayscale_ns;
  intensity_ns += other.intensity_ns;
  roi_crop_ns += other.roi_crop_ns;
  letterbox_ns += other.letterbox_ns;
  clahe_ns += other.clahe_ns;
  bilateral_ns += other.bilateral_ns;
  output_ns += other.output_ns;
  total_ns += other.total_ns;
  return *this;
}

nlohmann::json StageTimes::to_json() const {
  return {{"grayscale_ns", grayscale_ns}, {"intensity_ns", intensity_ns}, {"roi_crop_ns", roi_crop_ns},
          {"letterbox_ns", letterbox_ns}, {"clahe_ns", clahe_ns},         {"bilateral_ns", bilateral_ns},
          {"output_ns", output_ns},       {"total_ns", total_ns}};
}

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
// Intensity

// A DICOM VOI transformation onto 0..ymax (PS3.3 C.11.2), then, for a MONOCHROME1 frame, the
// inversion: the frame's pixels were inverted at decoding (x = M - v), so the function is
// applied to the Modality LUT's output v = M - x and its result inverted, in the order of the
// standard's display pipeline (Modality LUT, VOI LUT, Presentation LUT).
struct Voi {
  const VoiTransform& t;
  double ymax;
  bool invert;
  double mirror;

  double operator()(double x) const {
    const double v = invert ? mirror - x : x;
    const double y = display(v);
    return invert ? ymax - y : y;
  }

  double display(double v) const {
    switch (t.function) {
      case VoiTransform::Function::kLinear: {  // C.11.2.1.2.1; width >= 1
        const double c = t.center - 0.5;
        const double w = t.width - 1.0;
        if (v <= c - w / 2) return 0.0;
        if (v > c + w / 2) return ymax;
        return ((v - c) / w + 0.5) * ymax;  // w > 0 here: the branch is non-empty
      }
      case VoiTransform::Function::kLinearExact:  // C.11.2.1.3.2; width > 0
        if (v <= t.center - t.width / 2) return 0.0;
        if (v > t.center + t.width / 2) return ymax;
        return ((v - t.center) / t.width + 0.5) * ymax;
      case VoiTransform::Function::kSigmoid:  // C.11.2.1.3.1
        return ymax / (1.0 + std::exp(-4.0 * (v - t.center) / t.width));
      case VoiTransform::Function::kTable: {  // C.11.2.1.1
        const double last = static_cast<double>(t.table.size() - 1);
        const double i = std::clamp(std::round(v - t.first_mapped), 0.0, last);
        return t.table[static_cast<std::size_t>(i)] / (std::ldexp(1.0, t.table_bits) - 1) * ymax;
      }
    }
    return 0.0;
  }
};

// Whether `voi` can be applied: finite parameters in their ranges, a non-empty table.
bool usable(const VoiTransform& voi) {
  switch (voi.function) {
    case VoiTransform::Function::kLinear:
      return std::isfinite(voi.center) && std::isfinite(voi.width) && voi.width >= 1.0;
    case VoiTransform::Function::kLinearExact:
    case VoiTransform::Function::kSigmoid:
      return std::isfinite(voi.center) && std::isfinite(voi.width) && voi.width > 0.0;
    case VoiTransform::Function::kTable:
      return !voi.table.empty() && voi.table_bits >= 1 && voi.table_bits <= 16 && std::isfinite(voi.first_mapped);
  }
  return false;
}

// Linear stretch of [lo, hi] onto 0..ymax with clipping; a constant image maps to 0.
struct Stretch {
  double lo, hi, ymax;
  double operator()(double x) const {
    if (!(hi > lo)) return 0.0;
    const double t = (x - lo) / (hi - lo);
    return std::clamp(t, 0.0, 1.0) * ymax;
  }
};

// Exact nearest-rank percentiles of integer data through a histogram: the value at rank
// floor(low/100 * (n-1)) and the value at rank ceil(high/100 * (n-1)) of the sorted samples.
// `offset` turns a value into a bin (32768 for int16).
template <typename T>
void histogram_percentiles(const cv::Mat& m, int bins, int offset, double low, double high, double& lo_value,
                           double& hi_value) {
  // Two interleaved histograms: neighbouring pixels are often equal, and incrementing the same
  // counter back to back stalls on the store. 32-bit counters hold up to 4G pixels per half.
  std::vector<std::uint64_t> hist(static_cast<std::size_t>(bins), 0);
  std::vector<std::uint32_t> h0(static_cast<std::size_t>(bins), 0), h1(h0);
  std::uint64_t n = 0;
  const int row_elems = m.cols * m.channels();
  for (int r = 0; r < m.rows; ++r) {
    const T* p = m.ptr<T>(r);
    int i = 0;
    for (; i + 1 < row_elems; i += 2) {
      ++h0[static_cast<std::size_t>(p[i] + offset)];
      ++h1[static_cast<std::size_t>(p[i + 1] + offset)];
    }
    if (i < row_elems) ++h0[static_cast<std::size_t>(p[i] + offset)];
    n += static_cast<std::uint64_t>(row_elems);
  }
  for (int b = 0; b < bins; ++b) {
    hist[static_cast<std::size_t>(b)] =
        std::uint64_t{h0[static_cast<std::size_t>(b)]} + h1[static_cast<std::size_t>(b)];
  }
  const auto lo_rank = static_cast<std::uint64_t>(std::floor(low / 100.0 * static_cast<double>(n - 1)));
  const auto hi_rank = static_cast<std::uint64_t>(std::ceil(high / 100.0 * static_cast<double>(n - 1)));
  std::uint64_t cumulative = 0;
  bool lo_found = false;
  for (int b = 0; b < bins; ++b) {
    cumulative += hist[static_cast<std::size_t>(b)];
    if (!lo_found && cumulative > lo_rank) {
      lo_value = b - offset;
      lo_found = true;
    }
    if (cumulative > hi_rank) {
      hi_value = b - offset;
      return;
    }
  }
  hi_value = bins - 1 - offset;
}

void float_percentiles(const cv::Mat& m, double low, double high, double& lo_value, double& hi_value,
                       const std::string& name) {
  std::vector<float> values;
  values.reserve(m.total() * static_cast<std::size_t>(m.channels()));
  const int row_elems = m.cols * m.channels();
  for (int r = 0; r < m.rows; ++r) {
    const float* p = m.ptr<float>(r);
    for (int i = 0; i < row_elems; ++i) {
      if (std::isfinite(p[i])) values.push_back(p[i]);
    }
  }
  if (values.empty()) throw FormatError("preprocess: " + name + " has no finite pixel values");
  const std::size_t n = values.size();
  const auto lo_rank = static_cast<std::size_t>(std::floor(low / 100.0 * static_cast<double>(n - 1)));
  const auto hi_rank = static_cast<std::size_t>(std::ceil(high / 100.0 * static_cast<double>(n - 1)));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(hi_rank), values.end());
  hi_value = values[hi_rank];
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lo_rank),
                   values.begin() + static_cast<std::ptrdiff_t>(hi_rank));
  lo_value = values[lo_rank];
}

// Applies `f` (value -> 0..ymax) to every element of an integer image through a lookup table
// over the input's value domain; `Out` is uint8_t or uint16_t.
template <typename In, typename Out, typename F>
cv::Mat apply_lut(const cv::Mat& src, int bins, int offset, F f) {
  std::vector<Out> lut(static_cast<std::size_t>(bins));
  for (int b = 0; b < bins; ++b) {
    lut[static_cast<std::size_t>(b)] = cv::saturate_cast<Out>(f(static_cast<double>(b - offset)));
  }
  cv::Mat dst(src.rows, src.cols, CV_MAKETYPE(cv::DataType<Out>::depth, src.channels()));
  const int row_elems = src.cols * src.channels();
  for (int r = 0; r < src.rows; ++r) {
    const In* p = src.ptr<In>(r);
    Out* q = dst.ptr<Out>(r);
    for (int i = 0; i < row_elems; ++i) q[i] = lut[static_cast<std::size_t>(p[i] + offset)];
  }
  return dst;
}

template <typename F>
cv::Mat apply_float(const cv::Mat& src, F f) {
  cv::Mat dst(src.rows, src.cols, CV_MAKETYPE(CV_16U, src.channels()));
  const int row_elems = src.cols * src.channels();
  for (int r = 0; r < src.rows; ++r) {
    const float* p = src.ptr<float>(r);
    std::uint16_t* q = dst.ptr<std::uint16_t>(r);
    // NaN maps to 0 (saturate_cast of NaN is not defined to be anything useful).
    for (int i = 0; i < row_elems; ++i) {
      q[i] = std::isnan(p[i]) ? std::uint16_t{0} : cv::saturate_cast<std::uint16_t>(f(p[i]));
    }
  }
  return dst;
}

// Maps `src` with `f` onto the working range: 8-bit input stays 8-bit, everything else
// becomes 16-bit.
template <typename F>
cv::Mat map_values(const cv::Mat& src, F f8, F f16) {
  switch (src.depth()) {
    case CV_8U:
      return apply_lut<std::uint8_t, std::uint8_t>(src, 256, 0, f8);
    case CV_16U:
      return apply_lut<std::uint16_t, std::uint16_t>(src, 65536, 0, f16);
    case CV_16S:
      return apply_lut<std::int16_t, std::uint16_t>(src, 65536, 32768, f16);
    default:
      return apply_float(src, f16);
  }
}

cv::Mat intensity_step(const cv::Mat& src, const DecodedImage& image, const IntensityOptions& o,
                       bool& windowed) {
  const bool deep = src.depth() != CV_8U;
  if (!o.enabled) {
    if (src.depth() == CV_32F) {
      throw ConfigError("preprocess.intensity.enabled is false, but " + name_of(image) +
                        " is float32 and needs the intensity step (window or percentiles)");
    }
    if (src.depth() == CV_16S) {
      cv::Mat dst;
      src.convertTo(dst, CV_16U, 1.0, 32768.0);
      return dst;
    }
    return src;
  }
  if (o.use_dicom_window && image.voi && usable(*image.voi)) {
    windowed = true;
    const Voi w8{*image.voi, 255.0, image.was_monochrome1, image.monochrome1_mirror};
    const Voi w16{*image.voi, 65535.0, image.was_monochrome1, image.monochrome1_mirror};
    return map_values(src, w8, w16);
  }
  if (deep && o.percentile_clip) {
    double lo = 0, hi = 0;
    switch (src.depth()) {
      case CV_16U:
        histogram_percentiles<std::uint16_t>(src, 65536, 0, o.low_percentile, o.high_percentile, lo, hi);
        break;
      case CV_16S:
        histogram_percentiles<std::int16_t>(src, 65536, 32768, o.low_percentile, o.high_percentile, lo, hi);
        break;
      default:
        float_percentiles(src, o.low_percentile, o.high_percentile, lo, hi, name_of(image));
    }
    const Stretch s{lo, hi, 65535.0};
    return map_values(src, s, s);
  }
  if (src.depth() == CV_32F) {
    throw ConfigError("preprocess.intensity.percentile_clip is false and " + name_of(image) +
                      " is float32 without a DICOM window: it has no integer range to keep");
  }
  if (src.depth() == CV_16S) {
    cv::Mat dst;
    src.convertTo(dst, CV_16U, 1.0, 32768.0);
    return dst;
  }
  return src;
}

// ---------------------------------------------------------------------------------------------
// ROI crop

struct Segment {
  int begin, end;      // rows [begin, end)
  std::uint64_t mass;  // foreground pixels in it
};

// For integer pixels, v > threshold  <=>  v > floor(threshold): comparing in T keeps the loops
// vectorisable (a double comparison per pixel costs several times more at 2048 x 2048).
template <typename T>
void row_counts(const cv::Mat& gray, T threshold, std::vector<int>& counts) {
  counts.assign(static_cast<std::size_t>(gray.rows), 0);
  for (int r = 0; r < gray.rows; ++r) {
    const T* p = gray.ptr<T>(r);
    int c = 0;
    for (int i = 0; i < gray.cols; ++i) c += p[i] > threshold;
    counts[static_cast<std::size_t>(r)] = c;
  }
}

template <typename T>
void col_counts(const cv::Mat& gray, int top, int bottom, T threshold, std::vector<int>& counts) {
  counts.assign(static_cast<std::size_t>(gray.cols), 0);
  int* c = counts.data();
  for (int r = top; r < bottom; ++r) {
    const T* p = gray.ptr<T>(r);
    for (int i = 0; i < gray.cols; ++i) c[i] += p[i] > threshold;
  }
}

// Returns the crop box, or the whole image with `fallback` set.
cv::Rect roi_box(const cv::Mat& work, const RoiCropOptions& o, bool& fallback) {
  const cv::Rect whole(0, 0, work.cols, work.rows);
  cv::Mat gray = work;
  if (work.channels() == 3) cv::cvtColor(work, gray, cv::COLOR_BGR2GRAY);
  double mn = 0, mx = 0;
  cv::minMaxLoc(gray, &mn, &mx);
  if (!(mx > mn)) {
    fallback = true;
    return whole;
  }
  const double threshold = mn + o.threshold * (mx - mn);

  // A row holds content when at least 0.5% of its pixels (and at least one) are foreground:
  // isolated noise pixels do not stop a border from being recognised.
  std::vector<int> rows;
  const auto t8 = static_cast<std::uint8_t>(std::min(255.0, std::floor(threshold)));
  const auto t16 = static_cast<std::uint16_t>(std::min(65535.0, std::floor(threshold)));
  if (gray.depth() == CV_8U)
    row_counts<std::uint8_t>(gray, t8, rows);
  else
    row_counts<std::uint16_t>(gray, t16, rows);
  const int row_min = std::max(1, static_cast<int>(std::ceil(0.005 * gray.cols)));

  std::vector<Segment> segments;
  for (int r = 0; r < gray.rows; ++r) {
    if (rows[static_cast<std::size_t>(r)] < row_min) continue;
    if (segments.empty() || segments.back().end != r) segments.push_back({r, r, 0});
    segments.back().end = r + 1;
    segments.back().mass += static_cast<std::uint64_t>(rows[static_cast<std::size_t>(r)]);
  }
  if (segments.empty()) {
    fallback = true;
    return whole;
  }
  std::size_t main = 0;
  for (std::size_t i = 1; i < segments.size(); ++i) {
    if (segments[i].mass > segments[main].mass) main = i;
  }
  int top = segments[main].begin;
  int bottom = segments[main].end;
  const double band_limit = o.max_text_band_fraction * gray.rows;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i == main) continue;
    // A thin band separated from the anatomy by dark rows is burned-in text: leave it out.
    const bool text = o.remove_text_bands && (segments[i].end - segments[i].begin) <= band_limit;
    if (text) continue;
    top = std::min(top, segments[i].begin);
    bottom = std::max(bottom, segments[i].end);
  }

  std::vector<int> cols;
  if (gray.depth() == CV_8U)
    col_counts<std::uint8_t>(gray, top, bottom, t8, cols);
  else
    col_counts<std::uint16_t>(gray, top, bottom, t16, cols);
  const int col_min = std::max(1, static_cast<int>(std::ceil(0.005 * (bottom - top))));
  int left = -1, right = -1;
  for (int c = 0; c < gray.cols; ++c) {
    if (cols[static_cast<std::size_t>(c)] >= col_min) {
      if (left < 0) left = c;
      right = c + 1;
    }
  }
  if (left < 0) {
    fallback = true;
    return whole;
  }
  const int x0 = std::max(0, left - o.margin);
  const int y0 = std::max(0, top - o.margin);
  const int x1 = std::min(gray.cols, right + o.margin);
  const int y1 = std::min(gray.rows, bottom + o.margin);
  const cv::Rect box(x0, y0, x1 - x0, y1 - y0);
  const double kept = static_cast<double>(box.area()) / static_cast<double>(whole.area());
  if (1.0 - kept > o.max_crop_fraction) {
    fallback = true;
    return whole;
  }
  return box;
}

// CLAHE for 16-bit images with the clip limit meaning what it means for 8-bit images.
// OpenCV's CV_16U CLAHE uses 65536-bin tile histograms and clips at
// max(clip_limit * tile_area / 65536, 1) = 1 count per bin for any tile under 2^16 pixels, so
// clip_limit has no effect and the result is close to the identity (measured: the same output
// for clip limits 1 to 40). Here a 16-bit value v sits at t = v / 257 on the 8-bit scale; the
// tile histograms have 256 bins (round(t)), clipped and redistributed exactly as OpenCV does for
// 8-bit images, and each tile's mapping is the 8-bit CLAHE mapping at the integers, linearly
// interpolated in between. So 257 * b maps as 8-bit CLAHE maps b, and the values between keep
// their 16-bit precision. Tiles and the bilinear blend of the four nearest tiles follow OpenCV.
cv::Mat clahe16(const cv::Mat& src, double clip_limit, int grid) {
  CV_Assert(src.type() == CV_16UC1);
  constexpr int kBins = 256;
  cv::Mat padded = src;
  if (src.cols % grid != 0 || src.rows % grid != 0) {
    cv::copyMakeBorder(src, padded, 0, (grid - src.rows % grid) % grid, 0, (grid - src.cols % grid) % grid,
                       cv::BORDER_REFLECT_101);
  }
  const int tw = padded.cols / grid, th = padded.rows / grid;
  const int area = tw * th;
  const int clip = std::max(static_cast<int>(clip_limit * area / kBins), 1);
  // Per tile: at[b] = the mapping of level b (clipped CDF up to and including bin b), rise[b] =
  // at[b + 1] - at[b]; both in 0..65535 output units.
  std::vector<float> at(static_cast<std::size_t>(grid) * grid * kBins);
  std::vector<float> rise(at.size(), 0.0f);
  const float scale = 65535.0f / static_cast<float>(area);
  for (int ty = 0; ty < grid; ++ty) {
    for (int tx = 0; tx < grid; ++tx) {
      int hist[kBins] = {};
      for (int y = ty * th; y < (ty + 1) * th; ++y) {
        const std::uint16_t* p = padded.ptr<std::uint16_t>(y) + tx * tw;
        for (int x = 0; x < tw; ++x) ++hist[(p[x] + 128) / 257];
      }
      int excess = 0;
      for (int& h : hist) {
        if (h > clip) {
          excess += h - clip;
          h = clip;
        }
      }
      const int batch = excess / kBins;
      int residual = excess - batch * kBins;
      for (int& h : hist) h += batch;
      if (residual > 0) {
        const int step = std::max(kBins / residual, 1);
        for (int b = 0; b < kBins && residual > 0; b += step, --residual) ++hist[b];
      }
      float* a = at.data() + (static_cast<std::size_t>(ty) * grid + tx) * kBins;
      float* r = rise.data() + (static_cast<std::size_t>(ty) * grid + tx) * kBins;
      int sum = 0;
      for (int b = 0; b < kBins; ++b) {
        sum += hist[b];
        a[b] = static_cast<float>(sum) * scale;
        if (b + 1 < kBins) r[b] = static_cast<float>(hist[b + 1]) * scale;
      }
    }
  }
  cv::Mat dst(src.size(), CV_16UC1);
  const float inv_tw = 1.0f / static_cast<float>(tw), inv_th = 1.0f / static_cast<float>(th);
  auto map = [&](int tile, int b, float f) {
    const std::size_t i = static_cast<std::size_t>(tile) * kBins + static_cast<std::size_t>(b);
    return at[i] + rise[i] * f;
  };
  for (int y = 0; y < src.rows; ++y) {
    const float tyf = static_cast<float>(y) * inv_th - 0.5f;
    int ty1 = static_cast<int>(std::floor(tyf));
    const float ya = tyf - static_cast<float>(ty1);
    const int ty2 = std::min(ty1 + 1, grid - 1);
    ty1 = std::max(ty1, 0);
    const std::uint16_t* p = src.ptr<std::uint16_t>(y);
    std::uint16_t* q = dst.ptr<std::uint16_t>(y);
    for (int x = 0; x < src.cols; ++x) {
      const float txf = static_cast<float>(x) * inv_tw - 0.5f;
      int tx1 = static_cast<int>(std::floor(txf));
      const float xa = txf - static_cast<float>(tx1);
      const int tx2 = std::min(tx1 + 1, grid - 1);
      tx1 = std::max(tx1, 0);
      const float t = static_cast<float>(p[x]) * (1.0f / 257.0f);
      const int b = std::min(static_cast<int>(t), kBins - 2);
      const float f = t - static_cast<float>(b);
      const float top = map(ty1 * grid + tx1, b, f) * (1.0f - xa) + map(ty1 * grid + tx2, b, f) * xa;
      const float bottom = map(ty2 * grid + tx1, b, f) * (1.0f - xa) + map(ty2 * grid + tx2, b, f) * xa;
      q[x] = cv::saturate_cast<std::uint16_t>(top * (1.0f - ya) + bottom * ya);
    }
  }
  return dst;
}

int interpolation_flag(const std::string& name) {  // "area" and "area_fast" are INTER_AREA
  if (name == "linear") return cv::INTER_LINEAR;
  if (name == "cubic") return cv::INTER_CUBIC;
  return cv::INTER_AREA;
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
  Geometry& g = out.geometry;
  g.original_height = image.height;
  g.original_width = image.width;

  // cv::Mat over the caller's bytes: read only, never written through.
  const cv::Mat input(image.height, image.width, CV_MAKETYPE(cv_depth(image.type), image.channels),
                      const_cast<std::uint8_t*>(image.pixels.data()));

  // 1. grayscale
  auto start = Clock::now();
  cv::Mat src = input;
  if (src.channels() == 3 && src.depth() == CV_16S) {
    // cvtColor takes no int16: go through float32, which the intensity step handles exactly.
    src.convertTo(src, CV_32F);
  }
  if (src.channels() == 3 && options.grayscale.enabled) {
    cv::Mat gray;
    cv::cvtColor(src, gray, cv::COLOR_BGR2GRAY);
    src = gray;
    t.grayscale_ns = elapsed_ns(start);
  }

  // 2. intensity
  start = Clock::now();
  cv::Mat work = intensity_step(src, image, options.intensity, out.windowed);
  t.intensity_ns = elapsed_ns(start);

  // 3. ROI crop
  cv::Rect box(0, 0, work.cols, work.rows);
  if (options.roi_crop.enabled) {
    start = Clock::now();
    box = roi_box(work, options.roi_crop, out.roi_fallback);
    t.roi_crop_ns = elapsed_ns(start);
  }
  g.crop_x = box.x;
  g.crop_y = box.y;
  g.crop_w = box.width;
  g.crop_h = box.height;
  cv::Mat roi = work(box);

  // 4. letterbox: resize straight into the centre of a black square (no separate pad copy).
  if (options.letterbox.enabled) {
    start = Clock::now();
    const int size = options.letterbox.size;
    const int flag = interpolation_flag(options.letterbox.interpolation);
    // "area_fast": area downscaling by a non-integer factor is OpenCV's slow path (~2 ns per
    // source pixel); by an integer factor k it is a plain k x k box average, ~5x faster. So
    // when the box can grow to multiples of k = floor(longer / size) inside the image, it does
    // (the grown box is what is recorded: a few pixels of extra margin), is box-averaged by k,
    // and the remainder (a factor between 1 and 2) is area-resized. The two box filters blur a
    // little more than one exact area resize (up to about one output pixel).
    const bool fast = options.letterbox.interpolation == "area_fast";
    const int k = std::max(box.width, box.height) / size;
    cv::Mat source = roi;
    if (fast && k >= 2) {
      const int w2 = (box.width + k - 1) / k * k;
      const int h2 = (box.height + k - 1) / k * k;
      if (w2 <= work.cols && h2 <= work.rows) {
        const int x2 = std::clamp(box.x - (w2 - box.width) / 2, 0, work.cols - w2);
        const int y2 = std::clamp(box.y - (h2 - box.height) / 2, 0, work.rows - h2);
        box = cv::Rect(x2, y2, w2, h2);
        g.crop_x = box.x;
        g.crop_y = box.y;
        g.crop_w = box.width;
        g.crop_h = box.height;
        cv::resize(work(box), source, cv::Size(w2 / k, h2 / k), 0, 0, cv::INTER_AREA);
      }
    }
    const int longer = std::max(box.width, box.height);
    g.scale = static_cast<double>(size) / longer;
    const int new_w =
        box.width == longer ? size : std::clamp(static_cast<int>(std::lround(box.width * g.scale)), 1, size);
    const int new_h = box.height == longer
                          ? size
                          : std::clamp(static_cast<int>(std::lround(box.height * g.scale)), 1, size);
    g.pad_left = (size - new_w) / 2;
    g.pad_right = size - new_w - g.pad_left;
    g.pad_top = (size - new_h) / 2;
    g.pad_bottom = size - new_h - g.pad_top;
    cv::Mat square = cv::Mat::zeros(size, size, roi.type());
    cv::Mat inner = square(cv::Rect(g.pad_left, g.pad_top, new_w, new_h));
    cv::resize(source, inner, inner.size(), 0, 0, flag);
    roi = square;
    t.letterbox_ns = elapsed_ns(start);
  }

  // 5a. CLAHE (8-bit: OpenCV's; 16-bit: clahe16 above; colour works on the luma of YCrCb).
  if (options.clahe.enabled) {
    start = Clock::now();
    // No more tiles than pixels per side (small images with the letterbox off); the border
    // that rounds the image up to whole tiles must be smaller than the image.
    const int grid = std::max(1, std::min({options.clahe.tile_grid, roi.rows, roi.cols}));
    auto clahe = cv::createCLAHE(options.clahe.clip_limit, cv::Size(grid, grid));
    const auto apply = [&](const cv::Mat& plane, cv::Mat& out) {
      if (plane.depth() == CV_16U) {
        out = clahe16(plane, options.clahe.clip_limit, grid);
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
    roi = result;
    t.clahe_ns = elapsed_ns(start);
  }

  // 5b. bilateral (8-bit directly; 16-bit through float32 in 0..255 units, back to 16 bits).
  if (options.bilateral.enabled) {
    start = Clock::now();
    const auto& b = options.bilateral;
    cv::Mat result;
    if (roi.depth() == CV_8U) {
      cv::bilateralFilter(roi, result, b.diameter, b.sigma_color, b.sigma_space);
    } else {
      cv::Mat f, filtered;
      roi.convertTo(f, CV_32F, 1.0 / 257.0);
      cv::bilateralFilter(f, filtered, b.diameter, b.sigma_color, b.sigma_space);
      filtered.convertTo(result, CV_16U, 257.0);
    }
    roi = result;
    t.bilateral_ns = elapsed_ns(start);
  }

  // 6. output dtype
  start = Clock::now();
  cv::Mat final_mat;
  if (options.output_dtype == PixelType::kUInt16 && roi.depth() == CV_8U) {
    roi.convertTo(final_mat, CV_16U, 257.0);  // 255 -> 65535: full scale stays full scale
  } else if (options.output_dtype == PixelType::kUInt8 && roi.depth() == CV_16U) {
    roi.convertTo(final_mat, CV_8U, 1.0 / 257.0);
  } else {
    final_mat = roi;
  }
  out.height = final_mat.rows;
  out.width = final_mat.cols;
  out.channels = final_mat.channels();
  out.type = options.output_dtype;
  const std::size_t row_bytes = final_mat.cols * final_mat.elemSize();
  out.pixels.resize(row_bytes * static_cast<std::size_t>(final_mat.rows));
  for (int r = 0; r < final_mat.rows; ++r) {
    std::memcpy(out.pixels.data() + row_bytes * static_cast<std::size_t>(r), final_mat.ptr(r), row_bytes);
  }
  t.output_ns = elapsed_ns(start);
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
