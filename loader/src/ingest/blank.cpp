#include "blank.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace medload::loader::detail {

namespace {

// Rows sampled for the noise and the pixel spread: about this many, evenly spaced.
constexpr int kSampledRows = 64;
// Median |x - y| of two independent normal values of deviation sigma is 0.6745 sqrt(2) sigma.
constexpr double kMedianAbsDifference = 0.6744897501960817 * 1.4142135623730951;
// The smallest noise an integer image is given: a quarter grey level. An image of two levels one
// grey level apart (a binary mask) is content; a constant image with rare +-1 specks is not.
constexpr double kIntegerNoiseFloor = 0.25;
// The percentiles that bound a spread: features in fewer than 0.5 % of the values do not count.
constexpr double kLow = 0.005, kHigh = 0.995;

int block_side(int height, int width) {
  const int side = std::min(height, width);
  if (side >= 64) return 8;
  if (side >= 16) return 4;
  return 1;
}

// Values are summed over a pixel's channels: exactly, in 64 bits, for integer pixels.
template <typename T>
using Sum = std::conditional_t<std::is_integral_v<T>, std::int64_t, double>;

// The nearest-rank quantile q of `values` (reordered).
template <typename V>
V quantile(std::vector<V>& values, double q) {
  const auto k = static_cast<std::size_t>(std::llround(q * static_cast<double>(values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// Integer values of a known range counted in a histogram: quantiles without sorting. Selection
// over 130,000 values cost more than the rest of the blank check together.
class Histogram {
 public:
  Histogram(std::int64_t lowest, std::int64_t highest)
      : lowest_(lowest), counts_(static_cast<std::size_t>(highest - lowest + 1), 0) {}
  void add(std::int64_t v) {
    ++counts_[static_cast<std::size_t>(v - lowest_)];
    ++total_;
  }
  std::uint64_t size() const { return total_; }
  // The same nearest rank as quantile() above.
  std::int64_t quantile(double q) const {
    const auto k = static_cast<std::uint64_t>(std::llround(q * static_cast<double>(total_ - 1)));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen > k) return lowest_ + static_cast<std::int64_t>(b);
    }
    return lowest_ + static_cast<std::int64_t>(counts_.size()) - 1;
  }

 private:
  std::int64_t lowest_;
  std::vector<std::uint32_t> counts_;
  std::uint64_t total_ = 0;
};

template <typename T, int kChannels>
const T* row_at(const DecodedImage& image, int r) {
  return reinterpret_cast<const T*>(image.pixels.data()) + static_cast<std::size_t>(r) * image.width * kChannels;
}

// The sums (over pixels and channels) of every whole block; the partial blocks at the right and
// bottom edges are left out. Columns are summed down a block's rows first (a loop the compiler
// vectorises), then across each block's columns.
template <typename T, int kChannels>
std::vector<Sum<T>> block_sums(const DecodedImage& image, int block) {
  const int blocks_x = image.width / block;
  const int blocks_y = image.height / block;
  const int values = blocks_x * block * kChannels;
  // At most 8 rows of 16-bit values per column: 32 bits hold them, and vectorise twice as wide.
  using Column = std::conditional_t<std::is_integral_v<T>, std::int32_t, double>;
  std::vector<Column> columns(static_cast<std::size_t>(values));
  std::vector<Sum<T>> sums;
  sums.reserve(static_cast<std::size_t>(blocks_x) * blocks_y);
  for (int by = 0; by < blocks_y; ++by) {
    std::fill(columns.begin(), columns.end(), Column{0});
    for (int r = by * block; r < (by + 1) * block; ++r) {
      const T* row = row_at<T, kChannels>(image, r);
      for (int i = 0; i < values; ++i) columns[static_cast<std::size_t>(i)] += static_cast<Column>(row[i]);
    }
    for (int bx = 0; bx < blocks_x; ++bx) {
      const Column* c = columns.data() + static_cast<std::size_t>(bx) * block * kChannels;
      Sum<T> s = 0;
      for (int i = 0; i < block * kChannels; ++i) s += c[i];
      sums.push_back(s);
    }
  }
  return sums;
}

// A pixel's sum over its channels.
template <typename T, int kChannels>
Sum<T> pixel_sum(const T* p) {
  Sum<T> v = 0;
  for (int c = 0; c < kChannels; ++c) v += static_cast<Sum<T>>(p[c]);
  return v;
}

// What the sampled rows show, in channel-sum units: the spread of single pixels, and the median
// absolute difference between neighbours along rows and down columns.
struct RowStatistics {
  double pixel_spread = 0;
  double median_across = 0;
  double median_down = 0;
};

// Each of the three from its own list of values: a histogram for integer pixels, selection for
// float ones. `Collect` is the list's type.
template <typename T, int kChannels, typename Collect>
RowStatistics row_statistics(const DecodedImage& image, Collect pixels, Collect across, Collect down) {
  const int stride = std::max(1, image.height / kSampledRows);
  for (int r = 0; r < image.height; r += stride) {
    const T* p = row_at<T, kChannels>(image, r);
    const T* below = r + 1 < image.height ? row_at<T, kChannels>(image, r + 1) : nullptr;
    for (int c = 0; c < image.width; ++c) {
      const Sum<T> v = pixel_sum<T, kChannels>(p + c * kChannels);
      pixels.add(v);
      if (c + 1 < image.width) {
        const Sum<T> d = pixel_sum<T, kChannels>(p + (c + 1) * kChannels) - v;
        across.add(d < 0 ? -d : d);
      }
      if (below != nullptr) {
        const Sum<T> d = pixel_sum<T, kChannels>(below + c * kChannels) - v;
        down.add(d < 0 ? -d : d);
      }
    }
  }
  RowStatistics s;
  s.pixel_spread = static_cast<double>(pixels.quantile(kHigh) - pixels.quantile(kLow));
  s.median_across = across.size() ? static_cast<double>(across.quantile(0.5)) : 0.0;
  s.median_down = down.size() ? static_cast<double>(down.quantile(0.5)) : 0.0;
  return s;
}

// A list of float values with the Histogram's interface.
class Values {
 public:
  void add(double v) { values_.push_back(v); }
  std::uint64_t size() const { return values_.size(); }
  double quantile(double q) { return medload::loader::detail::quantile(values_, q); }

 private:
  std::vector<double> values_;
};

template <typename T, int kChannels>
RowStatistics row_statistics(const DecodedImage& image) {
  if constexpr (std::is_integral_v<T>) {
    constexpr std::int64_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
    return row_statistics<T, kChannels>(image, Histogram(kChannels * lo, kChannels * hi),
                                        Histogram(0, kChannels * (hi - lo)), Histogram(0, kChannels * (hi - lo)));
  } else {
    return row_statistics<T, kChannels>(image, Values(), Values(), Values());
  }
}

template <typename T, int kChannels>
ContentMeasure measure(const DecodedImage& image) {
  const int block = block_side(image.height, image.width);
  std::vector<Sum<T>> sums = block_sums<T, kChannels>(image, block);
  const RowStatistics rows = row_statistics<T, kChannels>(image);
  const double per_block = static_cast<double>(block) * block * kChannels;
  const double block_spread =
      sums.empty() ? 0.0 : static_cast<double>(quantile(sums, kHigh) - quantile(sums, kLow)) / per_block;
  ContentMeasure m;
  // Block means see extended structure under strong noise; single pixels see structure finer
  // than a block (stripes whose mean equals their surroundings). Pure noise spreads over about
  // 0.65 noise deviations in 8x8 block means, and 5.2 in pixels: a third of it is 1.7.
  m.spread = std::max(block_spread, rows.pixel_spread / kChannels / 3);
  // The quieter direction: stripes along one direction are structure, not noise.
  const double noise = std::min(rows.median_across, rows.median_down) / kChannels / kMedianAbsDifference;
  m.noise = std::max(noise, std::is_integral_v<T> ? kIntegerNoiseFloor : 0.0);
  return m;
}

template <typename T>
ContentMeasure measure(const DecodedImage& image) {
  if (image.channels == 3) return measure<T, 3>(image);
  if (image.channels == 1) return measure<T, 1>(image);
  return {};
}

}  // namespace

double ContentMeasure::ratio() const {
  if (spread <= 0) return 0;
  if (noise <= 0) return std::numeric_limits<double>::infinity();
  return spread / noise;
}

ContentMeasure measure_content(const DecodedImage& image) {
  if (image.height <= 0 || image.width <= 0) return {};
  switch (image.type) {
    case PixelType::kUInt8:
      return measure<std::uint8_t>(image);
    case PixelType::kUInt16:
      return measure<std::uint16_t>(image);
    case PixelType::kInt16:
      return measure<std::int16_t>(image);
    case PixelType::kFloat32:
      return measure<float>(image);
  }
  return {};
}

}  // namespace medload::loader::detail
