#include "medload/samplers/alias_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/counter_rng.h"
#include "stats.h"

namespace medload::samplers {
namespace {

std::string error_of(const std::vector<double>& weights) {
  try {
    AliasTable table(weights);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(AliasTable, EffectiveProbabilitiesMatchTheWeights) {
  std::vector<double> weights(1000);
  CounterRng rng(5, 0);
  for (double& w : weights) w = rng.next_double() * rng.next_double() * 100.0;
  weights[17] = 0.0;
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  AliasTable table(weights);
  const std::vector<double> p = table.effective_probabilities();
  for (std::size_t i = 0; i < weights.size(); ++i) {
    EXPECT_NEAR(p[i], weights[i] / total, 1e-9) << "index " << i;
  }
  EXPECT_EQ(p[17], 0.0);
  EXPECT_EQ(table.memory_bytes(), 1000u * 8u);
}

TEST(AliasTable, ZeroWeightIsNeverDrawnAndSingleCategoryAlwaysIs) {
  AliasTable table({0.0, 3.0, 0.0});
  for (std::uint64_t k = 0; k < 10000; ++k) EXPECT_EQ(table.draw(random_u64(1, k), 0), 1u);
}

TEST(AliasTable, DrawsFollowTheWeightsByChiSquare) {
  const std::vector<double> weights{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0.5};
  AliasTable table(weights);
  std::vector<double> observed(weights.size(), 0.0);
  const std::uint64_t key = stream_key(11, 0);
  for (std::uint64_t k = 0; k < 500000; ++k) observed[table.draw(random_u64(key, k), 0)] += 1.0;
  EXPECT_GT(testing::chi_square_p_value(observed, weights), testing::kAlpha);
}

TEST(AliasTable, PrefetchingStreamDrawsEqualSingleDraws) {
  std::vector<double> weights(100000);
  CounterRng rng(6, 0);
  for (double& w : weights) w = rng.next_double();
  AliasTable table(weights);
  const std::uint64_t key = stream_key(3, 1);
  std::vector<std::size_t> out(1000);
  table.draw_stream(key, 5, 3, out.size(), out.data());
  for (std::size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(out[i], table.draw(random_u64(key, 5 + 3 * i), 0)) << i;
}

TEST(AliasTable, RejectsBadWeightsNamingIndexAndValue) {
  EXPECT_NE(error_of({}).find("zero samples"), std::string::npos);
  EXPECT_NE(error_of({0.0, 0.0}).find("all 2 weights are zero"), std::string::npos);
  EXPECT_NE(error_of({1.0, -2.0}).find("weights[1] = -2"), std::string::npos);
  EXPECT_NE(error_of({1.0, 1.0, std::nan("")}).find("weights[2] = nan"), std::string::npos);
  EXPECT_NE(error_of({std::numeric_limits<double>::infinity()}).find("weights[0] = inf"), std::string::npos);
}

}  // namespace
}  // namespace medload::samplers
