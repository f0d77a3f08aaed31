#include "medload/samplers/target_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/class_weights.h"
#include "medload/samplers/target_statistics.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using Labels = std::optional<std::vector<std::int32_t>>;

// One hand-made image: a mask (nullopt = not valid), box and landmark labels (nullopt = not valid).
struct FakeImage {
  std::optional<std::vector<std::uint16_t>> mask;
  Labels boxes;
  Labels landmarks;
};

// An in-memory TargetReader; reading a mask that is not valid is a test failure.
class FakeReader final : public TargetReader {
 public:
  FakeReader(std::vector<std::string> names, std::size_t pixels, std::vector<FakeImage> images)
      : names_(std::move(names)), pixels_(pixels), images_(std::move(images)) {}

  std::size_t size() const override { return images_.size(); }
  std::vector<std::string> class_names() const override { return names_; }
  std::size_t mask_pixels() const override { return pixels_; }
  bool mask_valid(std::size_t row) const override { return images_.at(row).mask.has_value(); }
  void read_mask(std::size_t row, std::uint16_t* out) const override {
    ++reads_;
    if (!images_.at(row).mask) {
      ADD_FAILURE() << "read_mask of row " << row << ", whose mask is not valid";
      return;
    }
    std::copy(images_[row].mask->begin(), images_[row].mask->end(), out);
  }
  Labels box_labels(std::size_t row) const override { return images_.at(row).boxes; }
  Labels landmark_labels(std::size_t row) const override { return images_.at(row).landmarks; }

  int reads() const { return reads_.load(); }

 private:
  std::vector<std::string> names_;
  std::size_t pixels_;
  std::vector<FakeImage> images_;
  mutable std::atomic<int> reads_{0};
};

std::vector<std::string> names() { return {"background", "liver", "tumour", "vessel"}; }

// Five 2x3 images:
//   row  mask (valid?)          boxes        landmarks
//   0    0 0 1 1 1 2            {1, 1, 3}    {2, 1}
//   1    3 3 3 3 3 3            none         none
//   2    invalid                {} negative  none
//   3    0 0 0 0 0 0            invalid      none
//   4    2 0 2 0 2 0            {2}          none
FakeReader small_reader() {
  return FakeReader(
      names(), 6,
      {{std::vector<std::uint16_t>{0, 0, 1, 1, 1, 2}, std::vector<std::int32_t>{1, 1, 3},
        std::vector<std::int32_t>{2, 1}},
       {std::vector<std::uint16_t>{3, 3, 3, 3, 3, 3}, std::nullopt, std::nullopt},
       {std::nullopt, std::vector<std::int32_t>{}, std::nullopt},
       {std::vector<std::uint16_t>{0, 0, 0, 0, 0, 0}, std::nullopt, std::nullopt},
       {std::vector<std::uint16_t>{2, 0, 2, 0, 2, 0}, std::vector<std::int32_t>{2}, std::nullopt}});
}

std::vector<double> values(const torch::Tensor& t) {
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_EQ(t.dim(), 1);
  std::vector<double> v;
  for (std::int64_t i = 0; i < t.size(0); ++i) v.push_back(t[i].item<double>());
  return v;
}

void expect_near(const std::vector<double>& actual, const std::vector<double>& expected,
                 double tolerance = 1e-6) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], tolerance * std::max(1.0, std::abs(expected[i]))) << i;
}

