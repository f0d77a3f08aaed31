#include "medload/samplers/semi_supervised_sampler.h"

#include <gtest/gtest.h>
#include <torch/data/dataloader.h>
#include <torch/data/datasets/base.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/distributed_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using testing::labels_with_counts;

// Labels of `counts[c]` samples of class c and `unlabelled` samples of -1, spread over the dataset
// (every third sample labelled while there are some) so that rows of a side are not contiguous.
std::vector<std::int64_t> mixed_labels(const std::vector<std::size_t>& counts, std::size_t unlabelled) {
  const std::vector<std::int64_t> classes = labels_with_counts(counts);
  std::vector<std::int64_t> labels;
  std::size_t next_class = 0;
  while (next_class < classes.size() || unlabelled > 0) {
    const bool labelled_turn = labels.size() % 3 == 0 || unlabelled == 0;
    if (labelled_turn && next_class < classes.size()) {
      labels.push_back(classes[next_class++]);
    } else {
      labels.push_back(-1);
      --unlabelled;
    }
  }
  return labels;
}

SemiSupervisedOptions options(std::size_t labelled_batch, std::size_t mu, std::uint64_t seed) {
  SemiSupervisedOptions o;
  o.labelled_batch = labelled_batch;
  o.mu = mu;
  o.seed = seed;
  return o;
}

// One step of the epoch: its labelled rows and its unlabelled rows.
struct Step {
  std::vector<std::size_t> labelled;
  std::vector<std::size_t> unlabelled;
};

std::vector<Step> steps_of(const std::vector<std::size_t>& indices, const SemiSupervisedSampler& sampler) {
  EXPECT_EQ(indices.size() % sampler.step_size(), 0u);
  std::vector<Step> steps;
  for (auto it = indices.begin(); it != indices.end();) {
    const auto unlabelled = it + static_cast<std::ptrdiff_t>(sampler.labelled_batch());
    const auto end = unlabelled + static_cast<std::ptrdiff_t>(sampler.unlabelled_batch());
    steps.push_back({{it, unlabelled}, {unlabelled, end}});
    it = end;
  }
  return steps;
}

std::vector<std::size_t> all_labelled(const std::vector<Step>& steps) {
  std::vector<std::size_t> rows;
  for (const Step& step : steps) rows.insert(rows.end(), step.labelled.begin(), step.labelled.end());
  return rows;
}

std::vector<std::size_t> all_unlabelled(const std::vector<Step>& steps) {
  std::vector<std::size_t> rows;
  for (const Step& step : steps) rows.insert(rows.end(), step.unlabelled.begin(), step.unlabelled.end());
  return rows;
}

std::vector<std::size_t> rows_where(const std::vector<std::int64_t>& labels, bool labelled) {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if ((labels[i] >= 0) == labelled) rows.push_back(i);
  }
  return rows;
}

std::vector<std::size_t> sorted(std::vector<std::size_t> values) {
  std::sort(values.begin(), values.end());
  return values;
}

TEST(SemiSupervisedSampler, EveryStepIsBLabelledRowsThenMuBUnlabelledRows) {
  const auto labels = mixed_labels({24, 10, 6}, 160);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(4, 3, 11));
  EXPECT_EQ(sampler.labelled_batch(), 4u);
  EXPECT_EQ(sampler.unlabelled_batch(), 12u);
  EXPECT_EQ(sampler.step_size(), 16u);
  EXPECT_EQ(sampler.kind(), "semi-supervised");
  EXPECT_EQ(sampler.dataset_size(), labels.size());
  EXPECT_TRUE(sampler.balances_classes());
  for (std::size_t e = 0; e < 3; ++e) {
    sampler.set_epoch(e);
    // Oversampling: L = 3 classes x 24 = 72 labelled indices, 18 steps of 4.
    EXPECT_EQ(sampler.steps(), 18u);
    const auto steps = steps_of(sampler.epoch_indices(), sampler);
    ASSERT_EQ(steps.size(), 18u);
    for (const Step& step : steps) {
      for (std::size_t row : step.labelled) EXPECT_GE(labels[row], 0) << "row " << row;
      for (std::size_t row : step.unlabelled) EXPECT_EQ(labels[row], -1) << "row " << row;
    }
  }
}

