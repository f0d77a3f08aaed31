#pragma once
// Synthetic images for the augmentation tests: smooth anatomy-like shading plus an asymmetric
// bright "L" marker, so that flips and rotations are visible and borders matter.

#include <torch/types.h>

#include <cmath>
#include <cstdint>

#include "detail.h"

namespace medload::augment::test {

// float32 [B,C,H,W] in [0,1]; sample b differs by phase; deterministic.
inline torch::Tensor synthetic_float(std::int64_t b, std::int64_t c, std::int64_t h, std::int64_t w,
                                     std::uint64_t seed = 1) {
  torch::Tensor t = torch::empty({b, c, h, w}, torch::kFloat32);
  float* d = t.data_ptr<float>();
  for (std::int64_t i = 0; i < b; ++i) {
    const double phase = 0.7 * static_cast<double>(i) + static_cast<double>(seed % 97) * 0.1;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t y = 0; y < h; ++y) {
        for (std::int64_t x = 0; x < w; ++x) {
          double v = 0.45 + 0.25 * std::sin(x / 6.0 + phase) * std::cos(y / 9.0 - phase) + 0.05 * ch;
          const bool marker = (x > w / 5 && x < w / 5 + w / 10 && y > h / 4 && y < 3 * h / 4) ||
                              (y > 3 * h / 4 - h / 10 && y < 3 * h / 4 && x > w / 5 && x < w / 2);
          if (marker) v = 0.95;
          d[((i * c + ch) * h + y) * w + x] = static_cast<float>(std::fmin(std::fmax(v, 0.0), 1.0));
        }
      }
    }
  }
  return t;
}

// The same as uint8 (rounded).
inline torch::Tensor synthetic_u8(std::int64_t b, std::int64_t c, std::int64_t h, std::int64_t w,
                                  std::uint64_t seed = 1) {
  return synthetic_float(b, c, h, w, seed).mul(255.0).round().to(torch::kUInt8);
}

// Identity parameters (nothing applied) for one sample.
inline AppliedParams identity_params(std::int64_t id = 0) {
  AppliedParams p;
  p.sample_id = id;
  p.noise_key = 12345;
  return p;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return a.to(torch::kFloat64).sub(b.to(torch::kFloat64)).abs().max().item<double>();
}

inline bool same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.equal(b);
}

}  // namespace medload::augment::test