TEST(TargetStatistics, CountsPixelsAndLabelsOfValidKindsOnly) {
  const FakeReader reader = small_reader();
  const TargetStatistics stats = target_statistics(reader);
  EXPECT_EQ(reader.reads(), 4);  // each valid mask once, the invalid one never
  EXPECT_EQ(stats.rows, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(stats.mask_pixels, 6u);
  EXPECT_EQ(stats.class_pixels, (std::vector<std::int64_t>{11, 3, 4, 6}));
  EXPECT_EQ(stats.class_mask_images, (std::vector<std::int64_t>{3, 1, 2, 1}));
  EXPECT_EQ(stats.valid_masks, 4u);
  EXPECT_EQ(stats.valid_boxes, 3u);
  EXPECT_EQ(stats.valid_landmarks, 1u);

  const ImageTargets& first = stats.images[0];
  ASSERT_EQ(first.mask_pixels.size(), 3u);
  EXPECT_EQ(first.mask_pixels[0].class_id, 0);
  EXPECT_EQ(first.mask_pixels[0].pixels, 2);
  EXPECT_EQ(first.mask_pixels[1].class_id, 1);
  EXPECT_EQ(first.mask_pixels[1].pixels, 3);
  EXPECT_EQ(first.mask_pixels[2].class_id, 2);
  EXPECT_EQ(first.mask_pixels[2].pixels, 1);
  EXPECT_EQ(first.box_classes, (std::vector<std::int32_t>{1, 3}));
  EXPECT_EQ(first.landmark_classes, (std::vector<std::int32_t>{1, 2}));

  EXPECT_FALSE(stats.images[2].mask_valid);
  EXPECT_TRUE(stats.images[2].mask_pixels.empty());
  EXPECT_TRUE(stats.images[2].boxes_valid);
  EXPECT_TRUE(stats.images[2].box_classes.empty());
  EXPECT_FALSE(stats.images[3].boxes_valid);
  ASSERT_EQ(stats.images[3].mask_pixels.size(), 1u);
  EXPECT_EQ(stats.images[3].mask_pixels[0].pixels, 6);
}

TEST(TargetStatistics, TakesTheRowsInTheOrderGiven) {
  const FakeReader reader = small_reader();
  const TargetStatistics stats = target_statistics(reader, {4, 1, 4});
  EXPECT_EQ(reader.reads(), 3);
  ASSERT_EQ(stats.images.size(), 3u);
  EXPECT_EQ(stats.images[0].box_classes, (std::vector<std::int32_t>{2}));
  EXPECT_EQ(stats.images[1].mask_pixels[0].class_id, 3);
  EXPECT_EQ(stats.class_pixels, (std::vector<std::int64_t>{6, 0, 6, 6}));
  EXPECT_EQ(stats.class_mask_images, (std::vector<std::int64_t>{2, 0, 2, 1}));
}

// 200 images of 64 pixels, class (i * 7 + p) % 5 at pixel p when i % 3 != 0, else background.
FakeReader many_reader() {
  std::vector<FakeImage> images(200);
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::vector<std::uint16_t> mask(64, 0);
    if (i % 3 != 0) {
      for (std::size_t p = 0; p < mask.size(); ++p) mask[p] = static_cast<std::uint16_t>((i * 7 + p) % 5);
    }
    images[i].mask = mask;
    images[i].boxes = std::vector<std::int32_t>{static_cast<std::int32_t>(1 + i % 4)};
  }
  return FakeReader({"background", "a", "b", "c", "d"}, 64, std::move(images));
}