// Class counts of the labelled rows of the first quarter of the steps of `epochs` epochs.
std::vector<double> labelled_prefix_counts(SemiSupervisedSampler& sampler,
                                           const std::vector<std::int64_t>& labels, std::size_t classes,
                                           std::size_t epochs) {
  std::vector<double> observed(classes, 0.0);
  for (std::size_t e = 0; e < epochs; ++e) {
    sampler.set_epoch(e);
    const auto steps = steps_of(sampler.epoch_indices(), sampler);
    for (std::size_t s = 0; s < steps.size() / 4; ++s) {
      for (std::size_t row : steps[s].labelled) observed[static_cast<std::size_t>(labels[row])] += 1.0;
    }
  }
  return observed;
}

TEST(SemiSupervisedSampler, TheLabelledSideIsClassBalanced) {
  const auto labels = mixed_labels({60, 12, 5}, 100);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(5, 2, 12));
  // A whole epoch holds the exact oversampling quotas: 180 = 36 steps of 5, no wrap.
  std::vector<std::size_t> per_class(3, 0);
  for (std::size_t row : all_labelled(steps_of(sampler.epoch_indices(), sampler)))
    ++per_class[static_cast<std::size_t>(labels[row])];
  EXPECT_EQ(per_class, (std::vector<std::size_t>{60, 60, 60}));
  // Prefixes of epochs are balanced too (chi-square, fixed seed).
  EXPECT_GT(testing::chi_square_p_value(labelled_prefix_counts(sampler, labels, 3, 40), {1, 1, 1}),
            testing::kAlpha);
}

TEST(SemiSupervisedSampler, TheBalanceTestRejectsAnUnbalancedLabelledSide) {
  // The same test on a plain shuffle of the labelled samples must fail: the test has power.
  const auto labels = mixed_labels({60, 12, 5}, 100);
  SemiSupervisedSampler sampler =
      make_semi_supervised_sampler(labels, options(5, 2, 12), LabelledBalance::kShuffle);
  EXPECT_FALSE(sampler.balances_classes());
  EXPECT_LT(testing::chi_square_p_value(labelled_prefix_counts(sampler, labels, 3, 40), {1, 1, 1}),
            testing::kAlpha);
}

TEST(SemiSupervisedSampler, OversamplingDrawsEveryLabelledSampleEachEpoch) {
  const auto labels = mixed_labels({30, 7, 3}, 50);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(7, 1, 13));
  for (std::size_t e = 0; e < 4; ++e) {
    sampler.set_epoch(e);
    const auto labelled = all_labelled(steps_of(sampler.epoch_indices(), sampler));
    const std::set<std::size_t> seen(labelled.begin(), labelled.end());
    EXPECT_EQ(seen.size(), 40u) << "epoch " << e;
  }
}

TEST(SemiSupervisedSampler, AShuffledLabelledSideTakesEachSampleOnceAndWrapsTheLastStep) {
  const auto labels = mixed_labels({25, 15}, 60);
  SemiSupervisedSampler sampler =
      make_semi_supervised_sampler(labels, options(6, 2, 14), LabelledBalance::kShuffle);
  // L = 40, B = 6: 7 steps, 42 labelled slots; the last 2 wrap to the epoch's first 2.
  const auto labelled = all_labelled(steps_of(sampler.epoch_indices(), sampler));
  ASSERT_EQ(labelled.size(), 42u);
  const std::vector<std::size_t> epoch(labelled.begin(), labelled.begin() + 40);
  EXPECT_EQ(sorted(epoch), rows_where(labels, true));
  EXPECT_EQ(labelled[40], labelled[0]);
  EXPECT_EQ(labelled[41], labelled[1]);
}

