#include "medload/samplers/class_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

std::vector<double> values(const torch::Tensor& t) {
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_EQ(t.dim(), 1);
  std::vector<double> v;
  for (std::int64_t i = 0; i < t.size(0); ++i) v.push_back(t[i].item<double>());
  return v;
}

void expect_near(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], 1e-5 * std::max(1.0, expected[i])) << i;
}

TEST(ClassWeights, ExactValuesForEveryScheme) {
  const std::vector<std::int64_t> counts{10, 30, 60};
  // 1/n normalised to sum C = 3: (0.1, 0.0333, 0.01667) * 3 / 0.15.
  expect_near(values(class_weights(counts, {ClassWeighting::kInverseFrequency})),
              {2.0, 2.0 / 3.0, 1.0 / 3.0});
  const double s = 1 / std::sqrt(10.0) + 1 / std::sqrt(30.0) + 1 / std::sqrt(60.0);
  expect_near(values(class_weights(counts, {ClassWeighting::kSqrtInverse})),
              {3 / std::sqrt(10.0) / s, 3 / std::sqrt(30.0) / s, 3 / std::sqrt(60.0) / s});
  expect_near(values(class_weights(counts, {ClassWeighting::kBalanced})),
              {100.0 / 30, 100.0 / 90, 100.0 / 180});
  // Cui et al.: (1 - beta) / (1 - beta^n), beta = 0.9, normalised to sum C.
  std::vector<double> en;
  double sum = 0;
  for (double n : {10.0, 30.0, 60.0}) {
    en.push_back(0.1 / (1 - std::pow(0.9, n)));
    sum += en.back();
  }
  for (double& v : en) v *= 3 / sum;
  expect_near(values(class_weights(counts, {ClassWeighting::kEffectiveNumber, 0.9})), en);
  // beta -> 0 gives uniform weights.
  expect_near(values(class_weights(counts, {ClassWeighting::kEffectiveNumber, 0.0})), {1, 1, 1});
}

