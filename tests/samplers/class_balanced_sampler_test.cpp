#include "medload/samplers/class_balanced_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "medload/core/error.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using testing::labels_with_counts;

std::vector<std::size_t> per_class(const std::vector<std::size_t>& indices,
                                   const std::vector<std::int64_t>& labels, std::size_t classes) {
  std::vector<std::size_t> counts(classes, 0);
  for (std::size_t i : indices) ++counts[static_cast<std::size_t>(labels[i])];
  return counts;
}

// The class shares of the first quarter of each of `epochs` epochs, tested against `shares` by
// chi-square. Inside one epoch the quotas are exact, so the counts of a prefix are
// hypergeometric: less spread than the multinomial the test assumes, so it is conservative.
double prefix_p_value(ClassBalancedSampler& sampler, const std::vector<std::int64_t>& labels,
                      const std::vector<double>& shares, std::size_t epochs) {
  std::vector<double> observed(shares.size(), 0.0);
  for (std::size_t e = 0; e < epochs; ++e) {
    sampler.set_epoch(e);
    const auto indices = sampler.epoch_indices();
    for (std::size_t k = 0; k < indices.size() / 4; ++k)
      observed[static_cast<std::size_t>(labels[indices[k]])] += 1.0;
  }
  return testing::chi_square_p_value(observed, shares);
}

TEST(ClassBalancedSampler, OversampleRepeatsMinoritiesInWholeCycles) {
  const auto labels = labels_with_counts({50, 10, 5});
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kOversample, 3));
  const auto indices = sampler.epoch_indices();
  ASSERT_EQ(indices.size(), 150u);
  EXPECT_EQ(per_class(indices, labels, 3), (std::vector<std::size_t>{50, 50, 50}));
  std::map<std::size_t, int> times;
  for (std::size_t i : indices) ++times[i];
  // Without replacement inside a class until exhausted: each member exactly 50 / n_c times.
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const int expected = labels[i] == 0 ? 1 : (labels[i] == 1 ? 5 : 10);
    EXPECT_EQ(times[i], expected) << "sample " << i;
  }
}

TEST(ClassBalancedSampler, OversampleCyclesDrawEveryMemberBeforeRepeatingOne) {
  // 50 / 7 is not whole: the first 49 draws of class 1 are 7 full cycles, the last 1 starts an 8th.
  const auto labels = labels_with_counts({50, 7});
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kOversample, 8));
  std::map<std::size_t, int> times;
  for (std::size_t i : sampler.epoch_indices()) {
    if (labels[i] == 1) ++times[i];
  }
  int sevens = 0, eights = 0;
  for (const auto& [index, count] : times) {
    sevens += count == 7;
    eights += count == 8;
  }
  EXPECT_EQ(sevens, 6);
  EXPECT_EQ(eights, 1);
}

TEST(ClassBalancedSampler, UndersampleTakesDistinctMembersAndCoversTheMajorityOverEpochs) {
  const auto labels = labels_with_counts({50, 5});
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kUndersample, 4));
  std::vector<double> chosen(labels.size(), 0.0);
  const std::size_t epochs = 400;
  for (std::size_t e = 0; e < epochs; ++e) {
    sampler.set_epoch(e);
    const auto indices = sampler.epoch_indices();
    ASSERT_EQ(indices.size(), 10u);
    ASSERT_EQ(std::set<std::size_t>(indices.begin(), indices.end()).size(), 10u);
    ASSERT_EQ(per_class(indices, labels, 2), (std::vector<std::size_t>{5, 5}));
    for (std::size_t i : indices) chosen[i] += 1.0;
  }
  // Which majority members an epoch keeps is uniform: chi-square over the 50 members.
  std::vector<double> majority, uniform;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == 0) {
      majority.push_back(chosen[i]);
      uniform.push_back(1.0);
    }
  }
  EXPECT_GT(testing::chi_square_p_value(majority, uniform), testing::kAlpha);
}

