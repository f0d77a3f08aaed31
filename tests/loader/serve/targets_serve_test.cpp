// Serving targets (masks, boxes, landmarks) through medload's Loader and the torch::data path:
// every tensor against the cache's own tables, the padding, the validity flags, the dtypes, and
// what a source without targets serves.

#include <gtest/gtest.h>
#include <torch/data/samplers/sequential.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../cache/target_cache.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/split_store.h"
#include "test_cache.h"

namespace medload::loader {
namespace {

using test::kTargetHeight;
using test::kTargetImages;
using test::kTargetWidth;
using testing::TempDir;

DatasetOptions whole_cache() {
  DatasetOptions options;
  options.split = "";
  options.part = "all";
  options.normalize = false;
  return options;
}

LoaderOptions batches_of(std::size_t size, std::size_t threads = 3) {
  LoaderOptions options;
  options.batch_size = size;
  options.threads = threads;
  return options;
}

// Every batch of one epoch, served in order.
std::vector<Batch> serve_all(const CacheDataset& dataset, LoaderOptions options) {
  Loader loader(dataset, torch::data::samplers::SequentialSampler(*dataset.size()), std::move(options));
  std::vector<Batch> out;
  while (auto batch = loader.next()) out.push_back(std::move(*batch));
  return out;
}

std::vector<std::int64_t> as_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

std::vector<float> floats(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

// The cache's mask of `row` as int64 [1,H,W]: read_mask when valid, zeros otherwise.
torch::Tensor expected_mask(const CacheReader& reader, std::size_t row) {
  torch::Tensor out = torch::zeros({1, kTargetHeight, kTargetWidth}, torch::kInt64);
  if (reader.mask_states()[row] != TargetState::kValid) return out;
  std::vector<std::uint16_t> ids(static_cast<std::size_t>(kTargetHeight * kTargetWidth));
  reader.read_mask(row, ids.data());
  for (std::size_t k = 0; k < ids.size(); ++k) out.data_ptr<std::int64_t>()[k] = ids[k];
  return out;
}

class TargetServing : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path("targets.h5");
    test::write_target_cache(path_);
  }
  TempDir dir_{"targets-serve"};
  std::string path_;
};

TEST_F(TargetServing, MasksAreTheCachesMasksWithTheirValidity) {
  const CacheDataset dataset(path_, whole_cache());
  const CacheReader reader(path_);
  const std::vector<Batch> batches = serve_all(dataset, batches_of(kTargetImages));
  ASSERT_EQ(batches.size(), 1u);
  const Batch& b = batches[0];
  ASSERT_TRUE(b.masks.defined());
  EXPECT_EQ(b.masks.scalar_type(), torch::kInt64);
  EXPECT_EQ(b.masks.sizes(), (std::vector<std::int64_t>{6, 1, kTargetHeight, kTargetWidth}));
  for (std::int64_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(torch::equal(b.masks[i], expected_mask(reader, static_cast<std::size_t>(i))))
        << "sample " << i;
  }
  // Sample 0's mask is not all background: the comparison above can fail.
  EXPECT_GT(b.masks[0].sum().item<std::int64_t>(), 0);
  EXPECT_EQ(b.mask_valid.scalar_type(), torch::kBool);
  EXPECT_EQ(as_vector(b.mask_valid), (std::vector<std::int64_t>{1, 0, 0, 1, 0, 1}));
}

TEST_F(TargetServing, BoxesAreServedPaddedWithCountsLabelsAndValidity) {
  const CacheDataset dataset(path_, whole_cache());
  const Batch b = serve_all(dataset, batches_of(kTargetImages)).at(0);
  ASSERT_TRUE(b.boxes.defined());
  EXPECT_EQ(b.boxes.scalar_type(), torch::kFloat32);
  // M = the most boxes (sample 0's 2); each row x0, y0, x1, y1, label.
  EXPECT_EQ(b.boxes.sizes(), (std::vector<std::int64_t>{6, 2, 5}));
  EXPECT_EQ(as_vector(b.box_counts), (std::vector<std::int64_t>{2, 0, 0, 0, 1, 1}));
  EXPECT_EQ(as_vector(b.box_valid), (std::vector<std::int64_t>{1, 1, 0, 0, 1, 1}));  // 1: a negative image
  EXPECT_EQ(as_vector(b.boxes.select(2, 4)),
            (std::vector<std::int64_t>{1, 2, -1, -1, -1, -1, -1, -1, 3, -1, 1, -1}));
  EXPECT_EQ(floats(b.boxes[0]), (std::vector<float>{1, 2, 5, 6.5f, 1, 8.5f, 0, 16, 12, 2}));
  // Padding rows are exactly (0, 0, 0, 0, -1).
  EXPECT_EQ(floats(b.boxes[4]), (std::vector<float>{0, 0, 16, 12, 3, 0, 0, 0, 0, -1}));
  EXPECT_EQ(floats(b.boxes[5]), (std::vector<float>{2, 3, 4, 5, 1, 0, 0, 0, 0, -1}));
  EXPECT_EQ(floats(b.boxes[1]), (std::vector<float>{0, 0, 0, 0, -1, 0, 0, 0, 0, -1}));

  ASSERT_TRUE(b.landmarks.defined());
  EXPECT_EQ(b.landmarks.scalar_type(), torch::kFloat32);
  EXPECT_EQ(b.landmarks.sizes(), (std::vector<std::int64_t>{6, 2, 3}));  // x, y, label
  EXPECT_EQ(as_vector(b.landmark_counts), (std::vector<std::int64_t>{1, 0, 0, 2, 0, 0}));
  EXPECT_EQ(as_vector(b.landmark_valid), (std::vector<std::int64_t>{1, 0, 0, 1, 0, 1}));
  EXPECT_EQ(floats(b.landmarks[0]), (std::vector<float>{3.25f, 4.75f, 3, 0, 0, -1}));
  EXPECT_EQ(floats(b.landmarks[3]), (std::vector<float>{0, 0, 1, 16, 12, 2}));
  EXPECT_EQ(floats(b.landmarks[1]), (std::vector<float>{0, 0, -1, 0, 0, -1}));
}

TEST_F(TargetServing, ThePaddedWidthIsTheLargestCountOfEachBatch) {
  const CacheDataset dataset(path_, whole_cache());
  const std::vector<Batch> batches = serve_all(dataset, batches_of(2));
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].boxes.size(1), 2);  // samples 0, 1: two boxes and none
  EXPECT_EQ(batches[1].boxes.size(1), 0);  // samples 2, 3: none (and invalid)
  EXPECT_EQ(batches[2].boxes.size(1), 1);
  EXPECT_EQ(batches[1].boxes.sizes(), (std::vector<std::int64_t>{2, 0, 5}));
  EXPECT_EQ(batches[1].landmarks.size(1), 2);  // sample 3's two landmarks
  EXPECT_EQ(batches[2].landmarks.size(1), 0);
}

