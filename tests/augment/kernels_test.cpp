// Exact values of each operation on hand-made inputs, through Augmenter::replay (the CPU path).

#include <gtest/gtest.h>

#include <cmath>

#include "augment_test_util.h"
#include "medload/augment/augmenter.h"

using namespace medload::augment;
using namespace medload::augment::test;

namespace {

torch::Tensor replayed(const torch::Tensor& input, const AppliedParams& p) {
  Augmenter augmenter(AugmentOptions(), 1);
  torch::Tensor batch = input.clone();
  augmenter.replay(batch, {p});
  return batch;
}

}  // namespace

TEST(AugmentKernels, GammaOnUint8IsTheRoundedPowerLaw) {
  torch::Tensor ramp = torch::arange(256, torch::kInt32).to(torch::kUInt8).view({1, 1, 16, 16});
  AppliedParams p = identity_params();
  p.gamma = 2.0;
  const torch::Tensor out = replayed(ramp, p);
  for (int v = 0; v < 256; ++v) {
    const double expected = std::nearbyint(255.0 * std::pow(v / 255.0, 2.0));
    ASSERT_EQ(out.view(-1)[v].item<int>(), static_cast<int>(expected)) << "grey level " << v;
  }
  EXPECT_EQ(out.view(-1)[128].item<int>(), 64);  // 255 * (128/255)^2 = 64.25
}

TEST(AugmentKernels, BrightnessAndContrastFollowTorchvisionsFormulas) {
  // Two grey levels, 40 and 200, half the pixels each: mean 120.
  torch::Tensor img = torch::full({1, 1, 4, 4}, 40, torch::kUInt8);
  img.narrow(2, 0, 2).fill_(200);
  AppliedParams p = identity_params();
  p.contrast = 0.5;  // 0.5 * v + 0.5 * 120
  torch::Tensor out = replayed(img, p);
  EXPECT_EQ(out[0][0][0][0].item<int>(), 160);
  EXPECT_EQ(out[0][0][3][3].item<int>(), 80);
  p = identity_params();
  p.brightness = 1.5;  // 200 * 1.5 clamps at 255
  out = replayed(img, p);
  EXPECT_EQ(out[0][0][0][0].item<int>(), 255);
  EXPECT_EQ(out[0][0][3][3].item<int>(), 60);
  // Float: contrast keeps the mean when nothing clamps.
  torch::Tensor f = synthetic_float(1, 1, 32, 32);
  p = identity_params();
  p.contrast = 0.8;
  EXPECT_NEAR(replayed(f, p).mean().item<double>(), f.mean().item<double>(), 1e-6);
}

TEST(AugmentKernels, HorizontalFlipMirrorsExactly) {
  const torch::Tensor img = synthetic_u8(1, 1, 15, 22);
  AppliedParams p = identity_params();
  p.horizontal_flip = true;
  p.horizontal_flip_override = true;
  EXPECT_TRUE(same(replayed(img, p), img.flip({3})));
  p = identity_params();
  p.vertical_flip = true;
  EXPECT_TRUE(same(replayed(img, p), img.flip({2})));
}

TEST(AugmentKernels, RotationIsClockwiseAboutTheCentre) {
  const torch::Tensor img = synthetic_u8(1, 1, 20, 20);
  AppliedParams p = identity_params();
  p.rotation_degrees = 90.0;
  // Clockwise on screen is torch.rot90 with k = -1 over (H, W).
  EXPECT_TRUE(same(replayed(img, p), torch::rot90(img, -1, {2, 3})));
  const torch::Tensor f = synthetic_float(1, 1, 20, 20);
  EXPECT_LT(max_abs_diff(replayed(f, p), torch::rot90(f, -1, {2, 3})), 1e-5);
}

TEST(AugmentKernels, TranslationShiftsByTheFractionAndFillsWithBlack) {
  const torch::Tensor img =
      torch::arange(128, torch::kInt64).mul(37).remainder(255).add(1).to(torch::kUInt8).view({1, 1, 8, 16});
  AppliedParams p = identity_params();
  p.translate_x = 0.25;   // 4 px right
  p.translate_y = -0.25;  // 2 px up
  const torch::Tensor out = replayed(img, p);
  EXPECT_TRUE(same(out.narrow(3, 4, 12).narrow(2, 0, 6), img.narrow(3, 0, 12).narrow(2, 2, 6)));
  EXPECT_EQ(out.narrow(3, 0, 4).sum().item<int64_t>(), 0);
  EXPECT_EQ(out.narrow(2, 6, 2).sum().item<int64_t>(), 0);
}