TEST(TargetStatistics, SameResultOnOneThreadAndOnMany) {
  const FakeReader reader = many_reader();
  TargetStatisticsOptions one;
  one.threads = 1;
  TargetStatisticsOptions four;
  four.threads = 4;
  std::vector<std::int64_t> rows(reader.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  const TargetStatistics a = target_statistics(reader, rows, one);
  const TargetStatistics b = target_statistics(reader, rows, four);
  EXPECT_EQ(a.class_pixels, b.class_pixels);
  EXPECT_EQ(a.class_mask_images, b.class_mask_images);
  ASSERT_EQ(a.images.size(), b.images.size());
  for (std::size_t i = 0; i < a.images.size(); ++i) {
    ASSERT_EQ(a.images[i].mask_pixels.size(), b.images[i].mask_pixels.size()) << i;
    for (std::size_t k = 0; k < a.images[i].mask_pixels.size(); ++k)
      EXPECT_EQ(a.images[i].mask_pixels[k].pixels, b.images[i].mask_pixels[k].pixels) << i;
  }
  // 67 background masks of 64 pixels; 133 of which each class has 64 / 5 rounded up or down.
  std::int64_t total = 0;
  for (std::int64_t n : a.class_pixels) total += n;
  EXPECT_EQ(total, 200 * 64);
  EXPECT_EQ(a.class_mask_images[0], 200);
  EXPECT_EQ(a.class_mask_images[1], 133);
}

TEST(TargetStatistics, RefusesBadRowsMaskValuesAndLabels) {
  const FakeReader reader = small_reader();
  try {
    target_statistics(reader, {0, 7});
    FAIL() << "row 7 of 5 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rows[1] = 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(target_statistics(reader, {-1}), ConfigError);

  const FakeReader bad_mask(names(), 2, {{std::vector<std::uint16_t>{0, 9}, std::nullopt, std::nullopt}});
  try {
    target_statistics(bad_mask);
    FAIL() << "mask value 9 accepted with 4 classes";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("row 0: mask value 9"), std::string::npos) << e.what();
  }
  const FakeReader bad_box(names(), 0, {{std::nullopt, std::vector<std::int32_t>{0}, std::nullopt}});
  EXPECT_THROW(target_statistics(bad_box), FormatError);  // a box's label is never the background
  const FakeReader no_masks(names(), 0, {{std::vector<std::uint16_t>{}, std::nullopt, std::nullopt}});
  EXPECT_THROW(target_statistics(no_masks), FormatError);

  TargetStatisticsOptions options;
  options.threads = 5000;
  try {
    target_statistics(reader, {0}, options);
    FAIL() << "5000 threads accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("TargetStatisticsOptions.threads"), std::string::npos) << e.what();
  }
}

TEST(TargetSampleWeights, ExactWeightsOfTheHandMadeSet) {
  const TargetStatistics stats = target_statistics(small_reader());
  // Classes (masks and boxes): row 0 {1,2,3}, row 1 {3}, rows 2 and 3 negatives, row 4 {2};
  // images per class: 1 -> 1, 2 -> 2, 3 -> 2; 2 negatives.
  EXPECT_EQ(target_classes_of(stats.images[0], {}), (std::vector<std::int32_t>{1, 2, 3}));
  expect_near(target_sample_weights(stats), {1.0, 0.5, 0.5, 0.5, 0.5}, 1e-12);

  TargetSampleWeightOptions mean;
  mean.combine = MultiLabelCombine::kMean;
  expect_near(target_sample_weights(stats, mean), {2.0 / 3.0, 0.5, 0.5, 0.5, 0.5}, 1e-12);

  // Masks alone: row 2 (mask invalid) is not annotated and gets 0; row 3 is the only negative.
  TargetSampleWeightOptions masks;
  masks.boxes = false;
  expect_near(target_sample_weights(stats, masks), {1.0, 1.0, 0.0, 1.0, 0.5}, 1e-12);

  // Class 2 covers one pixel of row 0: with min_mask_pixels 2 only row 4 holds it.
  TargetSampleWeightOptions min_pixels;
  min_pixels.min_mask_pixels = 2;
  EXPECT_EQ(target_classes_of(stats.images[0], min_pixels), (std::vector<std::int32_t>{1, 3}));
  expect_near(target_sample_weights(stats, min_pixels), {1.0, 0.5, 0.5, 0.5, 1.0}, 1e-12);

  // Boxes alone: rows 1 and 3 are not annotated; row 0 {1,3}, row 2 negative, row 4 {2}.
  TargetSampleWeightOptions boxes;
  boxes.masks = false;
  expect_near(target_sample_weights(stats, boxes), {1.0, 0.0, 1.0, 0.0, 1.0}, 1e-12);
}

TEST(TargetSampleWeights, MirrorMultilabelSampleWeightsOnAnnotatedImages) {
  // Random single- and multi-class images from boxes; the same as a [N, C] 0/1 matrix.
  std::vector<FakeImage> images(300);
  torch::Tensor matrix = torch::zeros({300, 6}, torch::kUInt8);
  std::uint64_t state = 12345;
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::vector<std::int32_t> labels;
    for (std::int32_t c = 1; c <= 6; ++c) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      if ((state >> 33) % (3 * static_cast<std::uint64_t>(c) + 1) == 0) {
        labels.push_back(c);
        matrix[static_cast<std::int64_t>(i)][c - 1] = 1;
      }
    }
    images[i].boxes = labels;
  }
  const TargetStatistics stats =
      target_statistics(FakeReader({"bg", "1", "2", "3", "4", "5", "6"}, 0, std::move(images)));
  for (MultiLabelCombine combine : {MultiLabelCombine::kMax, MultiLabelCombine::kMean}) {
    TargetSampleWeightOptions options;
    options.combine = combine;
    expect_near(target_sample_weights(stats, options), multilabel_sample_weights(matrix, combine), 1e-12);
  }
}