TEST_F(TargetServing, BoxListHasOneRowPerBoxWithTheLabelLast) {
  const CacheDataset dataset(path_, whole_cache());
  const Batch b = serve_all(dataset, batches_of(kTargetImages)).at(0);
  const std::vector<torch::Tensor> list = b.box_list();
  ASSERT_EQ(list.size(), 6u);
  const std::vector<std::int64_t> rows{2, 0, 0, 0, 1, 1};
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(list[i].sizes(), (std::vector<std::int64_t>{rows[i], 5})) << "sample " << i;
  }
  EXPECT_EQ(floats(list[0]), (std::vector<float>{1, 2, 5, 6.5f, 1, 8.5f, 0, 16, 12, 2}));
  EXPECT_EQ(floats(list[4]), (std::vector<float>{0, 0, 16, 12, 3}));
  // Slices of the batch's tensor, not copies.
  EXPECT_EQ(list[4].data_ptr<float>(), b.boxes[4].data_ptr<float>());
  EXPECT_TRUE(Batch{}.box_list().empty());

  const std::vector<torch::Tensor> points = b.landmark_list();
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[3].sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(floats(points[3]), (std::vector<float>{0, 0, 1, 16, 12, 2}));
  EXPECT_EQ(points[1].size(0), 0);
  EXPECT_TRUE(Batch{}.landmark_list().empty());
}