TEST(SemiSupervisedSampler, ALabelledBatchLargerThanTheLabelledSetWrapsInOneStep) {
  const auto labels = mixed_labels({2, 1}, 30);
  SemiSupervisedSampler sampler =
      make_semi_supervised_sampler(labels, options(5, 2, 15), LabelledBalance::kShuffle);
  const auto steps = steps_of(sampler.epoch_indices(), sampler);
  ASSERT_EQ(steps.size(), 1u);
  const auto& l = steps[0].labelled;
  EXPECT_EQ(sorted({l[0], l[1], l[2]}), rows_where(labels, true));
  EXPECT_EQ(l[3], l[0]);
  EXPECT_EQ(l[4], l[1]);
}

TEST(SemiSupervisedSampler, UnlabelledRowsDoNotRepeatUntilThePoolIsExhausted) {
  // U = 25 unlabelled rows, 18 steps x 12 = 216 draws: 8 whole passes and 16 of a ninth.
  const auto labels = mixed_labels({24, 10, 6}, 25);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(4, 3, 16));
  const auto pool = rows_where(labels, false);
  for (std::size_t e = 0; e < 2; ++e) {
    sampler.set_epoch(e);
    const auto unlabelled = all_unlabelled(steps_of(sampler.epoch_indices(), sampler));
    ASSERT_EQ(unlabelled.size(), 216u);
    std::set<std::vector<std::size_t>> orders;
    for (std::size_t begin = 0; begin < unlabelled.size(); begin += pool.size()) {
      const auto end = std::min(begin + pool.size(), unlabelled.size());
      const std::vector<std::size_t> pass(unlabelled.begin() + static_cast<std::ptrdiff_t>(begin),
                                          unlabelled.begin() + static_cast<std::ptrdiff_t>(end));
      const std::set<std::size_t> distinct(pass.begin(), pass.end());
      EXPECT_EQ(distinct.size(), pass.size()) << "epoch " << e << ", pass from " << begin;
      if (pass.size() == pool.size()) {
        EXPECT_EQ(sorted(pass), pool);
      }
      orders.insert(pass);
    }
    EXPECT_EQ(orders.size(), 9u);  // each pass is a fresh permutation
  }
}

TEST(SemiSupervisedSampler, AnEpochNeedingLessThanThePoolDrawsDistinctUnlabelledRows) {
  const auto labels = mixed_labels({20, 20}, 160);
  SemiSupervisedSampler sampler =
      make_semi_supervised_sampler(labels, options(2, 2, 17), LabelledBalance::kShuffle);
  std::set<std::size_t> over_epochs;
  for (std::size_t e = 0; e < 6; ++e) {
    sampler.set_epoch(e);
    const auto unlabelled = all_unlabelled(steps_of(sampler.epoch_indices(), sampler));
    ASSERT_EQ(unlabelled.size(), 80u);  // 20 steps x 4
    EXPECT_EQ(std::set<std::size_t>(unlabelled.begin(), unlabelled.end()).size(), 80u);
    over_epochs.insert(unlabelled.begin(), unlabelled.end());
  }
  EXPECT_GT(over_epochs.size(), 80u);  // each epoch a different subset of the pool
}

TEST(SemiSupervisedSampler, TheSameSeedAndEpochGiveTheSameStepsAndEpochsDiffer) {
  const auto labels = mixed_labels({24, 10, 6}, 60);
  SemiSupervisedSampler a = make_semi_supervised_sampler(labels, options(4, 2, 18));
  SemiSupervisedSampler b = make_semi_supervised_sampler(labels, options(4, 2, 18));
  SemiSupervisedSampler other_seed = make_semi_supervised_sampler(labels, options(4, 2, 19));
  a.set_epoch(5);
  b.set_epoch(5);
  other_seed.set_epoch(5);
  const auto epoch5 = a.epoch_indices();
  EXPECT_EQ(b.epoch_indices(), epoch5);
  EXPECT_NE(other_seed.epoch_indices(), epoch5);
  a.set_epoch(6);
  const auto epoch6 = a.epoch_indices();
  EXPECT_NE(epoch6, epoch5);
  EXPECT_NE(all_labelled(steps_of(epoch6, a)), all_labelled(steps_of(epoch5, a)));
  EXPECT_NE(all_unlabelled(steps_of(epoch6, a)), all_unlabelled(steps_of(epoch5, a)));
  a.set_epoch(5);
  EXPECT_EQ(a.epoch_indices(), epoch5);
}

