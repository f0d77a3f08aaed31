// The tensor path (what CUDA batches take) against the CPU path, run here on CPU tensors;
// and on a CUDA device when one is present.

#include <gtest/gtest.h>

#include <torch/cuda.h>

#include "augment_test_util.h"
#include "detail.h"
#include "medload/augment/augmenter.h"

using namespace medload::augment;
using namespace medload::augment::test;

namespace {

std::vector<AppliedParams> drawn(const AugmentOptions& o, std::int64_t b, std::int64_t epoch) {
  Augmenter augmenter(o, 1);
  std::vector<AppliedParams> params;
  for (std::int64_t i = 0; i < b; ++i) params.push_back(augmenter.draw(i, epoch));
  return params;
}

torch::Tensor cpu_path(const torch::Tensor& input, const std::vector<AppliedParams>& params) {
  torch::Tensor batch = input.clone();
  Augmenter(AugmentOptions(), 2).replay(batch, params);
  return batch;
}

torch::Tensor tensor_path(const torch::Tensor& input, const std::vector<AppliedParams>& params) {
  torch::Tensor batch = input.clone();
  medload::augment::detail::apply_tensor_path(batch, params);
  return batch;
}

// Pixels at least `margin` away from every edge.
torch::Tensor interior(const torch::Tensor& t, std::int64_t margin) {
  return t.narrow(2, margin, t.size(2) - 2 * margin).narrow(3, margin, t.size(3) - 2 * margin);
}

}  // namespace

TEST(TensorPath, NoiseMatchesTheCpuPathBitForBit) {
  AugmentOptions o;
  o.rotation.probability = o.translation.probability = o.scale.probability = 0.0;
  o.gamma.probability = o.brightness.probability = o.contrast.probability = 0.0;
  o.blur.probability = o.downsample.probability = 0.0;
  o.gaussian_noise.probability = o.poisson_noise.probability = 1.0;
  const auto params = drawn(o, 6, 1);
  const torch::Tensor input = synthetic_float(6, 1, 40, 36);
  const torch::Tensor a = tensor_path(input, params), b = cpu_path(input, params);
  EXPECT_FALSE(same(b, input));
  EXPECT_TRUE(same(a, b)) << "max |diff| " << max_abs_diff(a, b);
}

TEST(TensorPath, PointOperationsMatchTheCpuPathToFloatRounding) {
  AugmentOptions o = AugmentOptions::full_chain();
  o.rotation.probability = o.translation.probability = o.scale.probability = 0.0;
  o.blur.probability = o.downsample.probability = 0.0;
  const auto params = drawn(o, 6, 1);
  const torch::Tensor input = synthetic_float(6, 3, 40, 36);
  // pow and the contrast mean are computed in a different order: a few ulps.
  EXPECT_LT(max_abs_diff(tensor_path(input, params), cpu_path(input, params)), 1e-6);
}

TEST(TensorPath, FullChainMatchesTheCpuPathWithinInterpolationRounding) {
  const auto params = drawn(AugmentOptions::full_chain(), 8, 2);
  const torch::Tensor input = synthetic_float(8, 1, 64, 56);
  const torch::Tensor a = tensor_path(input, params), b = cpu_path(input, params);
  // OpenCV quantises warp coordinates to 1/32 pixel and its INTER_AREA bins differ from
  // adaptive_avg_pool2d at fractional factors; the difference stays small on average.
  const double mean_diff = a.sub(b).abs().mean().item<double>();
  EXPECT_LT(mean_diff, 0.01) << mean_diff;
  // Geometry alone (no resolution change), interior pixels: within 1/32 pixel of slope.
  AugmentOptions geometric;
  geometric.rotation.probability = geometric.translation.probability = geometric.scale.probability = 1.0;
  geometric.gamma.probability = geometric.brightness.probability = geometric.contrast.probability = 0.0;
  geometric.gaussian_noise.probability = geometric.poisson_noise.probability = 0.0;
  geometric.blur.probability = geometric.downsample.probability = 0.0;
  const auto gp = drawn(geometric, 8, 0);
  const double max_interior =
      max_abs_diff(interior(tensor_path(input, gp), 6), interior(cpu_path(input, gp), 6));
  EXPECT_LT(max_interior, 0.02) << max_interior;
}

TEST(TensorPath, BlurMatchesOpenCvExactlyEnough) {
  std::vector<AppliedParams> params(2, identity_params());
  params[0].blur_sigma = 0.8;
  params[1].blur_sigma = 1.7;
  const torch::Tensor input = synthetic_float(2, 3, 30, 34);
  EXPECT_LT(max_abs_diff(tensor_path(input, params), cpu_path(input, params)), 1e-5);
}

TEST(TensorPath, Uint8BatchesRoundLikeTheCpuPath) {
  const auto params = drawn(AugmentOptions::full_chain(), 4, 0);
  const torch::Tensor input = synthetic_u8(4, 1, 48, 48);
  const torch::Tensor a = tensor_path(input, params), b = cpu_path(input, params);
  EXPECT_EQ(a.scalar_type(), torch::kUInt8);
  EXPECT_LT(a.to(torch::kFloat32).sub(b.to(torch::kFloat32)).abs().mean().item<double>(), 2.5);
}

TEST(TensorPath, CudaBatchesMatchTheTensorPathOnTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto params = drawn(AugmentOptions::full_chain(), 8, 3);
  const torch::Tensor input = synthetic_float(8, 1, 64, 64);
  torch::Tensor on_gpu = input.to(torch::kCUDA);
  Augmenter(AugmentOptions(), 2).replay(on_gpu, params);
  EXPECT_TRUE(on_gpu.is_cuda());
  EXPECT_LT(max_abs_diff(on_gpu.cpu(), tensor_path(input, params)), 1e-4);
  // And through apply(): same parameters whatever the device.
  Augmenter augmenter(AugmentOptions::full_chain(), 1);
  torch::Tensor u8 = synthetic_u8(4, 1, 32, 32).to(torch::kCUDA);
  const auto applied = augmenter.apply(u8, {0, 1, 2, 3}, 0);
  EXPECT_EQ(applied[2].to_json(), augmenter.draw(2, 0).to_json());
}
