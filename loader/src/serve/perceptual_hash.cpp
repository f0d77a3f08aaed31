// DCT pHash: area reduction to 32 x 32, 2-D DCT-II, the 8 x 8 lowest frequencies against their median.

#include "medload/loader/serve/perceptual_hash.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "medload/core/error.h"

namespace medload::loader {
namespace {

constexpr std::size_t kSide = 32;
constexpr std::size_t kLow = 8;

// Area weights mapping `in` source positions onto kSide outputs: output o covers
// [o * in / kSide, (o + 1) * in / kSide), each source cell weighted by its overlap.
struct Tap {
  std::size_t source;
  double weight;
};
std::vector<std::vector<Tap>> area_taps(std::size_t in) {
  std::vector<std::vector<Tap>> taps(kSide);
  const double step = static_cast<double>(in) / kSide;
  for (std::size_t o = 0; o < kSide; ++o) {
    const double begin = static_cast<double>(o) * step;
    const double end = begin + step;
    for (auto s = static_cast<std::size_t>(begin); s < in && static_cast<double>(s) < end; ++s) {
      const double overlap =
          std::min(end, static_cast<double>(s + 1)) - std::max(begin, static_cast<double>(s));
      if (overlap > 0) taps[o].push_back({s, overlap / step});
    }
  }
  return taps;
}

const std::array<std::array<double, kSide>, kLow>& dct_basis() {
  static const auto basis = [] {
    std::array<std::array<double, kSide>, kLow> b{};
    for (std::size_t u = 0; u < kLow; ++u) {
      for (std::size_t x = 0; x < kSide; ++x) {
        b[u][x] =
            std::cos(M_PI * (2.0 * static_cast<double>(x) + 1.0) * static_cast<double>(u) / (2.0 * kSide));
      }
    }
    return b;
  }();
  return basis;
}

template <class T>
std::array<std::array<double, kSide>, kSide> reduce(const T* pixels, std::size_t channels, std::size_t height,
                                                    std::size_t width) {
  if (pixels == nullptr || channels == 0 || height == 0 || width == 0) {
    throw ConfigError("perceptual_hash: empty image (" + std::to_string(channels) + " x " +
                      std::to_string(height) + " x " + std::to_string(width) + ")");
  }
  const auto row_taps = area_taps(height);
  const auto col_taps = area_taps(width);
  // Rows first: kSide rows of `width` values (channels averaged), then the columns.
  std::vector<double> rows(kSide * width, 0.0);
  const double channel_weight = 1.0 / static_cast<double>(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    const T* plane = pixels + c * height * width;
    for (std::size_t o = 0; o < kSide; ++o) {
      double* out = rows.data() + o * width;
      for (const Tap& tap : row_taps[o]) {
        const T* in = plane + tap.source * width;
        const double w = tap.weight * channel_weight;
        for (std::size_t x = 0; x < width; ++x) out[x] += w * static_cast<double>(in[x]);
      }
    }
  }
  std::array<std::array<double, kSide>, kSide> small{};
  for (std::size_t y = 0; y < kSide; ++y) {
    for (std::size_t o = 0; o < kSide; ++o) {
      double sum = 0;
      for (const Tap& tap : col_taps[o]) sum += tap.weight * rows[y * width + tap.source];
      small[y][o] = sum;
    }
  }
  return small;
}

std::uint64_t hash_of(const std::array<std::array<double, kSide>, kSide>&
                          small) {  // The 8 x 8 low-frequency block of the DCT-II: B * small * B^T.
  const auto& basis = dct_basis();
  std::array<std::array<double, kSide>, kLow> half{};  // B * small: [kLow][kSide]
  for (std::size_t u = 0; u < kLow; ++u) {
    for (std::size_t x = 0; x < kSide; ++x) {
      double sum = 0;
      for (std::size_t y = 0; y < kSide; ++y) sum += basis[u][y] * small[y][x];
      half[u][x] = sum;
    }
  }
  std::array<double, kLow * kLow> coefficients{};
  for (std::size_t u = 0; u < kLow; ++u) {
    for (std::size_t v = 0; v < kLow; ++v) {
      double sum = 0;
      for (std::size_t x = 0; x < kSide; ++x) sum += half[u][x] * basis[v][x];
      coefficients[u * kLow + v] = sum;
    }
  }
  std::array<double, kLow* kLow> sorted = coefficients;
  std::nth_element(sorted.begin(), sorted.begin() + 32, sorted.end());
  const double upper = sorted[32];
  const double lower = *std::max_element(sorted.begin(), sorted.begin() + 32);
  const double median = 0.5 * (lower + upper);
  std::uint64_t hash = 0;
  for (std::size_t i = 0; i < kLow * kLow; ++i) {
    if (coefficients[i] > median) hash |= std::uint64_t{1} << i;
  }
  return hash;
}

template <class T>
ImageDigest digest(const T* pixels, std::size_t channels, std::size_t height, std::size_t width,
                   double to_8bit) {
  const auto small = reduce(pixels, channels, height, width);
  ImageDigest d;
  d.hash = hash_of(small);
  for (std::size_t y = 0; y < kSide; ++y) {
    for (std::size_t x = 0; x < kSide; ++x) {
      d.thumbnail[y * kSide + x] =
          static_cast<std::uint8_t>(std::clamp(std::lround(small[y][x] * to_8bit), 0L, 255L));
    }
  }
  return d;
}

}  // namespace

std::uint64_t perceptual_hash(const std::uint8_t* pixels, std::size_t channels, std::size_t height,
                              std::size_t width) {
  return hash_of(reduce(pixels, channels, height, width));
}

std::uint64_t perceptual_hash(const std::uint16_t* pixels, std::size_t channels, std::size_t height,
                              std::size_t width) {
  return hash_of(reduce(pixels, channels, height, width));
}

ImageDigest image_digest(const std::uint8_t* pixels, std::size_t channels, std::size_t height,
                         std::size_t width) {
  return digest(pixels, channels, height, width, 1.0);
}

ImageDigest image_digest(const std::uint16_t* pixels, std::size_t channels, std::size_t height,
                         std::size_t width) {
  return digest(pixels, channels, height, width, 1.0 / 257.0);
}

double thumbnail_correlation(const ImageDigest& a, const ImageDigest& b) noexcept {
  const double n = static_cast<double>(a.thumbnail.size());
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (std::size_t i = 0; i < a.thumbnail.size(); ++i) {
    const double x = a.thumbnail[i], y = b.thumbnail[i];
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  const double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
  if (va <= 0 || vb <= 0) return va <= 0 && vb <= 0 ? 1.0 : 0.0;  // flat images: alike only if both flat
  return (sab - sa * sb / n) / std::sqrt(va * vb);
}

}  // namespace medload::loader
