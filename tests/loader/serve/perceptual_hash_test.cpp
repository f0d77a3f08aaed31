#include "medload/loader/serve/perceptual_hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <vector>

#include "medload/core/error.h"
#include "synthetic_images.h"

namespace medload::loader {
namespace {

TEST(PerceptualHash, IdenticalImagesHashEqual) {
  const auto image = testing::chest_like(1, 224);
  EXPECT_EQ(perceptual_hash(image.data(), 1, 224, 224), perceptual_hash(image.data(), 1, 224, 224));
}

TEST(PerceptualHash, BrightnessOffsetAndContrastBarelyChangeTheHashAwayFromClipping) {
  auto image = testing::chest_like(3, 128);
  for (auto& v : image) v = static_cast<std::uint8_t>(v * 0.6);  // room for +40 and x1.5 without clipping
  std::vector<std::uint8_t> brighter(image.size()), contrast(image.size());
  for (std::size_t i = 0; i < image.size(); ++i) {
    brighter[i] = static_cast<std::uint8_t>(image[i] + 40);
    contrast[i] = static_cast<std::uint8_t>(image[i] * 3 / 2);
  }
  const auto h = perceptual_hash(image.data(), 1, 128, 128);
  // Exact arithmetic would give 0; coefficients within rounding of the median may flip.
  EXPECT_LE(hash_distance(h, perceptual_hash(brighter.data(), 1, 128, 128)), 2);
  EXPECT_LE(hash_distance(h, perceptual_hash(contrast.data(), 1, 128, 128)), 2);
  const auto a = image_digest(image.data(), 1, 128, 128);
  EXPECT_GT(thumbnail_correlation(a, image_digest(brighter.data(), 1, 128, 128)), 0.9999);
  EXPECT_GT(thumbnail_correlation(a, image_digest(contrast.data(), 1, 128, 128)), 0.999);
}

TEST(ImageDigest, CopiesMatchAndOtherPatientsOfTheSameAnatomyDoNot) {
  // The audit's defaults (hash distance <= 10 and thumbnail correlation >= 0.995) flag a copy
  // brightened by 25 levels and noised with sigma 8, and a gamma 0.8 re-windowed copy, and flag
  // no pair of 60 different synthetic radiographs of one anatomy (whose hashes can be 2 bits apart:
  // the hash alone cannot tell them apart).
  std::vector<ImageDigest> digests;
  for (std::uint32_t seed = 0; seed < 60; ++seed) {
    const auto image = testing::chest_like(seed, 224, seed % 2);
    digests.push_back(image_digest(image.data(), 1, 224, 224));
    const auto noised = testing::noised_brightened(image, 25, 8, seed + 1000);
    auto gamma = image;
    for (auto& v : gamma) v = static_cast<std::uint8_t>(std::lround(255.0 * std::pow(v / 255.0, 0.8)));
    for (const auto& copy : {noised, gamma}) {
      const ImageDigest d = image_digest(copy.data(), 1, 224, 224);
      EXPECT_LE(hash_distance(d.hash, digests.back().hash), 10) << "seed " << seed;
      EXPECT_GE(thumbnail_correlation(d, digests.back()), 0.995) << "seed " << seed;
    }
  }
  int flagged = 0;
  for (std::size_t a = 0; a < digests.size(); ++a) {
    for (std::size_t b = a + 1; b < digests.size(); ++b) {
      if (hash_distance(digests[a].hash, digests[b].hash) <= 10 &&
          thumbnail_correlation(digests[a], digests[b]) >= 0.995) {
        ++flagged;
      }
    }
  }
  EXPECT_EQ(flagged, 0);
}

TEST(PerceptualHash, ResolutionChangesKeepTheHashClose) {
  const auto big = testing::chest_like(5, 512);
  const auto small = testing::chest_like(5, 224);
  EXPECT_LE(
      hash_distance(perceptual_hash(big.data(), 1, 512, 512), perceptual_hash(small.data(), 1, 224, 224)), 6);
}

TEST(PerceptualHash, SixteenBitAndChannelsAreSupported) {
  const auto image = testing::chest_like(9, 100);
  std::vector<std::uint16_t> wide(image.begin(), image.end());
  for (auto& v : wide) v = static_cast<std::uint16_t>(v * 257);
  EXPECT_EQ(perceptual_hash(wide.data(), 1, 100, 100), perceptual_hash(image.data(), 1, 100, 100));
  std::vector<std::uint8_t> rgb;
  for (int c = 0; c < 3; ++c) rgb.insert(rgb.end(), image.begin(), image.end());
  EXPECT_EQ(perceptual_hash(rgb.data(), 3, 100, 100), perceptual_hash(image.data(), 1, 100, 100));
  EXPECT_EQ(image_digest(wide.data(), 1, 100, 100).thumbnail,
            image_digest(image.data(), 1, 100, 100).thumbnail);
}

TEST(PerceptualHash, EmptyImageIsAConfigError) {
  std::uint8_t pixel = 0;
  EXPECT_THROW(perceptual_hash(&pixel, 1, 0, 10), ConfigError);
}

}  // namespace
}  // namespace medload::loader