TEST_F(TargetServing, Uint8MasksHoldTheSameIds) {
  DatasetOptions options = whole_cache();
  options.mask_dtype = MaskDtype::kUInt8;
  const CacheDataset narrow(path_, options);
  const CacheDataset wide(path_, whole_cache());
  const Batch a = serve_all(narrow, batches_of(kTargetImages)).at(0);
  const Batch b = serve_all(wide, batches_of(kTargetImages)).at(0);
  EXPECT_EQ(a.masks.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(a.masks.to(torch::kInt64), b.masks));
  EXPECT_TRUE(torch::equal(a.mask_valid, b.mask_valid));
}

TEST_F(TargetServing, Uint8MasksOfACacheWithMoreThan256ClassesAreRefused) {
  test::TargetCacheOptions cache;
  cache.classes = {"background"};
  for (int k = 1; k < 300; ++k) cache.classes.push_back("c" + std::to_string(k));
  const std::string path = dir_.path("many.h5");
  test::write_target_cache(path, cache);
  DatasetOptions options = whole_cache();
  options.mask_dtype = MaskDtype::kUInt8;
  try {
    CacheDataset dataset(path, options);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mask_dtype"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("300"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(CacheDataset(path, whole_cache()));
}

TEST_F(TargetServing, OnlyTheKindsTheCacheHoldsAreServed) {
  test::TargetCacheOptions no_masks;
  no_masks.masks = false;
  const std::string path = dir_.path("no-masks.h5");
  test::write_target_cache(path, no_masks);
  const Batch b = serve_all(CacheDataset(path, whole_cache()), batches_of(kTargetImages)).at(0);
  EXPECT_FALSE(b.masks.defined());
  EXPECT_FALSE(b.mask_valid.defined());
  EXPECT_TRUE(b.boxes.defined());
  EXPECT_TRUE(b.landmarks.defined());
}

TEST_F(TargetServing, ACacheWithoutTargetsOrTargetsOffServesUndefinedTensors) {
  test::TargetCacheOptions none;
  none.targets = false;
  const std::string plain = dir_.path("plain.h5");
  test::write_target_cache(plain, none);
  DatasetOptions off = whole_cache();
  off.targets = false;
  for (const auto& [path, options] : {std::pair{plain, whole_cache()}, std::pair{path_, off}}) {
    const CacheDataset dataset(path, options);
    EXPECT_FALSE(dataset.targets().any());
    const Batch b = serve_all(dataset, batches_of(kTargetImages)).at(0);
    for (const torch::Tensor* t : {&b.masks, &b.mask_valid, &b.boxes, &b.box_counts, &b.box_valid,
                                   &b.landmarks, &b.landmark_counts, &b.landmark_valid}) {
      EXPECT_FALSE(t->defined()) << path;
    }
    EXPECT_TRUE(b.box_list().empty());
    EXPECT_TRUE(b.landmark_list().empty());
    EXPECT_EQ(b.images.size(0), 6);
    const CacheExample e = CacheDataset(path, options).get(0);
    EXPECT_FALSE(e.mask.defined());
    EXPECT_FALSE(e.boxes.defined());
    EXPECT_EQ(e.mask_state, TargetState::kNone);
  }
}

TEST_F(TargetServing, TargetsFollowTheRowsOfASplitPart) {
  {
    const CacheReader reader(path_);
    SplitOptions options;
    options.ratios = {0.5, 0.5};
    options.seed = 3;
    write_split(path_, make_split(reader, options, 2));
  }
  DatasetOptions options;
  options.part = "val";
  const CacheDataset dataset(path_, options);
  ASSERT_GT(*dataset.size(), 0u);
  ASSERT_LT(*dataset.size(), kTargetImages);
  const CacheReader reader(path_);
  const Batch b = serve_all(dataset, batches_of(kTargetImages, 2)).at(0);
  for (std::int64_t i = 0; i < b.sample_ids.size(0); ++i) {
    const auto row = static_cast<std::size_t>(b.sample_ids[i].item<std::int64_t>());
    EXPECT_EQ(row, static_cast<std::size_t>(dataset.sample_ids()[static_cast<std::size_t>(i)]));
    EXPECT_TRUE(torch::equal(b.masks[i], expected_mask(reader, row))) << "row " << row;
    EXPECT_EQ(b.box_counts[i].item<std::int64_t>(), static_cast<std::int64_t>(reader.boxes(row).size()));
    EXPECT_EQ(b.box_valid[i].item<bool>(), reader.box_states()[row] == TargetState::kValid);
  }
}

TEST_F(TargetServing, TheTorchDataPathCollatesTheSameBatchAsTheLoader) {
  CacheDataset dataset(path_, whole_cache());
  const Batch served = serve_all(dataset, batches_of(kTargetImages)).at(0);
  const Batch collated = CollateBatch().apply_batch(dataset.get_batch({0, 1, 2, 3, 4, 5}));
  const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return a.defined() && b.defined() && a.scalar_type() == b.scalar_type() && torch::equal(a, b);
  };
  EXPECT_TRUE(same(served.images, collated.images));
  EXPECT_TRUE(same(served.labels, collated.labels));
  EXPECT_TRUE(same(served.sample_ids, collated.sample_ids));
  EXPECT_TRUE(same(served.masks, collated.masks));
  EXPECT_TRUE(same(served.mask_valid, collated.mask_valid));
  EXPECT_TRUE(same(served.boxes, collated.boxes));
  EXPECT_TRUE(same(served.box_counts, collated.box_counts));
  EXPECT_TRUE(same(served.box_valid, collated.box_valid));
  EXPECT_TRUE(same(served.landmarks, collated.landmarks));
  EXPECT_TRUE(same(served.landmark_counts, collated.landmark_counts));
  EXPECT_TRUE(same(served.landmark_valid, collated.landmark_valid));
}

