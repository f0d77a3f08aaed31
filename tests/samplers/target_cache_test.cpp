// Target statistics and weights over a real cache: CacheReader through make_target_reader, on the
// cache tests' six-image cache with masks, boxes and landmarks (tests/loader/cache/target_cache.h).

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/samplers/target_reader.h"
#include "medload/samplers/target_statistics.h"
#include "medload/samplers/target_weights.h"
#include "medload_test/temp_dir.h"
#include "target_cache.h"

namespace medload::samplers {
namespace {

using loader::CacheReader;
using loader::test::TargetCacheOptions;
using loader::test::write_target_cache;
using test::TempDir;

// The frames of target_cache.h: row 0 mask + boxes {1,2} + landmark {3}; row 1 mask invalid,
// boxes valid and none; row 2 nothing; row 3 mask, boxes invalid, landmarks {1,2}; row 4 boxes {3},
// landmarks invalid; row 5 mask, boxes {1}, landmarks valid and none. Masks (192 pixels):
// (i + p / 5) mod 4, so per class {50, 50, 47, 45} (row 0), {50, 47, 45, 50} (3), {45, 50, 50, 47} (5).
std::vector<std::int64_t> pixels_of(const ImageTargets& image) {
  std::vector<std::int64_t> pixels(4, 0);
  for (const ClassPixels& count : image.mask_pixels)
    pixels[static_cast<std::size_t>(count.class_id)] = count.pixels;
  return pixels;
}

void expect_statistics_of_the_target_cache(const TargetStatistics& stats) {
  EXPECT_EQ(stats.class_names, (std::vector<std::string>{"background", "liver", "tumour", "vessel"}));
  EXPECT_EQ(stats.mask_pixels, 192u);
  EXPECT_EQ(stats.valid_masks, 3u);
  EXPECT_EQ(stats.valid_boxes, 4u);
  EXPECT_EQ(stats.valid_landmarks, 3u);
  EXPECT_EQ(stats.class_pixels, (std::vector<std::int64_t>{145, 147, 142, 142}));
  EXPECT_EQ(stats.class_mask_images, (std::vector<std::int64_t>{3, 3, 3, 3}));
  EXPECT_EQ(pixels_of(stats.images[0]), (std::vector<std::int64_t>{50, 50, 47, 45}));
  EXPECT_EQ(pixels_of(stats.images[3]), (std::vector<std::int64_t>{50, 47, 45, 50}));
  EXPECT_EQ(pixels_of(stats.images[5]), (std::vector<std::int64_t>{45, 50, 50, 47}));
  EXPECT_TRUE(stats.images[1].mask_pixels.empty());
  EXPECT_FALSE(stats.images[1].mask_valid);
  EXPECT_EQ(stats.images[0].box_classes, (std::vector<std::int32_t>{1, 2}));
  EXPECT_TRUE(stats.images[1].boxes_valid);
  EXPECT_TRUE(stats.images[1].box_classes.empty());
  EXPECT_FALSE(stats.images[2].boxes_valid);
  EXPECT_FALSE(stats.images[3].boxes_valid);
  EXPECT_EQ(stats.images[4].box_classes, (std::vector<std::int32_t>{3}));
  EXPECT_EQ(stats.images[0].landmark_classes, (std::vector<std::int32_t>{3}));
  EXPECT_EQ(stats.images[3].landmark_classes, (std::vector<std::int32_t>{1, 2}));
  EXPECT_FALSE(stats.images[4].landmarks_valid);
  EXPECT_TRUE(stats.images[5].landmarks_valid);
}

TEST(TargetStatisticsOfACache, ReadsMasksBoxesAndLandmarksOfEveryRow) {
  TempDir dir;
  for (int deflate : {0, 4}) {  // the compressed masks go through inflate
    const std::string path = dir / ("targets" + std::to_string(deflate) + ".h5");
    TargetCacheOptions options;
    options.deflate = deflate;
    write_target_cache(path, options);
    const CacheReader cache(path);
    const TargetStatistics stats = target_statistics(*make_target_reader(cache));
    expect_statistics_of_the_target_cache(stats);
  }
}

TEST(TargetStatisticsOfACache, WeightsOfTheCache) {
  TempDir dir;
  write_target_cache(dir / "targets.h5");
  const CacheReader cache(dir / "targets.h5");
  const TargetStatistics stats = target_statistics(*make_target_reader(cache));
  // Masks and boxes: rows 0, 3, 5 hold {1,2,3}, row 4 {3}, row 1 is a negative, row 2 has no valid
  // target. Images per class: 3, 3, 4.
  const std::vector<double> weights = target_sample_weights(stats);
  const std::vector<double> expected{1.0 / 3, 1.0, 0.0, 1.0 / 3, 1.0 / 4, 1.0 / 3};
  ASSERT_EQ(weights.size(), expected.size());
  for (std::size_t i = 0; i < weights.size(); ++i) EXPECT_DOUBLE_EQ(weights[i], expected[i]) << i;

  // Median frequency: freq_c = pixels_c / (3 * 192); median = (142 + 145) / 2 / 576.
  const torch::Tensor w = pixel_class_weights(stats);
  ASSERT_EQ(w.numel(), 4);
  const std::vector<double> pixels{145, 147, 142, 142};
  for (std::int64_t c = 0; c < 4; ++c) EXPECT_NEAR(w[c].item<double>(), 143.5 / pixels[c], 1e-6) << c;
}

TEST(TargetStatisticsOfACache, RowsOfAPartInTheirOrder) {
  TempDir dir;
  write_target_cache(dir / "targets.h5");
  const CacheReader cache(dir / "targets.h5");
  const TargetStatistics stats = target_statistics(*make_target_reader(cache), {5, 4, 1});
  EXPECT_EQ(stats.rows, (std::vector<std::int64_t>{5, 4, 1}));
  EXPECT_EQ(pixels_of(stats.images[0]), (std::vector<std::int64_t>{45, 50, 50, 47}));
  EXPECT_EQ(stats.class_pixels, (std::vector<std::int64_t>{45, 50, 50, 47}));
  // Row 5 {1,2,3}, row 4 {3}, row 1 negative: 1 / n_c = 1, 1, 1/2.
  const std::vector<double> weights = target_sample_weights(stats);
  EXPECT_EQ(weights, (std::vector<double>{1.0, 0.5, 1.0}));
  EXPECT_THROW(target_statistics(*make_target_reader(cache), {6}), ConfigError);
}

TEST(TargetStatisticsOfACache, CachesWithoutMasksOrTargets) {
  TempDir dir;
  TargetCacheOptions no_masks;
  no_masks.masks = false;
  write_target_cache(dir / "boxes.h5", no_masks);
  const CacheReader boxes(dir / "boxes.h5");
  const TargetStatistics box_stats = target_statistics(*make_target_reader(boxes));
  EXPECT_EQ(box_stats.mask_pixels, 0u);
  EXPECT_EQ(box_stats.valid_masks, 0u);
  EXPECT_EQ(box_stats.valid_boxes, 4u);
  EXPECT_THROW(pixel_class_weights(box_stats), ConfigError);

  TargetCacheOptions none;
  none.targets = false;
  write_target_cache(dir / "plain.h5", none);
  const CacheReader plain(dir / "plain.h5");
  const TargetStatistics plain_stats = target_statistics(*make_target_reader(plain));
  EXPECT_TRUE(plain_stats.class_names.empty());
  EXPECT_EQ(plain_stats.valid_boxes + plain_stats.valid_masks + plain_stats.valid_landmarks, 0u);
  EXPECT_THROW(target_sample_weights(plain_stats), ConfigError);
}

}  // namespace
}  // namespace medload::samplers
