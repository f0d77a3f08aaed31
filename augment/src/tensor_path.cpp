// The tensor path: the same operations as the CPU path, as batched tensor ops, for CUDA
// tensors (and, in tests, CPU tensors). Geometry is one affine_grid + grid_sample over the
// samples that move; point operations and noise are elementwise with per-sample parameters.

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstring>

#include "detail.h"

namespace medload::augment::detail {

namespace {

std::int64_t as_signed(std::uint64_t v) {
  std::int64_t s;
  std::memcpy(&s, &v, sizeof s);
  return s;
}

// Logical right shift of int64 lanes (>> on a signed tensor is arithmetic).
torch::Tensor shift_right(const torch::Tensor& x, int s) {
  return x.__rshift__(s).bitwise_and(static_cast<std::int64_t>((~0ULL) >> s));
}

torch::Tensor mix64(torch::Tensor x) {
  x = x.bitwise_xor(shift_right(x, 30)).mul(as_signed(0xbf58476d1ce4e5b9ULL));
  x = x.bitwise_xor(shift_right(x, 27)).mul(as_signed(0x94d049bb133111ebULL));
  return x.bitwise_xor(shift_right(x, 31));
}

// noise_at(key_b, i) for every sample b and element i: float32 [B, n].
torch::Tensor noise_field(const std::vector<std::uint64_t>& keys, std::int64_t n,
                          const torch::Device& device) {
  std::vector<std::int64_t> signed_keys(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) signed_keys[i] = as_signed(keys[i]);
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor key =
      torch::from_blob(signed_keys.data(), {static_cast<std::int64_t>(keys.size()), 1}, long_options)
          .clone()
          .to(device);
  torch::Tensor counter =
      torch::arange(1, n + 1, long_options.device(device)).mul(as_signed(kGoldenGamma)).unsqueeze(0);
  torch::Tensor r = mix64(key.add(counter));
  torch::Tensor sum = r.bitwise_and(0xffff)
                          .add(shift_right(r, 16).bitwise_and(0xffff))
                          .add(shift_right(r, 32).bitwise_and(0xffff))
                          .add(shift_right(r, 48));
  return sum.sub(131070).to(torch::kFloat32).mul(static_cast<double>(kNoiseScale));
}

torch::Tensor per_sample(const std::vector<float>& values, const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(values.data()),
                          {static_cast<std::int64_t>(values.size()), 1, 1, 1},
                          torch::TensorOptions().dtype(torch::kFloat32))
      .clone()
      .to(device);
}

// Geometry: grid_sample (bilinear, zeros outside, align_corners false) over the samples that
// move. With align_corners false, index - centre = (size / 2) * normalised, so the pixel-index
// inverse warp M = [A | t] becomes theta = [D^-1 A D | D^-1 t'], D = diag(W/2, H/2), where
// t' = t + A C - C is the translation relative to the centre.
void warp_moving_samples(torch::Tensor& x, const std::vector<AppliedParams>& params) {
  const torch::Device device = x.device();
  const std::int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  std::vector<std::int64_t> moving;
  std::vector<float> theta;
  for (std::int64_t i = 0; i < b; ++i) {
    if (params[i].identity_geometry()) continue;
    moving.push_back(i);
    const Warp warp = inverse_warp(params[i], static_cast<int>(w), static_cast<int>(h));
    const double* m = warp.m;
    const double cx = (w - 1) * 0.5, cy = (h - 1) * 0.5, dx = w * 0.5, dy = h * 0.5;
    const double t0 = m[2] + m[0] * cx + m[1] * cy - cx, t1 = m[5] + m[3] * cx + m[4] * cy - cy;
    theta.insert(theta.end(),
                 {static_cast<float>(m[0]), static_cast<float>(m[1] * dy / dx), static_cast<float>(t0 / dx),
                  static_cast<float>(m[3] * dx / dy), static_cast<float>(m[4]), static_cast<float>(t1 / dy)});
  }
  if (moving.empty()) return;
  const auto n = static_cast<std::int64_t>(moving.size());
  torch::Tensor index = torch::from_blob(moving.data(), {n}, torch::kInt64).clone().to(device);
  torch::Tensor th = torch::from_blob(theta.data(), {n, 2, 3}, torch::kFloat32).clone().to(device);
  torch::Tensor grid = at::affine_grid_generator(th, {n, c, h, w}, /*align_corners=*/false);
  torch::Tensor warped = at::grid_sampler(x.index_select(0, index), grid, /*bilinear*/ 0, /*zeros*/ 0, false);
  x.index_copy_(0, index, warped);
}

// Separable Gaussian blur of one sample s [1,C,H,W] (reflected borders), OpenCV's kernel.
torch::Tensor gaussian_blur(torch::Tensor s, double sigma, const torch::Device& device) {
  const std::int64_t c = s.size(1);
  const int k = blur_kernel_size(sigma);
  const cv::Mat kernel = cv::getGaussianKernel(k, sigma, CV_32F);
  torch::Tensor k1 =
      torch::from_blob(const_cast<float*>(kernel.ptr<float>()), {k}, torch::kFloat32).clone().to(device);
  const std::int64_t r = k / 2;
  s = at::reflection_pad2d(s, {r, r, r, r});
  const std::vector<std::int64_t> ones{1, 1}, zeros{0, 0};
  s = at::conv2d(s, k1.view({1, 1, 1, k}).expand({c, 1, 1, k}).contiguous(), torch::Tensor(), ones, zeros,
                 ones, c);
  return at::conv2d(s, k1.view({1, 1, k, 1}).expand({c, 1, k, 1}).contiguous(), torch::Tensor(), ones, zeros,
                    ones, c);
}

// Down-then-up sampling and blur: per sample (their sizes and kernels differ).
void downsample_and_blur(torch::Tensor& x, const std::vector<AppliedParams>& params) {
  const torch::Device device = x.device();
  const std::int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  for (std::int64_t i = 0; i < b; ++i) {
    const AppliedParams& p = params[i];
    if (p.downsample_factor >= 1.0 && p.blur_sigma <= 0.0) continue;
    torch::Tensor s = x.narrow(0, i, 1);
    if (p.downsample_factor < 1.0) {
      const std::int64_t hs = downsampled(static_cast<int>(h), p.downsample_factor);
      const std::int64_t ws = downsampled(static_cast<int>(w), p.downsample_factor);
      torch::Tensor small = at::adaptive_avg_pool2d(s, {hs, ws});
      s = at::upsample_bilinear2d(small, {h, w}, /*align_corners=*/false);
    }
    if (p.blur_sigma > 0.0) s = gaussian_blur(s, p.blur_sigma, device);
    x.narrow(0, i, 1).copy_(s);
  }
}

// The point operations' and noise's per-sample parameters, gathered for [B,1,1,1] tensors
// (identity values leave a sample unchanged).
struct PointParams {
  std::vector<float> gamma, brightness, contrast, inv_photons, variance;
  std::vector<std::uint64_t> keys;
  bool any_point = false, any_noise = false;
};

PointParams point_params(const std::vector<AppliedParams>& params, std::int64_t b) {
  PointParams point;
  point.gamma.resize(b);
  point.brightness.resize(b);
  point.contrast.resize(b);
  point.inv_photons.resize(b);
  point.variance.resize(b);
  point.keys.resize(b);
  for (std::int64_t i = 0; i < b; ++i) {
    const AppliedParams& p = params[i];
    point.gamma[i] = static_cast<float>(p.gamma);
    point.brightness[i] = static_cast<float>(p.brightness);
    point.contrast[i] = static_cast<float>(p.contrast);
    point.inv_photons[i] = p.poisson_photons > 0.0 ? static_cast<float>(1.0 / p.poisson_photons) : 0.0f;
    const float sigma = static_cast<float>(p.gaussian_sigma);
    point.variance[i] = sigma * sigma;
    point.keys[i] = noise_field_key(p.noise_key);
    point.any_point = point.any_point || p.gamma != 1.0 || p.brightness != 1.0 || p.contrast != 1.0;
    point.any_noise = point.any_noise || p.poisson_photons > 0.0 || p.gaussian_sigma > 0.0;
  }
  return point;
}

// Gamma, brightness, then contrast about each sample's mean (luma weights for 3 channels).
torch::Tensor adjust_intensity(torch::Tensor x, const PointParams& point) {
  const torch::Device device = x.device();
  const std::int64_t b = x.size(0), c = x.size(1);
  x = x.pow(per_sample(point.gamma, device)).clamp(0.0, 1.0);
  x = x.mul(per_sample(point.brightness, device)).clamp(0.0, 1.0);
  torch::Tensor means = x.mean({2, 3});  // [B, C]
  torch::Tensor mean;
  if (c == 3) {
    const float weights[3] = {0.2989f, 0.587f, 0.114f};
    mean =
        means.mul(torch::from_blob(const_cast<float*>(weights), {1, 3}, torch::kFloat32).clone().to(device))
            .sum(1);
  } else {
    mean = means.mean(1);
  }
  torch::Tensor k = per_sample(point.contrast, device);
  return x.mul(k).add(mean.view({b, 1, 1, 1}).mul(k.neg().add(1.0))).clamp(0.0, 1.0);
}

// Poisson-like (signal-dependent) and Gaussian noise from each sample's counter-based field.
torch::Tensor add_noise(const torch::Tensor& x, const PointParams& point) {
  const torch::Device device = x.device();
  const std::int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const std::int64_t n = c * h * w;
  torch::Tensor z = noise_field(point.keys, n, device).view({b, c, h, w});
  torch::Tensor sd =
      x.mul(per_sample(point.inv_photons, device)).add(per_sample(point.variance, device)).sqrt();
  return x.add(sd.mul(z)).clamp(0.0, 1.0);
}

}  // namespace

void apply_tensor_path(torch::Tensor& batch, const std::vector<AppliedParams>& params) {
  const bool u8 = batch.scalar_type() == torch::kUInt8;
  torch::Tensor x = u8 ? batch.to(torch::kFloat32).div(255.0) : batch.clone();
  warp_moving_samples(x, params);
  downsample_and_blur(x, params);
  const PointParams point = point_params(params, batch.size(0));
  x = x.clamp(0.0, 1.0);
  if (point.any_point) x = adjust_intensity(x, point);
  if (point.any_noise) x = add_noise(x, point);
  if (u8) {
    batch.copy_(x.mul(255.0).round().clamp(0.0, 255.0).to(torch::kUInt8));
  } else {
    batch.copy_(x);
  }
}

}  // namespace medload::augment::detail