TEST(ClassBalancedSampler, SqrtModeGivesQuotasProportionalToSquareRoots) {
  const auto labels = labels_with_counts({400, 100, 25});  // sqrt: 20, 10, 5 -> 4/7, 2/7, 1/7 of 525
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kSqrt, 5));
  EXPECT_EQ(per_class(sampler.epoch_indices(), labels, 3), (std::vector<std::size_t>{300, 150, 75}));
  EXPECT_GT(prefix_p_value(sampler, labels, {4, 2, 1}, 20), testing::kAlpha);
}

TEST(ClassBalancedSampler, TargetModeFollowsTheTargetDistribution) {
  const auto labels = labels_with_counts({300, 90, 10});
  ClassBalancedSamplerOptions options;
  options.mode = BalanceMode::kTarget;
  options.seed = 6;
  options.target = {0.5, 0.3, 0.2};
  ClassBalancedSampler sampler(labels, options);
  EXPECT_EQ(per_class(sampler.epoch_indices(), labels, 3), (std::vector<std::size_t>{200, 120, 80}));
  EXPECT_GT(prefix_p_value(sampler, labels, {0.5, 0.3, 0.2}, 20), testing::kAlpha);
}

TEST(ClassBalancedSampler, EveryModePassesChiSquareOnEpochPrefixes) {
  const auto labels = labels_with_counts({200, 40, 13, 7});
  for (BalanceMode mode : {BalanceMode::kOversample, BalanceMode::kUndersample}) {
    ClassBalancedSampler sampler(labels, testing::mode_options(mode, 10));
    EXPECT_GT(prefix_p_value(sampler, labels, {1, 1, 1, 1}, 100), testing::kAlpha) << to_string(mode);
  }
}

TEST(ClassBalancedSampler, PrefixTestRejectsAnUnbalancedStream) {
  // The same prefix test applied to the sqrt sampler against uniform shares must fail: the test
  // has power.
  const auto labels = labels_with_counts({400, 100, 25});
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kSqrt, 5));
  EXPECT_LT(prefix_p_value(sampler, labels, {1, 1, 1}, 20), testing::kAlpha);
}

TEST(ClassBalancedSampler, PatientCapKeepsAtMostKImagesPerPatientPerEpoch) {
  const auto labels = labels_with_counts({60, 20});
  ClassBalancedSamplerOptions options;
  options.mode = BalanceMode::kUndersample;
  options.seed = 12;
  options.max_per_patient = 2;
  for (std::size_t i = 0; i < labels.size(); ++i) options.patient_ids.push_back("p" + std::to_string(i % 10));
  ClassBalancedSampler sampler(labels, options);
  std::set<std::size_t> union_over_epochs;
  for (std::size_t e = 0; e < 5; ++e) {
    sampler.set_epoch(e);
    std::map<std::string, std::set<std::size_t>> images;
    const auto indices = sampler.epoch_indices();
    ASSERT_FALSE(indices.empty());
    for (std::size_t i : indices) {
      images[options.patient_ids[i]].insert(i);
      union_over_epochs.insert(i);
    }
    for (const auto& [patient, set] : images) EXPECT_LE(set.size(), 2u) << patient << " epoch " << e;
  }
  EXPECT_GT(union_over_epochs.size(), 20u);  // the cap picks different images in different epochs
}

TEST(ClassBalancedSampler, UnknownPatientsAreEachTheirOwnPatientUnderTheCap) {
  // 40 images without a patient id ("") and 40 of one patient "p", cap 1: every unknown image
  // stays eligible (they are not one patient) and only one image of "p" is.
  const auto labels = labels_with_counts({40, 40});
  ClassBalancedSamplerOptions options;
  options.mode = BalanceMode::kOversample;
  options.seed = 4;
  options.max_per_patient = 1;
  for (std::size_t i = 0; i < labels.size(); ++i) options.patient_ids.push_back(i < 40 ? "" : "p");
  ClassBalancedSampler sampler(labels, options);
  std::set<std::size_t> unknown, known;
  for (std::size_t i : sampler.epoch_indices()) (i < 40 ? unknown : known).insert(i);
  EXPECT_EQ(unknown.size(), 40u);
  EXPECT_EQ(known.size(), 1u);
}

