#include "medload/samplers/distributed_sampler.h"

#include <gtest/gtest.h>
#include <torch/data/dataloader.h>
#include <torch/data/datasets/base.h>

#include <algorithm>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/balanced_batch_sampler.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "sampler_test_util.h"
#include "stats.h"

namespace medload::samplers {
namespace {

using testing::labels_with_counts;

TEST(DistributedSampler, SlicesPartitionTheGlobalStreamWithEqualSizes) {
  WeightedRandomSampler global(std::vector<double>{1, 2, 3, 4, 5, 6, 7}, {17, 101});
  global.set_epoch(4);
  const auto stream = global.epoch_indices();
  const std::size_t world = 4;
  for (bool drop_last : {false, true}) {
    std::vector<std::vector<std::size_t>> slices;
    for (std::size_t r = 0; r < world; ++r) {
      DistributedSampler rank(global, {world, r, drop_last});
      EXPECT_EQ(rank.epoch(), 4u);
      slices.push_back(rank.epoch_indices());
      EXPECT_EQ(slices.back().size(), drop_last ? 25u : 26u);
    }
    // Interleaving the slices gives back the global stream: rank r holds positions r, r + W, ...
    for (std::size_t k = 0; k < slices[0].size() * world; ++k) {
      const std::size_t expected = stream[k % stream.size()];  // padding wraps to the start
      if (drop_last) {
        ASSERT_LT(k, 100u);
      }
      EXPECT_EQ(slices[k % world][k / world], expected) << "global position " << k;
    }
  }
}

TEST(DistributedSampler, BalancedBatchesStayWholeOnEachRank) {
  const auto labels = labels_with_counts({60, 30, 12});
  BalancedBatchSamplerOptions options;
  options.classes_per_batch = 2;
  options.samples_per_class = 3;
  options.num_batches = 10;
  options.seed = 41;
  BalancedBatchSampler global(labels, options);
  const auto stream = global.epoch_indices();
  for (std::size_t r = 0; r < 3; ++r) {
    DistributedSampler rank(global, {3, r, false});
    const auto slice = rank.epoch_indices();
    ASSERT_EQ(slice.size(), 4u * 6u);  // 10 batches over 3 ranks: 4 each, 2 wrapped
    for (std::size_t b = 0; b < 4; ++b) {
      const std::size_t global_batch = (b * 3 + r) % 10;
      EXPECT_TRUE(std::equal(slice.begin() + static_cast<std::ptrdiff_t>(b * 6),
                             slice.begin() + static_cast<std::ptrdiff_t>(b * 6 + 6),
                             stream.begin() + static_cast<std::ptrdiff_t>(global_batch * 6)));
    }
  }
}

TEST(DistributedSampler, EachRankKeepsTheGlobalClassRatio) {
  const auto labels = labels_with_counts({900, 90, 10});
  ClassBalancedSampler global(labels, testing::mode_options(BalanceMode::kOversample, 42));
  const std::size_t world = 3;
  for (std::size_t r = 0; r < world; ++r) {
    DistributedSampler rank(global, {world, r, false});
    std::vector<double> observed(3, 0.0);
    for (std::size_t e = 0; e < 3; ++e) {
      rank.set_epoch(e);
      for (std::size_t i : rank.epoch_indices()) observed[static_cast<std::size_t>(labels[i])] += 1.0;
    }
    EXPECT_GT(testing::chi_square_p_value(observed, {1, 1, 1}), testing::kAlpha) << "rank " << r;
  }
}

TEST(DistributedSampler, SaveLoadResumesTheRanksSlice) {
  WeightedRandomSampler global(std::vector<double>(50, 1.0), {43});
  DistributedSampler rank(global, {2, 1, false});
  rank.set_epoch(5);
  rank.next(4);
  const std::string state = testing::save_state(rank);
  const auto rest = testing::drain(rank, 4);
  DistributedSampler resumed(global, {2, 1, false});
  testing::load_state(resumed, state);
  EXPECT_EQ(testing::drain(resumed, 3), rest);
  DistributedSampler other_rank(global, {2, 0, false});
  EXPECT_THROW(testing::load_state(other_rank, state), FormatError);
}

TEST(DistributedSampler, BadRanksNameTheValue) {
  WeightedRandomSampler global(std::vector<double>(5, 1.0));
  try {
    DistributedSampler rank(global, {2, 2, false});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("DistributedOptions.rank is 2; allowed 0..1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DistributedSampler(global, {0, 0, false}), ConfigError);
  DistributedSampler rank(global, {2, 0, false});
  EXPECT_THROW(DistributedSampler(rank, {2, 0, false}), ConfigError);
}

// A dataset whose example i is the tensor {i}: the batches a loader yields show the indices.
class IndexDataset : public torch::data::datasets::Dataset<IndexDataset, torch::Tensor> {
 public:
  explicit IndexDataset(std::size_t size) : size_(size) {}
  torch::Tensor get(std::size_t index) override {
    return torch::full({1}, static_cast<std::int64_t>(index), torch::kInt64);
  }
  torch::optional<std::size_t> size() const override { return size_; }

 private:
  std::size_t size_;
};

TEST(DistributedSampler, WorksWithTorchMakeDataLoaderAndFollowsSetEpoch) {
  WeightedRandomSampler global(std::vector<double>(40, 1.0), {44});
  DistributedSampler rank(global, {2, 1, false});
  auto loader =
      torch::data::make_data_loader(IndexDataset(40), rank, torch::data::DataLoaderOptions().batch_size(4));
  for (std::size_t epoch = 0; epoch < 2; ++epoch) {
    rank.set_epoch(epoch);  // the handle we kept steers the loader's copy
    std::vector<std::size_t> seen;
    for (auto& batch : *loader) {
      for (const torch::Tensor& example : batch)
        seen.push_back(static_cast<std::size_t>(example.item<std::int64_t>()));
    }
    EXPECT_EQ(seen, rank.epoch_indices()) << "epoch " << epoch;
    EXPECT_EQ(seen.size(), 20u);
  }
}

TEST(DistributedSampler, ADataLoaderCreatedAfterLoadResumesMidEpoch) {
  WeightedRandomSampler global(std::vector<double>(64, 1.0), {45});
  DistributedSampler rank(global, {2, 0, false});
  rank.set_epoch(3);
  rank.next(4);
  rank.next(4);
  const std::string state = testing::save_state(rank);
  const auto rest = testing::drain(rank, 4);

  DistributedSampler resumed(global, {2, 0, false});
  testing::load_state(resumed, state);
  auto loader =
      torch::data::make_data_loader(IndexDataset(64), resumed, torch::data::DataLoaderOptions().batch_size(4));
  std::vector<std::size_t> seen;
  for (auto& batch : *loader) {
    for (const torch::Tensor& example : batch) seen.push_back(static_cast<std::size_t>(example.item<std::int64_t>()));
  }
  EXPECT_EQ(seen, rest);
}

}  // namespace
}  // namespace medload::samplers
