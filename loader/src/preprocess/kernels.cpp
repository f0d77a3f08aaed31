#include "kernels.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "medload/core/error.h"

namespace medload::loader::detail {

namespace {

std::string shape_of(const cv::Mat& m) {
  return std::to_string(m.rows) + "x" + std::to_string(m.cols) + " " + cv::typeToString(m.type());
}

// Throws FormatError unless `m` is non-empty with one of `depths` (and, when given, 1 or 3
// channels).
void require_image(const char* kernel, const cv::Mat& m, std::initializer_list<int> depths,
                   bool gray_or_bgr) {
  const bool depth_ok = std::find(depths.begin(), depths.end(), m.depth()) != depths.end();
  const bool channels_ok = !gray_or_bgr || m.channels() == 1 || m.channels() == 3;
  if (m.empty() || !depth_ok || !channels_ok) {
    throw FormatError(std::string(kernel) + ": cannot take a " + (m.empty() ? "empty" : shape_of(m)) +
                      " image");
  }
}

// ---------------------------------------------------------------------------------------------
// Value mappings

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

// Linear stretch of [lo, hi] onto 0..ymax with clipping; a constant image maps to 0.
struct Stretch {
  double lo, hi, ymax;
  double operator()(double x) const {
    if (!(hi > lo)) return 0.0;
    const double t = (x - lo) / (hi - lo);
    return std::clamp(t, 0.0, 1.0) * ymax;
  }
};

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

// Maps `src` with `f8` (8-bit input, onto 0..255) or `f16` (anything else, onto 0..65535): 8-bit
// input stays 8-bit, everything else becomes 16-bit.
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

// ---------------------------------------------------------------------------------------------
// Percentiles

// Exact nearest-rank percentiles of integer data through a histogram (see percentile_range).
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

// ---------------------------------------------------------------------------------------------
// ROI box

struct Segment {
  int begin, end;      // rows [begin, end)
  std::uint64_t mass;  // foreground pixels in it
};

// A gray image and its foreground threshold, in each integer type: for integer pixels,
// v > threshold  <=>  v > floor(threshold), and comparing in the pixel type keeps the loops
// vectorisable (a double comparison per pixel costs several times more at 2048 x 2048).
struct Foreground {
  cv::Mat gray;
  std::uint8_t t8;
  std::uint16_t t16;
};

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

// The runs of rows that hold content: at least 0.5% of their pixels (and at least one) are
// foreground, so isolated noise pixels do not stop a border from being recognised.
std::vector<Segment> content_rows(const Foreground& fg) {
  const cv::Mat& gray = fg.gray;
  std::vector<int> rows;
  if (gray.depth() == CV_8U)
    row_counts<std::uint8_t>(gray, fg.t8, rows);
  else
    row_counts<std::uint16_t>(gray, fg.t16, rows);
  const int row_min = std::max(1, static_cast<int>(std::ceil(0.005 * gray.cols)));
  std::vector<Segment> segments;
  for (int r = 0; r < gray.rows; ++r) {
    if (rows[static_cast<std::size_t>(r)] < row_min) continue;
    if (segments.empty() || segments.back().end != r) segments.push_back({r, r, 0});
    segments.back().end = r + 1;
    segments.back().mass += static_cast<std::uint64_t>(rows[static_cast<std::size_t>(r)]);
  }
  return segments;
}

// The rows [top, bottom) to keep: the heaviest run and every other one, except thin bands apart
// from it (burned-in text) when they are to be removed. `segments` is not empty.
std::pair<int, int> kept_rows(const std::vector<Segment>& segments, const RoiCropOptions& o, int rows) {
  std::size_t main = 0;
  for (std::size_t i = 1; i < segments.size(); ++i) {
    if (segments[i].mass > segments[main].mass) main = i;
  }
  int top = segments[main].begin;
  int bottom = segments[main].end;
  const double band_limit = o.max_text_band_fraction * rows;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i == main) continue;
    // A thin band separated from the anatomy by dark rows is burned-in text: leave it out.
    const bool text = o.remove_text_bands && (segments[i].end - segments[i].begin) <= band_limit;
    if (text) continue;
    top = std::min(top, segments[i].begin);
    bottom = std::max(bottom, segments[i].end);
  }
  return {top, bottom};
}

