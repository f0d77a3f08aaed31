#include "medload/samplers/counter_rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "stats.h"

namespace medload::samplers {
namespace {

TEST(CounterRng, DrawIsAPureFunctionOfSeedStreamAndCounter) {
  CounterRng a(7, 3);
  for (int i = 0; i < 10; ++i) a.next_u64();
  CounterRng b(7, 3, 10);
  EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(CounterRng(7, 3).next_u64(), CounterRng(7, 4).next_u64());
  EXPECT_NE(CounterRng(7, 3).next_u64(), CounterRng(8, 3).next_u64());
}

TEST(CounterRng, BoundedDrawsAreUniformByChiSquare) {
  CounterRng rng(2024, 1);
  const std::size_t cells = 37;
  std::vector<double> observed(cells, 0.0);
  for (int i = 0; i < 370000; ++i) observed[rng.next_below(cells)] += 1.0;
  EXPECT_GT(testing::chi_square_p_value(observed, std::vector<double>(cells, 1.0)), testing::kAlpha);
}

TEST(CounterRng, ShuffleIsAPermutationWithUniformPositions) {
  // Where element 0 lands over many shuffles of 8 elements: uniform over the 8 positions.
  std::vector<double> observed(8, 0.0);
  for (std::uint64_t s = 0; s < 40000; ++s) {
    std::vector<int> values{0, 1, 2, 3, 4, 5, 6, 7};
    CounterRng rng(99, s);
    shuffle(values.data(), values.size(), rng);
    std::vector<int> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    observed[static_cast<std::size_t>(std::find(values.begin(), values.end(), 0) - values.begin())] += 1.0;
  }
  EXPECT_GT(testing::chi_square_p_value(observed, std::vector<double>(8, 1.0)), testing::kAlpha);
}

TEST(ChiSquareHelper, RejectsAGrosslyWrongDistribution) {
  // The test helper itself must be able to fail: 60/40 against 50/50 over 10,000 draws.
  EXPECT_LT(testing::chi_square_p_value({6000, 4000}, {1, 1}), 1e-9);
  EXPECT_NEAR(testing::gamma_q(1.0, 2.0), std::exp(-2.0), 1e-12);
}

}  // namespace
}  // namespace medload::samplers