// Sizes of the groups of the balance test: 60 liver, 15 tumour, 5 vessel (boxes only), 20
// negatives, 10 unannotated images.
FakeReader imbalanced_reader() {
  std::vector<FakeImage> images;
  const auto add = [&](std::size_t n, const FakeImage& image) { images.insert(images.end(), n, image); };
  add(60, {std::vector<std::uint16_t>{0, 1, 1, 0}, std::nullopt, std::nullopt});
  add(15, {std::vector<std::uint16_t>{2, 0, 0, 0}, std::nullopt, std::nullopt});
  add(5, {std::nullopt, std::vector<std::int32_t>{3}, std::nullopt});
  add(20, {std::vector<std::uint16_t>{0, 0, 0, 0}, std::nullopt, std::nullopt});
  add(10, {std::nullopt, std::nullopt, std::nullopt});
  // Interleave, so a group is not a contiguous index range.
  std::vector<FakeImage> shuffled(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) shuffled[(i * 37) % images.size()] = images[i];
  return FakeReader(names(), 4, std::move(shuffled));
}

// Group of an image: 0..2 its class - 1, 3 negative, 4 not annotated.
std::size_t group_of(const ImageTargets& image) {
  if (!image.mask_valid && !image.boxes_valid) return 4;
  const std::vector<std::int32_t> classes = target_classes_of(image, {});
  return classes.empty() ? 3 : static_cast<std::size_t>(classes.front() - 1);
}

TEST(TargetSampleWeights, WeightedRandomSamplerDrawsEveryClassAndTheNegativesEquallyOften) {
  const TargetStatistics stats = target_statistics(imbalanced_reader());
  const std::vector<double> weights = target_sample_weights(stats);
  constexpr std::size_t kDraws = 40000;
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    WeightedRandomSampler sampler(weights, {seed, kDraws});
    std::vector<double> observed(5, 0.0);
    for (std::size_t i : testing::drain(sampler, 1000)) observed[group_of(stats.images[i])] += 1.0;
    EXPECT_EQ(observed[4], 0.0) << "an image with no valid target was drawn";
    EXPECT_GT(testing::chi_square_p_value(observed, {1, 1, 1, 1, 0}), testing::kAlpha) << "seed " << seed;
    // Each share 1/4 within 4 binomial standard deviations.
    const double sd = std::sqrt(kDraws * 0.25 * 0.75);
    for (std::size_t g = 0; g < 4; ++g) EXPECT_NEAR(observed[g], kDraws / 4.0, 4 * sd) << "group " << g;
  }
}