// The columns [left, right) with content within rows [top, bottom); left = -1 when none has.
std::pair<int, int> kept_columns(const Foreground& fg, int top, int bottom) {
  const cv::Mat& gray = fg.gray;
  std::vector<int> cols;
  if (gray.depth() == CV_8U)
    col_counts<std::uint8_t>(gray, top, bottom, fg.t8, cols);
  else
    col_counts<std::uint16_t>(gray, top, bottom, fg.t16, cols);
  const int col_min = std::max(1, static_cast<int>(std::ceil(0.005 * (bottom - top))));
  int left = -1, right = -1;
  for (int c = 0; c < gray.cols; ++c) {
    if (cols[static_cast<std::size_t>(c)] >= col_min) {
      if (left < 0) left = c;
      right = c + 1;
    }
  }
  return {left, right};
}

void check_roi_options(const RoiCropOptions& o) {
  if (!(o.threshold >= 0 && o.threshold < 1) || o.margin < 0 || !(o.max_text_band_fraction >= 0) ||
      !(o.max_crop_fraction >= 0 && o.max_crop_fraction < 1)) {
    throw ConfigError("roi_box: options out of range (threshold " + std::to_string(o.threshold) +
                      ", margin " + std::to_string(o.margin) + ", max_text_band_fraction " +
                      std::to_string(o.max_text_band_fraction) + ", max_crop_fraction " +
                      std::to_string(o.max_crop_fraction) + ")");
  }
}

// ---------------------------------------------------------------------------------------------
// CLAHE (16-bit)

constexpr int kClaheBins = 256;

// Per tile of `padded` (grid x grid tiles of tw x th): at[b] = the mapping of level b (clipped
// CDF up to and including bin b), rise[b] = at[b + 1] - at[b]; both in 0..65535 output units.
struct TileMaps {
  std::vector<float> at;
  std::vector<float> rise;
};

TileMaps tile_maps(const cv::Mat& padded, int grid, int tw, int th, double clip_limit) {
  const int area = tw * th;
  const int clip = std::max(static_cast<int>(clip_limit * area / kClaheBins), 1);
  TileMaps maps;
  maps.at.resize(static_cast<std::size_t>(grid) * grid * kClaheBins);
  maps.rise.assign(maps.at.size(), 0.0f);
  const float scale = 65535.0f / static_cast<float>(area);
  for (int ty = 0; ty < grid; ++ty) {
    for (int tx = 0; tx < grid; ++tx) {
      int hist[kClaheBins] = {};
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
      const int batch = excess / kClaheBins;
      int residual = excess - batch * kClaheBins;
      for (int& h : hist) h += batch;
      if (residual > 0) {
        const int step = std::max(kClaheBins / residual, 1);
        for (int b = 0; b < kClaheBins && residual > 0; b += step, --residual) ++hist[b];
      }
      float* a = maps.at.data() + (static_cast<std::size_t>(ty) * grid + tx) * kClaheBins;
      float* r = maps.rise.data() + (static_cast<std::size_t>(ty) * grid + tx) * kClaheBins;
      int sum = 0;
      for (int b = 0; b < kClaheBins; ++b) {
        sum += hist[b];
        a[b] = static_cast<float>(sum) * scale;
        if (b + 1 < kClaheBins) r[b] = static_cast<float>(hist[b + 1]) * scale;
      }
    }
  }
  return maps;
}

// Maps each pixel of `src` through the four nearest tiles' mappings, blended bilinearly.
cv::Mat blend_tiles(const cv::Mat& src, const TileMaps& maps, int grid, int tw, int th) {
  cv::Mat dst(src.size(), CV_16UC1);
  const float inv_tw = 1.0f / static_cast<float>(tw), inv_th = 1.0f / static_cast<float>(th);
  auto map = [&](int tile, int b, float f) {
    const std::size_t i = static_cast<std::size_t>(tile) * kClaheBins + static_cast<std::size_t>(b);
    return maps.at[i] + maps.rise[i] * f;
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
      const int b = std::min(static_cast<int>(t), kClaheBins - 2);
      const float f = t - static_cast<float>(b);
      const float top = map(ty1 * grid + tx1, b, f) * (1.0f - xa) + map(ty1 * grid + tx2, b, f) * xa;
      const float bottom = map(ty2 * grid + tx1, b, f) * (1.0f - xa) + map(ty2 * grid + tx2, b, f) * xa;
      q[x] = cv::saturate_cast<std::uint16_t>(top * (1.0f - ya) + bottom * ya);
    }
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------
// Letterbox

int interpolation_flag(const std::string& name) {  // "area" and "area_fast" are INTER_AREA
  if (name == "linear") return cv::INTER_LINEAR;
  if (name == "cubic") return cv::INTER_CUBIC;
  if (name == "area" || name == "area_fast") return cv::INTER_AREA;
  throw ConfigError("letterbox: interpolation \"" + name + "\" is none of area, area_fast, linear, cubic");
}

// "area_fast": area downscaling by a non-integer factor is OpenCV's slow path (~2 ns per source
// pixel); by an integer factor k it is a plain k x k box average, ~5x faster. So when the box can
// grow to multiples of k = floor(longer / size) inside the image, it does (the grown box is what
// is recorded: a few pixels of extra margin), is box-averaged by k into `source`, and the
// remainder (a factor between 1 and 2) is area-resized. The two box filters blur a little more
// than one exact area resize (up to about one output pixel). False when that does not apply.
bool box_average_first(const cv::Mat& image, cv::Rect& box, int size, cv::Mat& source) {
  const int k = std::max(box.width, box.height) / size;
  if (k < 2) return false;
  const int w2 = (box.width + k - 1) / k * k;
  const int h2 = (box.height + k - 1) / k * k;
  if (w2 > image.cols || h2 > image.rows) return false;
  const int x2 = std::clamp(box.x - (w2 - box.width) / 2, 0, image.cols - w2);
  const int y2 = std::clamp(box.y - (h2 - box.height) / 2, 0, image.rows - h2);
  box = cv::Rect(x2, y2, w2, h2);
  cv::resize(image(box), source, cv::Size(w2 / k, h2 / k), 0, 0, cv::INTER_AREA);
  return true;
}

}  // namespace

