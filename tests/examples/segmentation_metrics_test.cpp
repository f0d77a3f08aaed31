#include "segmentation_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "medload/core/error.h"

using medload::examples::SegmentationConfusion;

TEST(SegmentationMetrics, GiveHandComputedDiceIouAndAccuracy) {
  SegmentationConfusion c(3);
  const std::vector<std::int64_t> truth = {0, 0, 1, 1, 2, 2};
  const std::vector<std::int64_t> pred = {0, 1, 1, 1, 2, 0};
  c.add(truth.data(), pred.data(), truth.size());
  const auto m = c.metrics();
  EXPECT_EQ(m.images, 1u);
  EXPECT_EQ(m.pixels, 6);
  EXPECT_DOUBLE_EQ(m.pixel_accuracy, 4.0 / 6.0);
  // class 0: TP 1, |T| 2, |P| 2; class 1: TP 2, |T| 2, |P| 3; class 2: TP 1, |T| 2, |P| 1.
  EXPECT_DOUBLE_EQ(m.dice[0], 2.0 * 1 / 4);
  EXPECT_DOUBLE_EQ(m.dice[1], 2.0 * 2 / 5);
  EXPECT_DOUBLE_EQ(m.dice[2], 2.0 * 1 / 3);
  EXPECT_DOUBLE_EQ(m.iou[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.iou[2], 1.0 / 2);
  EXPECT_DOUBLE_EQ(m.mean_dice, (0.8 + 2.0 / 3) / 2);  // foreground classes only
  EXPECT_EQ(m.support, (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_EQ(m.confusion, (std::vector<std::vector<std::int64_t>>{{1, 1, 0}, {0, 2, 0}, {1, 0, 1}}));
}

TEST(SegmentationMetrics, PoolPixelsOverImages) {
  // Per image, class 1's Dice would be 1 and 0; pooled it is 2*1/(1+2).
  SegmentationConfusion c(2);
  const std::vector<std::int64_t> t1 = {1, 0}, p1 = {1, 0}, t2 = {0, 0}, p2 = {1, 0};
  c.add(t1.data(), p1.data(), 2);
  c.add(t2.data(), p2.data(), 2);
  const auto m = c.metrics();
  EXPECT_EQ(m.images, 2u);
  EXPECT_DOUBLE_EQ(m.dice[1], 2.0 / 3);
  SegmentationConfusion once(2);
  const std::vector<std::int64_t> t = {1, 0, 0, 0}, p = {1, 0, 1, 0};
  once.add(t.data(), p.data(), 4, 2);
  EXPECT_EQ(once.metrics().confusion, m.confusion);
  EXPECT_EQ(once.metrics().images, 2u);
}

TEST(SegmentationMetrics, LeaveAClassAbsentFromTruthAndPredictionUndefined) {
  SegmentationConfusion c(4);
  const std::vector<std::int64_t> truth = {0, 1, 1, 2}, pred = {0, 1, 1, 2};
  c.add(truth.data(), pred.data(), truth.size());
  const auto m = c.metrics();
  EXPECT_DOUBLE_EQ(m.dice[1], 1.0);
  EXPECT_DOUBLE_EQ(m.dice[2], 1.0);
  EXPECT_TRUE(std::isnan(m.dice[3]));
  EXPECT_DOUBLE_EQ(m.mean_dice, 1.0);  // class 3 is not averaged in as 0 or 1
  const auto j = m.to_json({"background", "a", "b", "c"});
  EXPECT_TRUE(j["dice"]["c"].is_null());
  EXPECT_DOUBLE_EQ(j["dice"]["a"].get<double>(), 1.0);
  EXPECT_EQ(j["support"]["a"].get<int>(), 2);
  EXPECT_DOUBLE_EQ(j["pixel_accuracy"].get<double>(), 1.0);
  EXPECT_THROW(m.to_json({"too", "few"}), medload::ConfigError);
  // A class predicted but never true has Dice 0, and counts in the mean.
  SegmentationConfusion wrong(3);
  const std::vector<std::int64_t> t = {0, 1}, p = {2, 1};
  wrong.add(t.data(), p.data(), 2);
  EXPECT_DOUBLE_EQ(wrong.metrics().dice[2], 0.0);
  EXPECT_DOUBLE_EQ(wrong.metrics().mean_dice, 0.5);
}

TEST(SegmentationMetrics, RejectIdsOutOfRangeWithoutCountingThem) {
  SegmentationConfusion c(3);
  const std::vector<std::int64_t> truth = {0, 1, 3}, pred = {0, 1, 1};
  try {
    c.add(truth.data(), pred.data(), 3);
    FAIL() << "no error";
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("truth pixel 2 is 3; classes are 0..2"), std::string::npos)
        << e.what();
  }
  const std::vector<std::int64_t> negative = {0, -1, 0};
  EXPECT_THROW(c.add(pred.data(), negative.data(), 3), medload::ConfigError);
  EXPECT_EQ(c.metrics().pixels, 0);
  EXPECT_TRUE(std::isnan(c.metrics().pixel_accuracy));
  EXPECT_TRUE(std::isnan(c.metrics().mean_dice));
  EXPECT_THROW(SegmentationConfusion(1), medload::ConfigError);
}