TEST(SemiSupervisedSampler, SaveLoadResumesExactlyMidEpoch) {
  const auto labels = mixed_labels({24, 10, 6}, 60);
  SemiSupervisedSampler original = make_semi_supervised_sampler(labels, options(4, 2, 20));
  const std::size_t step = original.step_size();
  original.set_epoch(3);
  original.next(step);
  original.next(step);
  original.next(step);
  const std::string state = testing::save_state(original);
  const auto rest = testing::drain(original, step);
  ASSERT_EQ(rest.size(), (18u - 3u) * step);

  // Built with another seed: the loaded state's seed rebuilds both sides.
  SemiSupervisedSampler resumed = make_semi_supervised_sampler(labels, options(4, 2, 0));
  testing::load_state(resumed, state);
  EXPECT_EQ(resumed.seed(), 20u);
  EXPECT_EQ(testing::drain(resumed, step), rest);

  SemiSupervisedSampler other_mu = make_semi_supervised_sampler(labels, options(4, 3, 20));
  EXPECT_THROW(testing::load_state(other_mu, state), FormatError);
  SemiSupervisedSampler other_balance =
      make_semi_supervised_sampler(labels, options(4, 2, 20), LabelledBalance::kShuffle);
  EXPECT_THROW(testing::load_state(other_balance, state), FormatError);
}

TEST(SemiSupervisedSampler, CopiesShareTheCursor) {
  const auto labels = mixed_labels({10, 10}, 40);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(4, 1, 21));
  SemiSupervisedSampler copy = sampler;
  copy.set_epoch(2);
  EXPECT_EQ(sampler.epoch(), 2u);
  sampler.next(sampler.step_size());
  EXPECT_EQ(copy.position(), sampler.step_size());
  EXPECT_EQ(copy.step_size(), 8u);
}

TEST(SemiSupervisedSampler, DistributedRanksTakeWholeStepsOfTheOneStream) {
  // L = 40 shuffled, B = 6: 7 steps of 6 + 12; 3 ranks take 3 steps each, 2 of them wrapped.
  const auto labels = mixed_labels({25, 15}, 160);
  SemiSupervisedSampler global =
      make_semi_supervised_sampler(labels, options(6, 2, 22), LabelledBalance::kShuffle);
  global.set_epoch(1);
  const auto stream = steps_of(global.epoch_indices(), global);
  ASSERT_EQ(stream.size(), 7u);
  const std::size_t world = 3;
  std::vector<std::vector<Step>> ranks;
  for (std::size_t r = 0; r < world; ++r) {
    DistributedSampler rank(global, {world, r, false});
    EXPECT_EQ(rank.epoch(), 1u);
    EXPECT_EQ(testing::drain(rank, global.step_size()), rank.epoch_indices());
    ranks.push_back(steps_of(rank.epoch_indices(), global));
    ASSERT_EQ(ranks.back().size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) {
      const Step& expected = stream[(k * world + r) % stream.size()];
      EXPECT_EQ(ranks[r][k].labelled, expected.labelled) << "rank " << r << " step " << k;
      EXPECT_EQ(ranks[r][k].unlabelled, expected.unlabelled) << "rank " << r << " step " << k;
    }
  }
  // The whole rounds (0 and 1) hand the ranks disjoint rows.
  for (std::size_t k = 0; k < 2; ++k) {
    std::set<std::size_t> rows;
    for (std::size_t r = 0; r < world; ++r) {
      rows.insert(ranks[r][k].labelled.begin(), ranks[r][k].labelled.end());
      rows.insert(ranks[r][k].unlabelled.begin(), ranks[r][k].unlabelled.end());
    }
    EXPECT_EQ(rows.size(), world * global.step_size()) << "round " << k;
  }
  DistributedSampler dropping(global, {world, 2, true});
  EXPECT_EQ(dropping.size(), 2u * global.step_size());
}

