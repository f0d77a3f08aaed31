#include "medload/samplers/balanced_batch_sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "medload/core/error.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using testing::labels_with_counts;

TEST(BalancedBatchSampler, EveryBatchHoldsKOfEachOfPDistinctClasses) {
  const auto labels = labels_with_counts({500, 120, 60, 30, 9});
  BalancedBatchSamplerOptions options;
  options.classes_per_batch = 3;
  options.samples_per_class = 4;
  options.seed = 31;
  BalancedBatchSampler sampler(labels, options);
  ASSERT_EQ(sampler.batch_size(), 12u);
  EXPECT_EQ(sampler.size(), (719u / 12u) * 12u);
  while (auto batch = sampler.next(sampler.batch_size())) {
    ASSERT_EQ(batch->size(), 12u);
    std::set<std::int64_t> classes;
    for (std::size_t g = 0; g < 3; ++g) {
      const std::int64_t cls = labels[(*batch)[g * 4]];
      classes.insert(cls);
      for (std::size_t s = 0; s < 4; ++s) EXPECT_EQ(labels[(*batch)[g * 4 + s]], cls);
    }
    EXPECT_EQ(classes.size(), 3u);
  }
}

TEST(BalancedBatchSampler, ClassesAreChosenUniformlyByChiSquare) {
  const auto labels = labels_with_counts({500, 120, 60, 30, 9});
  BalancedBatchSamplerOptions options;
  options.classes_per_batch = 2;
  options.samples_per_class = 2;
  options.num_batches = 5000;
  options.seed = 32;
  BalancedBatchSampler sampler(labels, options);
  std::vector<double> observed(5, 0.0);
  for (std::size_t i : sampler.epoch_indices()) observed[static_cast<std::size_t>(labels[i])] += 1.0;
  EXPECT_GT(testing::chi_square_p_value(observed, {1, 1, 1, 1, 1}), testing::kAlpha);
}

TEST(BalancedBatchSampler, DrawsWithoutReplacementInsideAClassUntilItIsExhausted) {
  const auto labels = labels_with_counts({40, 40});
  BalancedBatchSamplerOptions options;
  options.classes_per_batch = 2;
  options.samples_per_class = 5;
  options.num_batches = 8;  // 40 draws per class: one full cycle each
  options.seed = 33;
  BalancedBatchSampler sampler(labels, options);
  const auto indices = sampler.epoch_indices();
  EXPECT_EQ(std::set<std::size_t>(indices.begin(), indices.end()).size(), 80u);
}

TEST(BalancedBatchSampler, ResumeYieldsTheRemainingBatches) {
  const auto labels = labels_with_counts({50, 20, 10});
  BalancedBatchSamplerOptions options;
  options.classes_per_batch = 2;
  options.samples_per_class = 3;
  options.seed = 34;
  BalancedBatchSampler original(labels, options);
  original.set_epoch(2);
  original.next(6);
  const std::string state = testing::save_state(original);
  const auto rest = testing::drain(original, 6);
  BalancedBatchSampler resumed(labels, options);
  testing::load_state(resumed, state);
  EXPECT_EQ(testing::drain(resumed, 6), rest);
}

TEST(BalancedBatchSampler, BadOptionsNameTheValue) {
  const auto labels = labels_with_counts({5, 5});
  auto error = [&](std::size_t p, std::size_t k) -> std::string {
    BalancedBatchSamplerOptions options;
    options.classes_per_batch = p;
    options.samples_per_class = k;
    try {
      BalancedBatchSampler sampler(labels, options);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error(3, 1).find("classes_per_batch is 3; allowed 1..2"), std::string::npos);
  EXPECT_NE(error(0, 1).find("classes_per_batch is 0; allowed 1..2"), std::string::npos);
  EXPECT_NE(error(2, 0).find("samples_per_class = 0"), std::string::npos);
  EXPECT_NE(error(2, 6).find("= 12 is larger than the dataset (10 samples)"), std::string::npos);
}

}  // namespace
}  // namespace medload::samplers
