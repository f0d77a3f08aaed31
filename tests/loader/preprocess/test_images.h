#pragma once
// Hand-made images for the preprocessing tests, built at run time.

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "medload/loader/ingest/decoded_image.h"

namespace medload::loader::testing {

template <typename T>
DecodedImage make_image(int height, int width, int channels, PixelType type, T fill = T{}) {
  DecodedImage img;
  img.height = height;
  img.width = width;
  img.channels = channels;
  img.type = type;
  img.bits_stored = static_cast<int>(8 * sizeof(T));
  img.pixels.resize(static_cast<std::size_t>(height) * width * channels * sizeof(T));
  T* p = reinterpret_cast<T*>(img.pixels.data());
  for (std::size_t i = 0; i < img.pixels.size() / sizeof(T); ++i) p[i] = fill;
  img.source_path = "synthetic.png";
  return img;
}

template <typename T>
T& at(DecodedImage& img, int y, int x, int c = 0) {
  return reinterpret_cast<T*>(
      img.pixels.data())[(static_cast<std::size_t>(y) * img.width + x) * img.channels + c];
}

template <typename T>
T value_at(const std::vector<std::uint8_t>& pixels, int width, int channels, int y, int x, int c = 0) {
  T v;
  std::memcpy(&v, pixels.data() + ((static_cast<std::size_t>(y) * width + x) * channels + c) * sizeof(T),
              sizeof(T));
  return v;
}

/// A filled disc of `value` centred at (cx, cy) (continuous coordinates) with radius r.
template <typename T>
void draw_disc(DecodedImage& img, double cx, double cy, double r, T value) {
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r * r) {
        for (int c = 0; c < img.channels; ++c) at<T>(img, y, x, c) = value;
      }
    }
  }
}

/// 8-bit gray radiograph stand-in: black border, textured "anatomy" rectangle
/// [x0, x0+w) x [y0, y0+h) with values 100..200, faint background noise (0..10).
inline DecodedImage bordered_image(int height, int width, int x0, int y0, int w, int h, unsigned seed = 7) {
  DecodedImage img = make_image<std::uint8_t>(height, width, 1, PixelType::kUInt8, 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 10), tissue(100, 200);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const bool inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
      at<std::uint8_t>(img, y, x) = static_cast<std::uint8_t>(inside ? tissue(rng) : noise(rng));
    }
  }
  return img;
}

/// A burned-in text band: alternating bright glyph-like strokes in rows [y0, y0+h), columns
/// [x0, x1).
inline void draw_text_band(DecodedImage& img, int y0, int h, int x0, int x1) {
  for (int y = y0; y < y0 + h; ++y) {
    for (int x = x0; x < x1; ++x) {
      if ((x / 3 + y / 4) % 2 == 0) at<std::uint8_t>(img, y, x) = 255;
    }
  }
}

}  // namespace medload::loader::testing