TEST(AugmentKernels, ScaleAboutTheCentreKeepsTheCentre) {
  // An odd-sized image with one bright centre pixel: scaling by 2 keeps it at the centre.
  torch::Tensor img = torch::zeros({1, 1, 9, 9}, torch::kFloat32);
  img[0][0][4][4] = 1.0;
  AppliedParams p = identity_params();
  p.scale = 2.0;
  const torch::Tensor out = replayed(img, p);
  EXPECT_NEAR(out[0][0][4][4].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(out.sum().item<double>(), 1.0 + 4 * 0.5 + 4 * 0.25, 1e-4);  // bilinear spread over 3x3
}

TEST(AugmentKernels, GaussianNoiseHasTheDrawnSigma) {
  const torch::Tensor img = torch::full({1, 1, 256, 256}, 0.5f);
  AppliedParams p = identity_params();
  p.gaussian_sigma = 0.02;
  const torch::Tensor noise = replayed(img, p).sub(0.5);
  const double n = noise.numel();
  // Sample mean within 5 standard errors of 0; sample sd within 5 standard errors of sigma
  // (the sd of a sample sd is about sigma / sqrt(2n)).
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 5 * 0.02 / std::sqrt(n));
  EXPECT_NEAR(noise.std().item<double>(), 0.02, 5 * 0.02 / std::sqrt(2 * n));
  // Tails are cut at 2 * sqrt(3) sigma (a centred Irwin-Hall sum of four uniforms spans +-2).
  EXPECT_LE(noise.abs().max().item<double>(), 2 * std::sqrt(3.0) * 0.02 + 1e-6);
}

TEST(AugmentKernels, PoissonNoiseVarianceIsIntensityOverPhotons) {
  AppliedParams p = identity_params();
  p.poisson_photons = 1000;
  for (const float level : {0.2f, 0.8f}) {
    const torch::Tensor img = torch::full({1, 1, 256, 256}, level);
    const torch::Tensor out = replayed(img, p);
    const double expected_sd = std::sqrt(level / 1000.0);
    const double n = out.numel();
    EXPECT_NEAR(out.mean().item<double>(), level, 5 * expected_sd / std::sqrt(n));
    EXPECT_NEAR(out.std().item<double>(), expected_sd, 5 * expected_sd / std::sqrt(2 * n)) << level;
  }
}

TEST(AugmentKernels, NoiseFieldIsAPureFunctionOfKeyAndIndex) {
  using medload::augment::detail::noise_at;
  EXPECT_EQ(noise_at(5, 17), noise_at(5, 17));
  EXPECT_NE(noise_at(5, 17), noise_at(6, 17));
  EXPECT_NE(noise_at(5, 17), noise_at(5, 18));
  // Mean 0, variance 1 over many draws.
  double sum = 0, sum2 = 0;
  const int n = 1 << 20;
  for (int i = 0; i < n; ++i) {
    const double z = noise_at(99, i);
    sum += z;
    sum2 += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  // var of z^2 for Irwin-Hall(4) scaled is 2 - 0.2 = 1.8 (excess kurtosis -0.3).
  EXPECT_NEAR(sum2 / n, 1.0, 5.0 * std::sqrt(1.8 / n));
}

TEST(AugmentKernels, BlurSpreadsAnImpulseAsASampledGaussian) {
  torch::Tensor img = torch::zeros({1, 1, 15, 15}, torch::kFloat32);
  img[0][0][7][7] = 1.0;
  AppliedParams p = identity_params();
  p.blur_sigma = 1.0;  // kernel 7 taps
  const torch::Tensor out = replayed(img, p);
  double norm = 0.0;
  for (int i = -3; i <= 3; ++i) norm += std::exp(-i * i / 2.0);
  for (int dy = -3; dy <= 3; ++dy) {
    for (int dx = -3; dx <= 3; ++dx) {
      const double expected = std::exp(-(dx * dx + dy * dy) / 2.0) / (norm * norm);
      EXPECT_NEAR(out[0][0][7 + dy][7 + dx].item<double>(), expected, 1e-6) << dx << "," << dy;
    }
  }
  EXPECT_EQ(out[0][0][7][11].item<float>(), 0.0f);
  EXPECT_NEAR(out.sum().item<double>(), 1.0, 1e-5);
}

TEST(AugmentKernels, DownThenUpSamplingRemovesDetailBelowTheNewResolution) {
  // A one-pixel checkerboard averaged over 2x2 blocks is flat grey, and stays so when upsampled.
  torch::Tensor img = torch::zeros({1, 1, 16, 16}, torch::kFloat32);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) img[0][0][y][x] = static_cast<float>((x + y) % 2);
  }
  AppliedParams p = identity_params();
  p.downsample_factor = 0.5;
  EXPECT_LT(max_abs_diff(replayed(img, p), torch::full_like(img, 0.5)), 1e-6);
  // A coarse pattern (constant over 4x4 blocks) survives in the block interiors.
  torch::Tensor coarse = torch::zeros({1, 1, 16, 16}, torch::kFloat32);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) coarse[0][0][y][x] = static_cast<float>((x / 4 + y / 4) % 2);
  }
  const torch::Tensor out = replayed(coarse, p);
  EXPECT_NEAR(out[0][0][1][1].item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(out[0][0][5][1].item<float>(), 1.0f, 0.3);
}