TEST(ClassBalancedSampler, ResumeAndSaveLoadRoundTrip) {
  const auto labels = labels_with_counts({30, 9, 4});
  ClassBalancedSampler original(labels, testing::mode_options(BalanceMode::kOversample, 21));
  original.set_epoch(7);
  original.next(17);
  original.next(17);
  const std::string state = testing::save_state(original);
  const auto rest = testing::drain(original, 17);
  ClassBalancedSampler resumed(labels, testing::mode_options(BalanceMode::kOversample, 0));
  testing::load_state(resumed, state);
  EXPECT_EQ(testing::drain(resumed, 5), rest);
  ClassBalancedSampler other_mode(labels, testing::mode_options(BalanceMode::kUndersample, 21));
  EXPECT_THROW(testing::load_state(other_mode, state), FormatError);
}

std::string construction_error(const std::vector<std::int64_t>& labels, ClassBalancedSamplerOptions options) {
  try {
    ClassBalancedSampler sampler(labels, options);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ClassBalancedSampler, BadInputIsAClearErrorNamingTheValue) {
  EXPECT_NE(construction_error({}, {}).find("zero samples"), std::string::npos);
  EXPECT_NE(construction_error({0, 2, 2}, {}).find("class 1 has no samples"), std::string::npos);
  EXPECT_NE(construction_error({0, -1}, {}).find("labels[1] = -1"), std::string::npos);
  ClassBalancedSamplerOptions options;
  options.num_classes = 3;
  EXPECT_NE(construction_error({0, 1}, options).find("class 2 has no samples"), std::string::npos);
  options = {};
  options.mode = BalanceMode::kTarget;
  options.target = {1.0};
  EXPECT_NE(construction_error({0, 1}, options).find("target has 1 entries"), std::string::npos);
  options.target = {1.0, -3.0};
  EXPECT_NE(construction_error({0, 1}, options).find("target[1] = -3"), std::string::npos);
  options.target = {0.0, 0.0};
  EXPECT_NE(construction_error({0, 1}, options).find("are zero"), std::string::npos);
  options = {};
  options.max_per_patient = 1;
  options.patient_ids = {"a"};
  EXPECT_NE(construction_error({0, 1}, options).find("patient_ids has 1 entries"), std::string::npos);
  EXPECT_THROW(balance_mode_from_string("smote"), ConfigError);
}

}  // namespace
}  // namespace medload::samplers

// The cycler's sparse mode (a hash map of swaps, for classes drawn far less than their size) is
// an optimisation only: it must yield exactly the dense mode's sequence, cycles included.
#include "../../samplers/src/class_pool.h"

namespace medload::samplers {
namespace {

TEST(ClassCycler, SparseAndDenseModesYieldTheSameSequence) {
  // Sparse mode needs a class of more than 2^18 members; run into a second cycle.
  std::vector<std::size_t> members((std::size_t{1} << 18) + 100);
  for (std::size_t i = 0; i < members.size(); ++i) members[i] = 1000 + 3 * i;
  detail::ClassCycler dense(members, 5, 2, 1, /*expected_draws=*/members.size());
  detail::ClassCycler sparse(members, 5, 2, 1, /*expected_draws=*/1);
  std::vector<char> drawn(members.size() * 3 + 1000, 0);
  for (std::size_t k = 0; k < members.size() + 5000; ++k) {
    const std::size_t d = dense.next();
    ASSERT_EQ(d, sparse.next()) << "draw " << k;
    if (k < members.size()) {
      ASSERT_EQ(drawn[d], 0) << "repeated inside the first cycle at draw " << k;
      drawn[d] = 1;
    }
  }
}

}  // namespace
}  // namespace medload::samplers