ValueRange percentile_range(const cv::Mat& image, double low, double high, const std::string& name) {
  require_image("percentile_range", image, {CV_16U, CV_16S, CV_32F}, false);
  if (!(low >= 0 && low <= high && high <= 100)) {
    throw ConfigError("percentile_range: percentiles " + std::to_string(low) + " and " +
                      std::to_string(high) + " are not 0 <= low <= high <= 100");
  }
  ValueRange range;
  switch (image.depth()) {
    case CV_16U:
      histogram_percentiles<std::uint16_t>(image, 65536, 0, low, high, range.lo, range.hi);
      break;
    case CV_16S:
      histogram_percentiles<std::int16_t>(image, 65536, 32768, low, high, range.lo, range.hi);
      break;
    default:
      float_percentiles(image, low, high, range.lo, range.hi, name);
  }
  return range;
}

bool voi_usable(const VoiTransform& voi) {
  switch (voi.function) {
    case VoiTransform::Function::kLinear:
      return std::isfinite(voi.center) && std::isfinite(voi.width) && voi.width >= 1.0;
    case VoiTransform::Function::kLinearExact:
    case VoiTransform::Function::kSigmoid:
      return std::isfinite(voi.center) && std::isfinite(voi.width) && voi.width > 0.0;
    case VoiTransform::Function::kTable:
      return !voi.table.empty() && voi.table_bits >= 1 && voi.table_bits <= 16 &&
             std::isfinite(voi.first_mapped);
  }
  return false;
}

cv::Mat apply_voi(const cv::Mat& image, const VoiTransform& voi, bool monochrome1, double mirror) {
  require_image("apply_voi", image, {CV_8U, CV_16U, CV_16S, CV_32F}, false);
  if (!voi_usable(voi)) {
    throw ConfigError("apply_voi: the VOI transformation is not usable (center " +
                      std::to_string(voi.center) + ", width " + std::to_string(voi.width) + ", " +
                      std::to_string(voi.table.size()) + " table entries of " +
                      std::to_string(voi.table_bits) + " bits)");
  }
  const Voi w8{voi, 255.0, monochrome1, mirror};
  const Voi w16{voi, 65535.0, monochrome1, mirror};
  return map_values(image, w8, w16);
}

cv::Mat stretch_to_16bit(const cv::Mat& image, ValueRange range) {
  require_image("stretch_to_16bit", image, {CV_16U, CV_16S, CV_32F}, false);
  const Stretch s{range.lo, range.hi, 65535.0};
  return map_values(image, s, s);
}

RoiBox roi_box(const cv::Mat& image, const RoiCropOptions& options) {
  require_image("roi_box", image, {CV_8U, CV_16U}, true);
  check_roi_options(options);
  const RoiBox whole{cv::Rect(0, 0, image.cols, image.rows), true};
  Foreground fg{image, 0, 0};
  if (image.channels() == 3) cv::cvtColor(image, fg.gray, cv::COLOR_BGR2GRAY);
  double mn = 0, mx = 0;
  cv::minMaxLoc(fg.gray, &mn, &mx);
  if (!(mx > mn)) return whole;
  const double threshold = mn + options.threshold * (mx - mn);
  fg.t8 = static_cast<std::uint8_t>(std::min(255.0, std::floor(threshold)));
  fg.t16 = static_cast<std::uint16_t>(std::min(65535.0, std::floor(threshold)));

  const std::vector<Segment> segments = content_rows(fg);
  if (segments.empty()) return whole;
  const auto [top, bottom] = kept_rows(segments, options, fg.gray.rows);
  const auto [left, right] = kept_columns(fg, top, bottom);
  if (left < 0) return whole;
  const int x0 = std::max(0, left - options.margin);
  const int y0 = std::max(0, top - options.margin);
  const int x1 = std::min(fg.gray.cols, right + options.margin);
  const int y1 = std::min(fg.gray.rows, bottom + options.margin);
  const cv::Rect box(x0, y0, x1 - x0, y1 - y0);
  const double kept = static_cast<double>(box.area()) / static_cast<double>(whole.box.area());
  if (1.0 - kept > options.max_crop_fraction) return whole;
  return {box, false};
}

