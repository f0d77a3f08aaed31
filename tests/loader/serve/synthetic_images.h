#pragma once
// Synthetic radiograph-like images for the serve tests: every image of a "class" has the same
// anatomy (two dark lung fields in a bright body, ribs), differing in position, size, ribs and
// lesions, as different patients' chest X-rays do.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace medload::loader::testing {

inline std::vector<std::uint8_t> chest_like(std::uint32_t seed, int size, int lesion_class = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double cx = size * (0.5 + 0.08 * u(rng));
  const double cy = size * (0.52 + 0.08 * u(rng));
  const double lung_w = size * (0.17 + 0.04 * u(rng));
  const double lung_h = size * (0.30 + 0.06 * u(rng));
  const double gap = size * (0.2 + 0.03 * u(rng));
  const double rib_period = size * (0.07 + 0.015 * u(rng));
  const double rib_phase = 3.14 * u(rng);
  const double lx = cx + size * 0.15 * u(rng), ly = cy + size * 0.15 * u(rng);
  const double lesion_r = size * (0.04 + 0.02 * u(rng));
  const double tilt = 0.1 * u(rng);
  std::vector<std::uint8_t> image(static_cast<std::size_t>(size) * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double xr = (x - cx) * std::cos(tilt) - (y - cy) * std::sin(tilt);
      const double yr = (x - cx) * std::sin(tilt) + (y - cy) * std::cos(tilt);
      const double body = std::exp(-std::pow(xr / (size * 0.45), 4) - std::pow(yr / (size * 0.55), 4));
      double v = 40 + 150 * body;
      for (int side = -1; side <= 1; side += 2) {
        const double dx = (xr - side * gap) / lung_w, dy = yr / lung_h;
        const double r = dx * dx + dy * dy;
        if (r < 1) v -= 90 * (1 - r) * (0.8 + 0.2 * std::sin((y + 0.3 * x) * 6.283 / rib_period + rib_phase));
      }
      if (lesion_class > 0) {
        const double d = std::hypot(x - lx, y - ly) / lesion_r;
        if (d < 1) v += 60 * (1 - d * d);
      }
      image[static_cast<std::size_t>(y) * size + x] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  return image;
}

// A copy with brightness +delta and Gaussian noise (sigma), clipped to [0, 255].
inline std::vector<std::uint8_t> noised_brightened(const std::vector<std::uint8_t>& image, double delta,
                                                   double sigma, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  std::vector<std::uint8_t> out(image.size());
  for (std::size_t i = 0; i < image.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(std::clamp(std::round(image[i] + delta + noise(rng)), 0.0, 255.0));
  }
  return out;
}

}  // namespace medload::loader::testing