TEST_F(TargetServing, CollateBatchRefusesBoxesWithoutTheLabelColumnNamingTheSample) {
  CacheDataset dataset(path_, whole_cache());
  std::vector<CacheExample> examples = dataset.get_batch({0, 1});
  examples[0].boxes = examples[0].boxes.slice(1, 0, 4);  // [n,4]: the layout before the label column
  try {
    CollateBatch().apply_batch(examples);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 0's boxes must be float32 [n,5]"), std::string::npos)
        << e.what();
  }
}

TEST_F(TargetServing, ACacheExampleCarriesItsSamplesTargets) {
  CacheDataset dataset(path_, whole_cache());
  const CacheExample e0 = dataset.get(0);
  EXPECT_EQ(e0.mask.sizes(), (std::vector<std::int64_t>{1, kTargetHeight, kTargetWidth}));
  EXPECT_EQ(e0.mask_state, TargetState::kValid);
  EXPECT_EQ(e0.boxes.scalar_type(), torch::kFloat32);
  EXPECT_EQ(floats(e0.boxes),
            (std::vector<float>{1, 2, 5, 6.5f, 1, 8.5f, 0, 16, 12, 2}));  // as box_list()[0]
  EXPECT_EQ(e0.boxes.sizes(), (std::vector<std::int64_t>{2, 5}));
  EXPECT_EQ(e0.box_state, TargetState::kValid);
  EXPECT_EQ(e0.landmarks.sizes(), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(floats(e0.landmarks), (std::vector<float>{3.25f, 4.75f, 3}));
  const CacheExample e3 = dataset.get(3);
  EXPECT_EQ(e3.box_state, TargetState::kInvalid);
  EXPECT_EQ(e3.boxes.size(0), 0);
  const CacheExample e2 = dataset.get(2);
  EXPECT_EQ(e2.mask_state, TargetState::kNone);
  EXPECT_EQ(e2.mask.sum().item<std::int64_t>(), 0);
}

TEST_F(TargetServing, ImageOnlyAugmentationIsRefusedForASourceWithTargets) {
  const CacheDataset dataset(path_, whole_cache());
  LoaderOptions options = batches_of(2);
  options.augment = [](torch::Tensor&, const std::vector<std::int64_t>&, std::int64_t) {};
  try {
    Loader loader(dataset, torch::data::samplers::SequentialSampler(6), options);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("augment_targets"), std::string::npos) << e.what();
  }
  DatasetOptions off = whole_cache();
  off.targets = false;
  EXPECT_NO_THROW(Loader(CacheDataset(path_, off), torch::data::samplers::SequentialSampler(6), options));
}