// OpenCV's CV_16U CLAHE uses 65536-bin tile histograms and clips at
// max(clip_limit * tile_area / 65536, 1) = 1 count per bin for any tile under 2^16 pixels, so
// clip_limit has no effect and the result is close to the identity (measured: the same output
// for clip limits 1 to 40). Here a 16-bit value v sits at t = v / 257 on the 8-bit scale; the
// tile histograms have 256 bins (round(t)), clipped and redistributed exactly as OpenCV does for
// 8-bit images, and each tile's mapping is the 8-bit CLAHE mapping at the integers, linearly
// interpolated in between. So 257 * b maps as 8-bit CLAHE maps b, and the values between keep
// their 16-bit precision. Tiles and the bilinear blend of the four nearest tiles follow OpenCV.
cv::Mat clahe16(const cv::Mat& image, double clip_limit, int grid) {
  if (image.empty() || image.type() != CV_16UC1) {
    throw FormatError("clahe16: cannot take a " + (image.empty() ? std::string("empty") : shape_of(image)) +
                      " image; it takes 16UC1");
  }
  if (!(clip_limit > 0) || grid < 1 || grid > std::min(image.rows, image.cols)) {
    throw ConfigError("clahe16: clip limit " + std::to_string(clip_limit) + " and grid " +
                      std::to_string(grid) + " need clip limit > 0 and 1 <= grid <= the shorter side (" +
                      std::to_string(std::min(image.rows, image.cols)) + ")");
  }
  cv::Mat padded = image;
  if (image.cols % grid != 0 || image.rows % grid != 0) {
    cv::copyMakeBorder(image, padded, 0, (grid - image.rows % grid) % grid, 0,
                       (grid - image.cols % grid) % grid, cv::BORDER_REFLECT_101);
  }
  const int tw = padded.cols / grid, th = padded.rows / grid;
  return blend_tiles(image, tile_maps(padded, grid, tw, th, clip_limit), grid, tw, th);
}

cv::Mat letterbox(const cv::Mat& image, cv::Rect crop, const LetterboxOptions& options, Geometry& geometry) {
  if (image.empty() || crop.empty() || (crop & cv::Rect(0, 0, image.cols, image.rows)) != crop) {
    throw FormatError("letterbox: the crop " + std::to_string(crop.width) + "x" +
                      std::to_string(crop.height) + " at (" + std::to_string(crop.x) + ", " +
                      std::to_string(crop.y) + ") is empty or not inside the " +
                      (image.empty() ? std::string("empty") : shape_of(image)) + " image");
  }
  const int size = options.size;
  if (size < 1 || size > 4096)
    throw ConfigError("letterbox: size " + std::to_string(size) + " is not 1..4096");
  const int flag = interpolation_flag(options.interpolation);
  cv::Mat source = image(crop);
  if (options.interpolation == "area_fast") box_average_first(image, crop, size, source);
  geometry.crop_x = crop.x;
  geometry.crop_y = crop.y;
  geometry.crop_w = crop.width;
  geometry.crop_h = crop.height;
  // Resize straight into the centre of a black square (no separate pad copy). The longer side
  // becomes `size`, the shorter its rounded share (Geometry::resized_width/height, which the
  // coordinate mapping uses too).
  geometry.scale = static_cast<double>(size) / std::max(crop.width, crop.height);
  const int new_w = geometry.resized_width();
  const int new_h = geometry.resized_height();
  geometry.pad_left = (size - new_w) / 2;
  geometry.pad_right = size - new_w - geometry.pad_left;
  geometry.pad_top = (size - new_h) / 2;
  geometry.pad_bottom = size - new_h - geometry.pad_top;
  cv::Mat square = cv::Mat::zeros(size, size, image.type());
  cv::Mat inner = square(cv::Rect(geometry.pad_left, geometry.pad_top, new_w, new_h));
  cv::resize(source, inner, inner.size(), 0, 0, flag);
  return square;
}

}  // namespace medload::loader::detail
