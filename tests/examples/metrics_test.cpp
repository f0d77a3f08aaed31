#include "metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "medload/core/error.h"

using medload::examples::classification_metrics;
using medload::examples::roc_auc;

namespace {

// The definition: the fraction of (positive, negative) pairs ordered correctly, ties one half.
double brute_force_auc(const std::vector<double>& s, const std::vector<bool>& pos) {
  double wins = 0.0, pairs = 0.0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (!pos[i] || pos[j]) continue;
      pairs += 1.0;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

}  // namespace

TEST(RocAuc, MatchesHandComputedCases) {
  // scikit-learn's documented example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {false, false, true, true}), 0.75);
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {false, false, true, true}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.8, 0.2, 0.1}, {false, false, true, true}), 0.0);
}

TEST(RocAuc, CountsTiesAsOneHalf) {
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5}, {true, false}), 0.5);
  // pos 0.5 beats 0.1 (1), ties 0.5 (0.5); pos 0.9 beats both (2): 3.5 of 4 pairs.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.5, 0.5, 0.9}, {false, true, false, true}), 0.875);
}

TEST(RocAuc, EqualsThePairwiseDefinitionOnRandomScoresWithTies) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> level(0, 20);  // few levels: many ties
  std::bernoulli_distribution coin(0.3);
  std::vector<double> s(500);
  std::vector<bool> pos(500);
  for (std::size_t i = 0; i < s.size(); ++i) {
    s[i] = level(rng) / 20.0;
    pos[i] = coin(rng);
  }
  EXPECT_NEAR(roc_auc(s, pos), brute_force_auc(s, pos), 1e-12);
}

TEST(RocAuc, IsNaNWithoutBothClassesAndRejectsBadInput) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {true, true})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {false, false})));
  EXPECT_THROW(roc_auc({0.1}, {true, false}), medload::ConfigError);
  EXPECT_THROW(roc_auc({std::nan(""), 0.2}, {true, false}), medload::ConfigError);
}

TEST(ClassificationMetrics, ExactOnAHandMadeThreeClassCase) {
  const std::vector<std::int64_t> labels = {0, 0, 0, 1, 1, 2};
  const std::vector<double> scores = {0.7, 0.2, 0.1,   // -> 0
                                      0.6, 0.3, 0.1,   // -> 0
                                      0.2, 0.5, 0.3,   // -> 1 (wrong)
                                      0.1, 0.8, 0.1,   // -> 1
                                      0.3, 0.3, 0.4,   // -> 2 (wrong)
                                      0.2, 0.2, 0.6};  // -> 2
  const auto m = classification_metrics(labels, scores, 3);
  EXPECT_EQ(m.samples, 6u);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.recall[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall[1], 0.5);
  EXPECT_DOUBLE_EQ(m.recall[2], 1.0);
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, (2.0 / 3.0 + 0.5 + 1.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.class_roc_auc[0], 7.5 / 9.0);
  EXPECT_DOUBLE_EQ(m.class_roc_auc[1], 6.5 / 8.0);
  EXPECT_DOUBLE_EQ(m.class_roc_auc[2], 1.0);
  EXPECT_DOUBLE_EQ(m.roc_auc, (7.5 / 9.0 + 6.5 / 8.0 + 1.0) / 3.0);
  const std::vector<std::vector<std::int64_t>> confusion = {{2, 1, 0}, {0, 1, 1}, {0, 0, 1}};
  EXPECT_EQ(m.confusion, confusion);
  EXPECT_EQ(m.support, (std::vector<std::int64_t>{3, 2, 1}));
}

TEST(ClassificationMetrics, BinaryAucIsThePositiveClassScoreAuc) {
  const std::vector<std::int64_t> labels = {0, 0, 1, 1};
  const std::vector<double> scores = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
  const auto m = classification_metrics(labels, scores, 2);
  EXPECT_DOUBLE_EQ(m.roc_auc, 0.75);            // class-1 scores 0.1, 0.4, 0.35, 0.8
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);           // predictions 0, 0, 0, 1
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, 0.75);  // recall 1 and 0.5
}

TEST(ClassificationMetrics, SkipsUnlabeledAndExcludesAbsentClassesFromBalancedAccuracy) {
  const std::vector<std::int64_t> labels = {0, -1, 1, 1};
  const std::vector<double> scores = {1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1};
  const auto m = classification_metrics(labels, scores, 3);
  EXPECT_EQ(m.samples, 3u);
  EXPECT_TRUE(std::isnan(m.recall[2]));
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, (1.0 + 0.5) / 2.0);
  EXPECT_TRUE(std::isnan(m.class_roc_auc[2]));
  const auto j = m.to_json({"a", "b", "c"});
  EXPECT_TRUE(j["recall"]["c"].is_null());
  EXPECT_DOUBLE_EQ(j["recall"]["b"].get<double>(), 0.5);
}

TEST(ClassificationMetrics, ArgMaxTiesGoToTheLowestClass) {
  const auto m = classification_metrics({1}, {0.5, 0.5}, 2);
  EXPECT_EQ(m.confusion[1][0], 1);
}

TEST(ClassificationMetrics, RejectsInconsistentInputNamingIt) {
  EXPECT_THROW(classification_metrics({0, 1}, {0.1, 0.9}, 2), medload::ConfigError);
  EXPECT_THROW(classification_metrics({0}, {0.1}, 0), medload::ConfigError);
  try {
    classification_metrics({0, 3}, {1, 0, 0, 1}, 2);
    FAIL() << "a label out of range was accepted";
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("label 1 is 3"), std::string::npos) << e.what();
  }
}