TEST_F(TargetServing, BothHooksAtOnceAreAConfigErrorNamingBoth) {
  LoaderOptions options = batches_of(2);
  options.augment = [](torch::Tensor&, const std::vector<std::int64_t>&, std::int64_t) {};
  options.augment_targets = [](Batch&) {};
  try {
    options.validate();
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("LoaderOptions.augment "), std::string::npos) << what;
    EXPECT_NE(what.find("LoaderOptions.augment_targets"), std::string::npos) << what;
  }
}

TEST_F(TargetServing, TheTargetHookSeesTheCollatedBatchAndItsChangesAreServed) {
  const CacheDataset dataset(path_, whole_cache());
  LoaderOptions options = batches_of(3);
  options.augment_targets = [](Batch& b) {
    ASSERT_TRUE(b.boxes.defined());  // collated before the hook
    b.masks.add_(10);
    b.box_counts.zero_();
    b.images.fill_(0.5f);
  };
  const std::vector<Batch> batches = serve_all(dataset, options);
  ASSERT_EQ(batches.size(), 2u);
  const CacheReader reader(path_);
  for (const Batch& b : batches) {
    EXPECT_EQ(b.box_counts.sum().item<std::int64_t>(), 0);
    EXPECT_EQ(b.images.min().item<float>(), 0.5f);
    for (std::int64_t i = 0; i < 3; ++i) {
      const auto row = static_cast<std::size_t>(b.sample_ids[i].item<std::int64_t>());
      EXPECT_TRUE(torch::equal(b.masks[i], expected_mask(reader, row) + 10));
    }
  }
}

TEST_F(TargetServing, AFailingTargetHookIsAWorkerErrorNamingTheBatch) {
  const CacheDataset dataset(path_, whole_cache());
  LoaderOptions options = batches_of(3);
  options.augment_targets = [](Batch& b) {
    if (b.index == 1) throw FormatError("box out of the image");
  };
  Loader loader(dataset, torch::data::samplers::SequentialSampler(6), options);
  EXPECT_TRUE(loader.next().has_value());
  try {
    loader.next();
    FAIL() << "no error";
  } catch (const WorkerError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("augmenting the images and targets of batch 1 of epoch 0"), std::string::npos)
        << what;
    EXPECT_NE(what.find("box out of the image"), std::string::npos) << what;
  }
}

// 2 samples of 4 x 5 whose masks hold `id` (sample 1) and 1 (sample 0).
class MaskSource : public SampleSource {
 public:
  MaskSource(std::uint16_t id, bool as_uint8) : id_(id) { output_.masks_uint8 = as_uint8; }
  std::size_t size() const override { return 2; }
  SampleLayout layout() const override { return {1, 4, 5, PixelDepth::kUInt8}; }
  SampleOutput output() const override { return output_; }
  void read(std::size_t, void* out) const override { std::fill_n(static_cast<std::uint8_t*>(out), 20, 7); }
  std::size_t label_columns() const override { return 0; }
  void label(std::size_t, std::int64_t* out) const override { *out = 0; }
  std::int64_t sample_id(std::size_t index) const override { return 40 + static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override { return "sample " + std::to_string(40 + index); }
  TargetKinds targets() const override { return {true, false, false, 0}; }
  TargetState read_mask(std::size_t index, std::uint16_t* out) const override {
    std::fill_n(out, 20, index == 1 ? id_ : std::uint16_t{1});
    return TargetState::kValid;
  }

 private:
  std::uint16_t id_;
  SampleOutput output_;
};

TEST(TargetServingSource, AMaskIdAboveUint8IsAWorkerErrorNamingTheSample) {
  Loader loader(std::make_shared<MaskSource>(300, true), torch::data::samplers::SequentialSampler(2),
                batches_of(2, 1));
  try {
    loader.next();
    FAIL() << "no error";
  } catch (const WorkerError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sample 41"), std::string::npos) << what;
    EXPECT_NE(what.find("300"), std::string::npos) << what;
  }
  Loader wide(std::make_shared<MaskSource>(300, false), torch::data::samplers::SequentialSampler(2),
              batches_of(2, 1));
  const Batch b = *wide.next();
  EXPECT_EQ(b.masks[1].max().item<std::int64_t>(), 300);
  EXPECT_EQ(b.masks[0].max().item<std::int64_t>(), 1);
  EXPECT_FALSE(b.boxes.defined());  // a kind the source does not name
}

}  // namespace
}  // namespace medload::loader