TEST(ClassWeights, RejectsEmptyClassesAndBadBeta) {
  try {
    class_weights({4, 0, 2});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("class 1 has count 0"), std::string::npos) << e.what();
  }
  try {
    class_weights({4, 2}, {ClassWeighting::kEffectiveNumber, 1.0});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("beta = 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(class_weighting_from_string("focal"), ConfigError);
  EXPECT_EQ(class_counts({2, 0, 2, 2}), (std::vector<std::int64_t>{1, 0, 3}));
  EXPECT_THROW(class_counts({0, 5}, 3), ConfigError);
}

TEST(ClassWeights, PosWeightIsNegativesOverPositives) {
  const torch::Tensor targets = torch::tensor({1, 0, 0, 1, 1, 1, 0, 0, 1, 0}, torch::kInt64).reshape({5, 2});
  expect_near(values(pos_weight(targets)), {2.0 / 3.0, 3.0 / 2.0});
  try {
    pos_weight(torch::tensor({1, 0, 1, 0}, torch::kInt64).reshape({2, 2}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("class 0 has 2 positives of 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pos_weight(torch::ones({3})), ConfigError);
}

TEST(ClassWeights, MultiLabelSampleWeightsFromLabelFrequencies) {
  // 4 samples, 3 labels: label 0 in 3 samples, label 1 in 1, label 2 in 2; sample 3 has none.
  const torch::Tensor targets =
      torch::tensor({1, 0, 1, /**/ 1, 1, 0, /**/ 1, 0, 1, /**/ 0, 0, 0}, torch::kFloat32).reshape({4, 3});
  const auto max_w = multilabel_sample_weights(targets, MultiLabelCombine::kMax);
  ASSERT_EQ(max_w.size(), 4u);
  EXPECT_DOUBLE_EQ(max_w[0], 0.5);
  EXPECT_DOUBLE_EQ(max_w[1], 1.0);
  EXPECT_DOUBLE_EQ(max_w[2], 0.5);
  EXPECT_DOUBLE_EQ(max_w[3], 1.0);  // the only "no finding" sample
  const auto mean_w = multilabel_sample_weights(targets, MultiLabelCombine::kMean);
  EXPECT_DOUBLE_EQ(mean_w[0], (1.0 / 3 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(mean_w[1], (1.0 / 3 + 1.0) / 2);
}

TEST(ClassWeights, PosWeightCountsOnlyKnownEntries) {
  // Class 0: positives {0, 1}, negatives {2}, unknown {3, 4} -> 1/2.
  // Class 1: positives {4}, negatives {0, 1, 3}, unknown {2} -> 3/1.
  const torch::Tensor targets =
      torch::tensor({1, 0, /**/ 1, 0, /**/ 0, -1, /**/ -1, 0, /**/ -1, 1}, torch::kInt64).reshape({5, 2});
  expect_near(values(pos_weight(targets)), {0.5, 3.0});
  // As CacheDataset serves them (int64) or as a float mask-aware target: the same.
  expect_near(values(pos_weight(targets.to(torch::kFloat32))), {0.5, 3.0});
  try {
    // Class 0 has positives only among its known entries.
    pos_weight(torch::tensor({1, 0, /**/ -1, 1, /**/ 1, 0}, torch::kInt8).reshape({3, 2}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(
        std::string(e.what()).find("class 0 has 2 positives of 2 samples whose value is known (1 unknown)"),
        std::string::npos)
        << e.what();
  }
}

TEST(ClassWeights, MultiLabelSampleWeightsIgnoreUnknownEntries) {
  // Label 0 positive in samples 0 and 1 (unknown in 2); label 1 positive in sample 1 only.
  // Sample 2 has no positive but a known 0: "no finding", with sample 3. Sample 4 is unknown
  // throughout: weight 0, never drawn.
  const torch::Tensor targets =
      torch::tensor({1, -1, /**/ 1, 1, /**/ -1, 0, /**/ 0, 0, /**/ -1, -1}, torch::kInt64).reshape({5, 2});
  const auto w = multilabel_sample_weights(targets, MultiLabelCombine::kMax);
  ASSERT_EQ(w.size(), 5u);
  EXPECT_DOUBLE_EQ(w[0], 0.5);
  EXPECT_DOUBLE_EQ(w[1], 1.0);
  EXPECT_DOUBLE_EQ(w[2], 0.5);
  EXPECT_DOUBLE_EQ(w[3], 0.5);
  EXPECT_DOUBLE_EQ(w[4], 0.0);
  EXPECT_DOUBLE_EQ(multilabel_sample_weights(targets, MultiLabelCombine::kMean)[1], (0.5 + 1.0) / 2);
}

TEST(ClassWeights, InverseFrequencyWeightsBalanceAWeightedSamplerByChiSquare) {
  const auto labels = testing::labels_with_counts({1000, 100, 10});
  WeightedRandomSampler sampler(inverse_frequency_sample_weights(labels), {51, 30000});
  std::vector<double> observed(3, 0.0);
  for (std::size_t i : sampler.epoch_indices()) observed[static_cast<std::size_t>(labels[i])] += 1.0;
  EXPECT_GT(testing::chi_square_p_value(observed, {1, 1, 1}), testing::kAlpha);
}

TEST(ClassWeights, WarnsWhenSamplerAndLossBothCorrectTheImbalance) {
  const auto labels = testing::labels_with_counts({90, 10});
  ClassBalancedSampler balanced(labels, testing::mode_options(BalanceMode::kOversample, 1));
  const torch::Tensor weights = class_weights(class_counts(labels));
  const auto warning = double_correction_warning(balanced, weights);
  ASSERT_TRUE(warning.has_value());
  EXPECT_NE(warning->find("oversample"), std::string::npos) << *warning;
  EXPECT_FALSE(double_correction_warning(balanced, torch::ones({2})).has_value());
}

}  // namespace
}  // namespace medload::samplers