TEST(SemiSupervisedSampler, TheGeneralConstructorMapsEachSidesIndicesToItsRows) {
  // Labelled: 6 rows drawn with replacement, 20 per epoch; unlabelled: a one-class oversampler
  // (a permutation) of 5 rows.
  const std::vector<std::size_t> labelled_rows = {1, 3, 5, 7, 9, 11};
  const std::vector<std::size_t> unlabelled_rows = {0, 2, 4, 6, 8};
  WeightedRandomSampler labelled(std::vector<double>(6, 1.0), {/*seed=*/99, /*num_samples=*/20});
  ClassBalancedSampler unlabelled(std::vector<std::int64_t>(5, 0));
  SemiSupervisedSampler sampler(labelled, labelled_rows, unlabelled, unlabelled_rows, 13, options(3, 2, 23));
  EXPECT_EQ(sampler.dataset_size(), 13u);
  EXPECT_TRUE(sampler.balances_classes());
  const auto steps = steps_of(sampler.epoch_indices(), sampler);
  EXPECT_EQ(steps.size(), 7u);  // ceil(20 / 3)
  for (const Step& step : steps) {
    for (std::size_t row : step.labelled) EXPECT_EQ(row % 2, 1u) << row;
    for (std::size_t row : step.unlabelled) EXPECT_TRUE(row % 2 == 0 && row <= 8) << row;
  }
  // The inner samplers' own seeds and cursors play no part.
  WeightedRandomSampler reseeded(std::vector<double>(6, 1.0), {/*seed=*/5, /*num_samples=*/20});
  SemiSupervisedSampler same(reseeded, labelled_rows, unlabelled, unlabelled_rows, 13, options(3, 2, 23));
  EXPECT_EQ(same.epoch_indices(), sampler.epoch_indices());
  EXPECT_EQ(labelled.position(), 0u);
}

std::string error_of(const std::function<void()>& build) {
  try {
    build();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SemiSupervisedSampler, BadOptionsAndLabelsNameTheFieldAndValue) {
  const auto labels = mixed_labels({4, 4}, 8);
  const auto factory_error = [&](const std::vector<std::int64_t>& l, SemiSupervisedOptions o) {
    return error_of([&] { make_semi_supervised_sampler(l, o); });
  };
  EXPECT_NE(factory_error(labels, options(4, 0, 0)).find("SemiSupervisedOptions.mu = 0"), std::string::npos);
  EXPECT_NE(factory_error(labels, options(0, 7, 0)).find("SemiSupervisedOptions.labelled_batch = 0"),
            std::string::npos);
  EXPECT_NE(
      factory_error({-1, -1, -1}, options(4, 7, 0)).find("labels has no labelled samples (all 3 labels"),
      std::string::npos);
  const std::string supervised = factory_error({0, 1, 0}, options(4, 7, 0));
  EXPECT_NE(supervised.find("labels has no unlabelled samples"), std::string::npos) << supervised;
  EXPECT_NE(supervised.find("use a supervised sampler"), std::string::npos) << supervised;
  EXPECT_NE(factory_error({0, -2, -1}, options(4, 7, 0)).find("labels[1] = -2"), std::string::npos);
  EXPECT_NE(factory_error({0, 2, -1}, options(4, 7, 0)).find("class 1 has no samples"), std::string::npos);
}

TEST(SemiSupervisedSampler, BadRowMapsNameTheRowAndValue) {
  WeightedRandomSampler three(std::vector<double>(3, 1.0));
  WeightedRandomSampler two(std::vector<double>(2, 1.0));
  const auto build = [&](const StreamSampler& labelled, std::vector<std::size_t> labelled_rows,
                         std::vector<std::size_t> unlabelled_rows) {
    return error_of([&] {
      SemiSupervisedSampler sampler(labelled, labelled_rows, two, unlabelled_rows, 6, options(2, 1, 0));
    });
  };
  const auto error = [&](std::vector<std::size_t> labelled_rows, std::vector<std::size_t> unlabelled_rows) {
    return build(three, std::move(labelled_rows), std::move(unlabelled_rows));
  };
  EXPECT_EQ(error({0, 1, 2}, {3, 4}), "no error");
  EXPECT_NE(error({}, {3, 4}).find("labelled_rows is empty"), std::string::npos);
  const std::string no_unlabelled = build(three, {0, 1, 2}, {});
  EXPECT_NE(no_unlabelled.find("unlabelled_rows is empty"), std::string::npos) << no_unlabelled;
  EXPECT_NE(no_unlabelled.find("use a supervised sampler"), std::string::npos) << no_unlabelled;
  EXPECT_NE(error({0, 9, 2}, {3, 4}).find("labelled_rows[1] = 9 is out of range: dataset_size is 6"),
            std::string::npos);
  EXPECT_NE(error({0, 1, 0}, {3, 4}).find("labelled_rows[2] = 0 is listed again (first as labelled_rows[0])"),
            std::string::npos);
  EXPECT_NE(
      error({0, 1, 2}, {3, 1}).find("unlabelled_rows[1] = 1 is listed again (first as labelled_rows[1])"),
      std::string::npos);
  EXPECT_NE(error({0, 1}, {3, 4})
                .find("labelled_rows has 2 entries but the labelled sampler (weighted) was "
                      "built over 3 samples"),
            std::string::npos);
  // The first repeat in listing order is named, however the rows sort.
  EXPECT_NE(
      error({5, 1, 2}, {1, 5}).find("unlabelled_rows[0] = 1 is listed again (first as labelled_rows[1])"),
      std::string::npos);
  // A dataset far larger than the rows listed costs nothing: memory follows the rows.
  EXPECT_EQ(error_of([&] {
              SemiSupervisedSampler sampler(three, {0, 1, 2}, two, {std::size_t{1} << 60, 7},
                                            std::numeric_limits<std::size_t>::max(), options(2, 1, 0));
            }),
            "no error");
  DistributedSampler distributed(three, {2, 0, false});
  EXPECT_NE(
      build(distributed, {0, 1, 2}, {3, 4}).find("labelled sampler is already distributed (world_size 2)"),
      std::string::npos);
}

TEST(SemiSupervisedSampler, NextRequiresTheStepSize) {
  const auto labels = mixed_labels({4, 4}, 30);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(2, 3, 24));
  const std::string message = error_of([&] { sampler.next(32); });
  EXPECT_NE(message.find("batch_size = 32"), std::string::npos) << message;
  EXPECT_NE(message.find("2 + 6 = 8"), std::string::npos) << message;
  EXPECT_NE(message.find("LoaderOptions.batch_size"), std::string::npos) << message;
  EXPECT_EQ(sampler.position(), 0u);
  ASSERT_TRUE(sampler.next(8).has_value());
  EXPECT_EQ(sampler.position(), 8u);
}