TEST(TargetSampleWeights, RefusesNoSelectedKindAndNoAnnotatedImage) {
  const TargetStatistics stats = target_statistics(small_reader());
  TargetSampleWeightOptions none;
  none.masks = none.boxes = none.landmarks = false;
  EXPECT_THROW(target_sample_weights(stats, none), ConfigError);
  TargetSampleWeightOptions zero;
  zero.min_mask_pixels = 0;
  try {
    target_sample_weights(stats, zero);
    FAIL() << "min_mask_pixels 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("min_mask_pixels = 0"), std::string::npos) << e.what();
  }
  const TargetStatistics unannotated =
      target_statistics(FakeReader(names(), 4, {{std::nullopt, std::nullopt, std::nullopt}}));
  try {
    target_sample_weights(unannotated);
    FAIL() << "weights for a set without targets";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("none of the 1 images"), std::string::npos) << e.what();
  }
}

TEST(PixelClassWeights, MedianFrequencyBalancingOfTheHandMadeSet) {
  const TargetStatistics stats = target_statistics(small_reader());
  // freq = pixels / pixels of the masks holding the class: 11/18, 3/6, 4/12, 6/6; median of the
  // four = (1/2 + 11/18) / 2 = 5/9.
  expect_near(values(pixel_class_weights(stats)), {10.0 / 11.0, 10.0 / 9.0, 5.0 / 3.0, 5.0 / 9.0});
}

TEST(PixelClassWeights, ClassWeightingSchemesOverPixelCountsAreClassWeights) {
  const TargetStatistics stats = target_statistics(small_reader());
  PixelWeightOptions options;
  options.weighting = PixelWeighting::kClassWeighting;
  // Inverse frequency of pixels {11, 3, 4, 6}, normalised to sum 4: 528 / (111 n_c).
  expect_near(values(pixel_class_weights(stats, options)),
              {528.0 / 1221.0, 528.0 / 333.0, 528.0 / 444.0, 528.0 / 666.0});
  for (ClassWeighting scheme :
       {ClassWeighting::kSqrtInverse, ClassWeighting::kBalanced, ClassWeighting::kEffectiveNumber}) {
    options.class_weighting = {scheme, 0.9};
    expect_near(values(pixel_class_weights(stats, options)),
                values(class_weights({11, 3, 4, 6}, options.class_weighting)));
  }
}

TEST(PixelClassWeights, AClassWithoutPixelsIsAnErrorNamingItOrWeighsZero) {
  std::vector<std::string> five = names();
  five.push_back("kidney");
  const FakeReader reader(five, 6,
                          {{std::vector<std::uint16_t>{0, 0, 1, 1, 1, 2}, std::nullopt, std::nullopt},
                           {std::vector<std::uint16_t>{3, 3, 3, 3, 3, 3}, std::nullopt, std::nullopt},
                           {std::vector<std::uint16_t>{0, 0, 0, 0, 0, 0}, std::nullopt, std::nullopt},
                           {std::vector<std::uint16_t>{2, 0, 2, 0, 2, 0}, std::nullopt, std::nullopt}});
  const TargetStatistics stats = target_statistics(reader);
  try {
    pixel_class_weights(stats);
    FAIL() << "a class with no pixels got a weight";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("class 4 (\"kidney\")"), std::string::npos) << e.what();
  }
  PixelWeightOptions options;
  options.zero_absent_classes = true;
  // The same masks as the hand-made set: the present classes weigh as there.
  expect_near(values(pixel_class_weights(stats, options)),
              {10.0 / 11.0, 10.0 / 9.0, 5.0 / 3.0, 5.0 / 9.0, 0.0});
  options.weighting = PixelWeighting::kClassWeighting;
  expect_near(values(pixel_class_weights(stats, options)),
              {528.0 / 1221.0, 528.0 / 333.0, 528.0 / 444.0, 528.0 / 666.0, 0.0});
}

TEST(PixelClassWeights, RefusesASetWithoutValidMasks) {
  const TargetStatistics stats =
      target_statistics(FakeReader(names(), 4, {{std::nullopt, std::vector<std::int32_t>{1}, std::nullopt}}));
  EXPECT_THROW(pixel_class_weights(stats), ConfigError);
}

}  // namespace
}  // namespace medload::samplers
