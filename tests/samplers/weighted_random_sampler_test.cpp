#include "medload/samplers/weighted_random_sampler.h"

#include <gtest/gtest.h>

#include <vector>

#include "medload/core/error.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using testing::drain;

TEST(WeightedRandomSampler, DrawnFrequenciesPassChiSquare) {
  const std::vector<double> weights{5, 1, 1, 0.25, 10, 3, 0, 2};
  WeightedRandomSampler sampler(weights, {/*seed=*/123, /*num_samples=*/300000});
  std::vector<double> observed(weights.size(), 0.0);
  for (std::size_t i : drain(sampler, 1000)) observed[i] += 1.0;
  EXPECT_EQ(observed[6], 0.0);
  EXPECT_GT(testing::chi_square_p_value(observed, weights), testing::kAlpha);
}

TEST(WeightedRandomSampler, EpochHasNumSamplesDefaultingToN) {
  WeightedRandomSampler sampler(std::vector<double>(37, 1.0));
  EXPECT_EQ(sampler.size(), 37u);
  EXPECT_EQ(drain(sampler, 10).size(), 37u);
  EXPECT_FALSE(sampler.next(10).has_value());
  WeightedRandomSampler longer(std::vector<double>(37, 1.0), {0, 100});
  EXPECT_EQ(drain(longer, 7).size(), 100u);
}

TEST(WeightedRandomSampler, CorrectBeyondTwoToThe24Categories) {
  // torch.multinomial refuses more than 2^24 categories. Put known mass on the last indices and
  // check their frequencies: 3 cells {N-1: 1/2, N-2: 1/4, rest: 1/4}.
  const std::size_t n = (std::size_t{1} << 24) + 1;
  std::vector<double> weights(n, 1.0);
  const double rest = static_cast<double>(n - 2);
  weights[n - 1] = 2.0 * rest;
  weights[n - 2] = rest;
  WeightedRandomSampler sampler(weights, {9, 400000});
  std::vector<double> observed(3, 0.0);
  for (std::size_t i : drain(sampler, 4096)) {
    ASSERT_LT(i, n);
    observed[i == n - 1 ? 0 : (i == n - 2 ? 1 : 2)] += 1.0;
  }
  EXPECT_GT(testing::chi_square_p_value(observed, {0.5, 0.25, 0.25}), testing::kAlpha);
}

TEST(WeightedRandomSampler, SameSeedAndEpochGiveTheSameStreamAndSetEpochChangesIt) {
  const std::vector<double> weights(1000, 1.0);
  WeightedRandomSampler a(weights, {42}), b(weights, {42}), c(weights, {43});
  const auto first = a.epoch_indices();
  EXPECT_EQ(first, b.epoch_indices());
  EXPECT_NE(first, c.epoch_indices());
  a.set_epoch(1);
  EXPECT_NE(first, a.epoch_indices());
  a.set_epoch(0);
  EXPECT_EQ(first, a.epoch_indices());
}

TEST(WeightedRandomSampler, ResumedSamplerYieldsExactlyTheIndicesThatWereLeft) {
  const std::vector<double> weights{1, 2, 3, 4, 5, 6, 7, 8, 9};
  WeightedRandomSampler original(weights, {77, 1000});
  original.set_epoch(3);
  for (int i = 0; i < 5; ++i) original.next(33);
  const std::string state = testing::save_state(original);
  const auto rest = drain(original, 33);

  WeightedRandomSampler resumed(weights, {0, 1000});
  testing::load_state(resumed, state);
  EXPECT_EQ(resumed.epoch(), 3u);
  EXPECT_EQ(resumed.seed(), 77u);
  resumed.reset();  // what a data loader does first: keeps the loaded position once
  EXPECT_EQ(drain(resumed, 50), rest);
  resumed.reset();
  EXPECT_EQ(resumed.position(), 0u);
}

TEST(WeightedRandomSampler, LoadRejectsTheStateOfAnotherConfiguration) {
  WeightedRandomSampler a(std::vector<double>{1, 2, 3}, {1});
  WeightedRandomSampler b(std::vector<double>{1, 2, 4}, {1});
  const std::string state = testing::save_state(a);
  try {
    testing::load_state(b, state);
    FAIL() << "loaded a state of different weights";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("fingerprint"), std::string::npos) << e.what();
  }
}

TEST(WeightedRandomSampler, CopiesShareTheCursorAsADataLoaderNeeds) {
  WeightedRandomSampler a(std::vector<double>(100, 1.0), {5});
  WeightedRandomSampler copy = a;
  copy.next(10);
  EXPECT_EQ(a.position(), 10u);
  a.set_epoch(2);
  EXPECT_EQ(copy.epoch(), 2u);
  EXPECT_EQ(copy.position(), 0u);
}

TEST(WeightedRandomSampler, BadBatchSizesAndResetSizesNameTheValue) {
  WeightedRandomSampler sampler(std::vector<double>(10, 1.0));
  try {
    sampler.next(11);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size = 11"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sampler.next(0), ConfigError);
  try {
    sampler.reset(12);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("new_size = 12"), std::string::npos) << e.what();
  }
  sampler.reset(10);
}

TEST(WeightedRandomSampler, RejectsBadWeightsNamingTheValue) {
  try {
    WeightedRandomSampler sampler(std::vector<double>{1.0, 0.5, -0.5});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("weights[2] = -0.5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WeightedRandomSampler(std::vector<double>{}), ConfigError);
  EXPECT_THROW(WeightedRandomSampler(std::vector<double>{0.0}), ConfigError);
}

}  // namespace
}  // namespace medload::samplers
