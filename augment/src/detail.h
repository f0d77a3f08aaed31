#pragma once
// Private pieces shared by the CPU (OpenCV) and tensor (CUDA) paths: the counter-based
// generator, the noise field, the warp matrix and the point operations. Both paths compute
// the same functions of AppliedParams; the noise field is bit-identical between them.

#include <cmath>
#include <cstdint>

#include "medload/augment/augmenter.h"
#include "medload/augment/target_warp.h"
#include "medload/core/counter_rng.h"

namespace medload::augment::detail {

// SplitMix64 with a counter, as the samplers use it.
using medload::kGoldenGamma;
using medload::mix64;
using medload::random_u64;
using medload::unit_double;

// The key of one sample's randomness: a pure function of (seed, epoch, sample id).
constexpr std::uint64_t sample_key(std::uint64_t seed, std::int64_t epoch, std::int64_t sample_id) noexcept {
  const std::uint64_t k =
      mix64(mix64(seed + kGoldenGamma) ^ (static_cast<std::uint64_t>(epoch) * 0xd1b54a32d192ed03ULL));
  return mix64(k ^ (static_cast<std::uint64_t>(sample_id) * 0x2545f4914f6cdd1dULL + 0x632be59bd9b4e019ULL));
}

// The key of one view of a sample: view 0 is sample_key itself (what every augmenter drew before
// views existed), view v > 0 a further mix of it.
constexpr std::uint64_t view_key(std::uint64_t seed, std::int64_t epoch, std::int64_t sample_id,
                                 std::uint32_t view) noexcept {
  const std::uint64_t key = sample_key(seed, epoch, sample_id);
  return view == 0 ? key : mix64(key ^ (static_cast<std::uint64_t>(view) * 0xa0761d6478bd642fULL));
}

// The key of a sample's noise field. Poisson and Gaussian noise share one field: both are
// applied as zero-mean Gaussians (Poisson by its normal approximation, exact to within the
// accuracy that matters at >= 100 photons), and the sum of two independent Gaussians is one
// Gaussian with the summed variance, y + sqrt(y / photons + sigma^2) * z, which costs one draw
// per pixel instead of two.
constexpr std::uint64_t noise_field_key(std::uint64_t noise_key) noexcept {
  return mix64(noise_key ^ 0x5bd1e9955bd1e995ULL);
}

// The scale that makes an Irwin-Hall sum of four 16-bit uniforms unit-variance:
// var = 4 * (65536^2 - 1) / 12, so z = (sum - 131070) * sqrt(3) / 65536 (to 1e-10).
inline const float kNoiseScale = static_cast<float>(std::sqrt(3.0) / 65536.0);

// Standard-normal-like noise at `index` of the field `key`: the sum of the four 16-bit words
// of one draw, centred and scaled (Irwin-Hall, n = 4: mean 0, variance 1, tails cut at 3.46).
// Integer until the last step, so the tensor path reproduces it exactly.
inline float noise_at(std::uint64_t key, std::uint64_t index) noexcept {
  const std::uint64_t r = random_u64(key, index);
  const std::int64_t sum =
      static_cast<std::int64_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
  return static_cast<float>(sum - 131070) * kNoiseScale;
}

// The inverse warp in pixel-index coordinates: input(x, y) = M * (x_out, y_out, 1), with the
// centre of the image at ((W-1)/2, (H-1)/2) as torchvision.transforms.functional.affine. One
// definition (target_warp.cpp) serves the image paths and the targets (masks, boxes, landmarks).
using Warp = WarpMatrix;

inline Warp inverse_warp(const AppliedParams& p, int width, int height) {
  return inverse_warp_matrix(WarpGeometry(p), width, height);
}

// Gamma then brightness on a relative intensity, each clamped to [0, 1] as torchvision does.
inline double gamma_brightness(double x, const AppliedParams& p) noexcept {
  double y = p.gamma == 1.0 ? x : std::pow(x, p.gamma);
  y = std::fmin(std::fmax(y, 0.0), 1.0);
  y = std::fmin(std::fmax(y * p.brightness, 0.0), 1.0);
  return y;
}

// Contrast: blend with `mean`, clamped.
inline double contrast(double y, double mean, const AppliedParams& p) noexcept {
  if (p.contrast == 1.0) return y;
  return std::fmin(std::fmax(p.contrast * y + (1.0 - p.contrast) * mean, 0.0), 1.0);
}

// Gaussian blur kernel size for `sigma` pixels: 2 * ceil(3 sigma) + 1.
inline int blur_kernel_size(double sigma) noexcept {
  return 2 * static_cast<int>(std::ceil(3.0 * sigma)) + 1;
}

// Down-sampled size for a factor (at least one pixel).
inline int downsampled(int size, double factor) noexcept {
  const int s = static_cast<int>(std::lround(size * factor));
  return s < 1 ? 1 : s;
}

// The tensor (CUDA) path: applies `params` to `batch` (float32 or uint8 [B,C,H,W], any device)
// with tensor ops. Defined in tensor_path.cpp.
void apply_tensor_path(torch::Tensor& batch, const std::vector<AppliedParams>& params);

}  // namespace medload::augment::detail
