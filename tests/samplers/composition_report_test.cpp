#include "medload/samplers/composition_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "sampler_test_util.h"

namespace medload::samplers {
namespace {

TEST(CompositionReport, CountsClassesAndDuplicatesExactly) {
  const auto labels = testing::labels_with_counts({50, 10, 5});
  ClassBalancedSampler sampler(labels, testing::mode_options(BalanceMode::kOversample, 61));
  const CompositionReport report = composition_report(sampler, labels, 2, 1, {"normal", "pneumonia", "tb"});
  EXPECT_EQ(report.sampler, "oversample");
  EXPECT_EQ(report.dataset_class_counts, (std::vector<std::size_t>{50, 10, 5}));
  ASSERT_EQ(report.epochs.size(), 2u);
  for (const EpochComposition& epoch : report.epochs) {
    EXPECT_EQ(epoch.draws, 150u);
    EXPECT_EQ(epoch.unique, 65u);
    EXPECT_DOUBLE_EQ(epoch.duplicate_rate, 1.0 - 65.0 / 150.0);
    EXPECT_EQ(epoch.class_counts, (std::vector<std::size_t>{50, 50, 50}));
  }
  EXPECT_EQ(report.epochs[1].epoch, 1u);
  EXPECT_EQ(sampler.epoch(), 0u);  // the sampler's own cursor is untouched
}

TEST(CompositionReport, PerRankCountsSumToTheEpochAndJsonCarriesThem) {
  const auto labels = testing::labels_with_counts({70, 30});
  WeightedRandomSampler sampler(std::vector<double>(100, 1.0), {62});
  const CompositionReport report = composition_report(sampler, labels, 1, 4);
  const EpochComposition& epoch = report.epochs.at(0);
  ASSERT_EQ(epoch.ranks.size(), 4u);
  std::size_t total = 0;
  for (const RankComposition& rank : epoch.ranks) {
    EXPECT_EQ(rank.draws, 25u);
    total += rank.class_counts[0] + rank.class_counts[1];
  }
  EXPECT_EQ(total, 100u);
  const nlohmann::json j = nlohmann::json::parse(report.to_json());
  EXPECT_EQ(j["sampler"], "weighted");
  EXPECT_EQ(j["world_size"], 4);
  EXPECT_EQ(j["epochs"][0]["ranks"].size(), 4u);
  EXPECT_EQ(j["epochs"][0]["draws"], 100);
  EXPECT_EQ(j["epochs"][0]["class_counts"][0].get<std::size_t>() +
                j["epochs"][0]["class_counts"][1].get<std::size_t>(),
            100u);
  EXPECT_NE(report.to_text().find("rank 3: 25 draws"), std::string::npos) << report.to_text();
}

TEST(CompositionReport, RejectsLabelsOfAnotherDataset) {
  WeightedRandomSampler sampler(std::vector<double>(10, 1.0));
  try {
    composition_report(sampler, std::vector<std::int64_t>(9, 0));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("labels has 9 entries"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace medload::samplers