// A dataset whose example i is the tensor {i}: the batches a loader yields show the rows.
class RowDataset : public torch::data::datasets::Dataset<RowDataset, torch::Tensor> {
 public:
  explicit RowDataset(std::size_t size) : size_(size) {}
  torch::Tensor get(std::size_t index) override {
    return torch::full({1}, static_cast<std::int64_t>(index), torch::kInt64);
  }
  torch::optional<std::size_t> size() const override { return size_; }

 private:
  std::size_t size_;
};

TEST(SemiSupervisedSampler, ATorchDataLoaderWithTheStepSizeYieldsOneStepPerBatch) {
  const auto labels = mixed_labels({6, 6}, 40);
  SemiSupervisedSampler sampler = make_semi_supervised_sampler(labels, options(3, 2, 25));
  auto loader = torch::data::make_data_loader(
      RowDataset(labels.size()), sampler, torch::data::DataLoaderOptions().batch_size(sampler.step_size()));
  sampler.set_epoch(1);  // steers the loader's copy
  std::vector<std::size_t> seen;
  for (auto& batch : *loader) {
    ASSERT_EQ(batch.size(), sampler.step_size());
    for (const torch::Tensor& example : batch)
      seen.push_back(static_cast<std::size_t>(example.item<std::int64_t>()));
  }
  EXPECT_EQ(seen, sampler.epoch_indices());
  auto wrong = torch::data::make_data_loader(RowDataset(labels.size()), sampler,
                                             torch::data::DataLoaderOptions().batch_size(4));
  EXPECT_THROW(
      {
        for (auto& batch : *wrong) (void)batch;
      },
      ConfigError);
}

}  // namespace
}  // namespace medload::samplers
