// Two views of one sample (weak/strong consistency training): the view enters the augmentation
// key, view 0 draws what augmenters always drew, the loader reads each sample once and serves
// both views, each replaying exactly; the per-label validity mask reaches the batch.

#include <gtest/gtest.h>
#include <torch/data/samplers/sequential.h>

#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "medload/augment/augmenter.h"
#include "medload/core/error.h"
#include "medload/loader/serve/loader.h"

namespace {

using namespace medload;
using augment::AppliedParams;
using augment::Augmenter;
using augment::AugmentOptions;

// 24 textured 32 x 28 uint8 samples (id = 900 + index) that count their reads; labels: a row of
// three per sample, 1/0 with every third entry of odd samples unknown (-1).
class CountingSource : public loader::SampleSource {
 public:
  explicit CountingSource(std::size_t label_columns = 3) : label_columns_(label_columns) {}
  std::size_t size() const override { return 24; }
  loader::SampleLayout layout() const override { return {1, 32, 28, loader::PixelDepth::kUInt8}; }
  loader::SampleOutput output() const override {
    loader::SampleOutput o;
    o.as_float = false;
    return o;
  }
  void read(std::size_t index, void* out) const override {
    ++reads;
    auto* p = static_cast<std::uint8_t*>(out);
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 28; ++x) {
        p[y * 28 + x] = static_cast<std::uint8_t>(128 + 90 * std::sin(x / 3.0 + index) * std::cos(y / 5.0));
      }
    }
  }
  std::size_t label_columns() const override { return label_columns_; }
  void label(std::size_t index, std::int64_t* out) const override {
    if (label_columns_ == 0) {
      *out = index % 4 == 3 ? -1 : static_cast<std::int64_t>(index % 2);
      return;
    }
    for (std::size_t k = 0; k < label_columns_; ++k) {
      out[k] = (index % 2 == 1 && k == index % 3) ? -1 : static_cast<std::int64_t>((index + k) % 2);
    }
  }
  std::int64_t sample_id(std::size_t index) const override { return 900 + static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override { return "sample " + std::to_string(index); }

  mutable std::atomic<int> reads{0};

 private:
  std::size_t label_columns_;
};

torch::Tensor read_alone(const CountingSource& source, std::size_t index) {
  torch::Tensor t = torch::empty({1, 1, 32, 28}, torch::kUInt8);
  source.read(index, t.data_ptr());
  return t;
}

}  // namespace

TEST(AugmentViews, ViewZeroDrawsWhatAnAugmenterAlwaysDrewAndOtherViewsDiffer) {
  AugmentOptions o = AugmentOptions::full_chain();
  o.seed = 11;
  const Augmenter plain(o);
  const Augmenter zero(o, 1, {}, 0);
  const Augmenter one(o, 1, {}, 1);
  const Augmenter two(o, 1, {}, 2);
  EXPECT_EQ(one.view(), 1u);
  int differ_one = 0, differ_two = 0;
  for (std::int64_t id = 0; id < 50; ++id) {
    const AppliedParams p = plain.draw(id, 3), z = zero.draw(id, 3), a = one.draw(id, 3), b = two.draw(id, 3);
    EXPECT_EQ(p.noise_key, z.noise_key);
    EXPECT_EQ(p.rotation_degrees, z.rotation_degrees);
    EXPECT_EQ(z.view, 0u);
    EXPECT_EQ(a.view, 1u);
    differ_one += a.noise_key != p.noise_key && a.rotation_degrees != p.rotation_degrees;
    differ_two += b.noise_key != a.noise_key && b.gamma != a.gamma;
    // Each view is a pure function of (seed, epoch, id, view).
    EXPECT_EQ(one.draw(id, 3).noise_key, a.noise_key);
  }
  EXPECT_EQ(differ_one, 50);
  EXPECT_EQ(differ_two, 50);
}

TEST(AugmentViews, AppliedParamsCarryTheViewThroughJson) {
  AugmentOptions o = AugmentOptions::full_chain();
  const AppliedParams p = Augmenter(o, 1, {}, 1).draw(5, 2);
  const auto j = p.to_json();
  ASSERT_TRUE(j.contains("view"));
  EXPECT_EQ(j.at("view"), 1);
  EXPECT_EQ(AppliedParams::from_json(j).view, 1u);
  // View 0 writes no key (logs of single-view runs are unchanged) and reads back as 0.
  const auto j0 = Augmenter(o).draw(5, 2).to_json();
  EXPECT_FALSE(j0.contains("view"));
  EXPECT_EQ(AppliedParams::from_json(j0).view, 0u);
  for (const nlohmann::json& bad :
       {nlohmann::json(-1), nlohmann::json(4294967296ULL), nlohmann::json("1"), nlohmann::json(1.5)}) {
    auto k = j;
    k["view"] = bad;
    EXPECT_THROW(AppliedParams::from_json(k), ConfigError) << bad.dump();
  }
}

TEST(AugmentViews, PresetsStayInsideTheMedicalLimits) {
  const AugmentOptions weak = AugmentOptions::weak_view();
  const AugmentOptions strong = AugmentOptions::strong_view();
  EXPECT_NO_THROW(weak.validate());
  EXPECT_NO_THROW(strong.validate());
  EXPECT_TRUE(weak.active_overrides().empty());
  EXPECT_TRUE(strong.active_overrides().empty());
  EXPECT_EQ(weak.gamma.probability, 0.0);
  EXPECT_GT(weak.rotation.probability, 0.0);
  EXPECT_EQ(strong.gamma.probability, 1.0);
  EXPECT_EQ(strong.rotation.max_degrees, 10.0);
  EXPECT_EQ(strong.horizontal_flip.probability, 0.0);
}

TEST(AugmentViews, TwoViewHooksNameTheViewWhoseConfigBreaksALimit) {
  AugmentOptions strong = AugmentOptions::strong_view();
  strong.gamma.max = 3.0;  // past the medical limit of 2
  try {
    augment::make_two_view_hooks(AugmentOptions::weak_view(), strong);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("strong view"), std::string::npos) << what;
    EXPECT_NE(what.find("gamma.max"), std::string::npos) << what;
  }
  AugmentOptions weak = AugmentOptions::weak_view();
  weak.rotation.max_degrees = 30.0;
  try {
    augment::make_two_view_hooks(weak, AugmentOptions::strong_view());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("weak view"), std::string::npos) << e.what();
  }
  // With the override the strong view runs, and records it.
  strong.unsafe_override = true;
  EXPECT_NO_THROW(augment::make_two_view_hooks(AugmentOptions::weak_view(), strong));
  EXPECT_TRUE(Augmenter(strong, 1, {}, 1).draw(0, 0).unsafe_override);
}

TEST(AugmentViews, LoaderReadsOnceAndServesBothViewsEachReplayingExactly) {
  auto source = std::make_shared<CountingSource>();
  AugmentOptions weak = AugmentOptions::weak_view(), strong = AugmentOptions::strong_view();
  weak.seed = strong.seed = 4;  // equal seeds: the view alone tells them apart
  const auto hooks = augment::make_two_view_hooks(weak, strong, 2);
  loader::LoaderOptions options;
  options.batch_size = 5;
  options.threads = 2;
  options.augment = hooks.weak;
  options.augment_strong = hooks.strong;
  loader::Loader l(source, torch::data::samplers::SequentialSampler(24), options);
  l.set_epoch(2);
  std::map<std::int64_t, std::pair<torch::Tensor, torch::Tensor>> served;
  while (auto batch = l.next()) {
    ASSERT_TRUE(batch->images_strong.defined());
    EXPECT_EQ(batch->images_strong.sizes(), batch->images.sizes());
    EXPECT_EQ(batch->images_strong.scalar_type(), batch->images.scalar_type());
    for (std::int64_t j = 0; j < batch->images.size(0); ++j) {
      served[batch->sample_ids[j].item<std::int64_t>()] = {batch->images[j].clone(),
                                                           batch->images_strong[j].clone()};
    }
  }
  ASSERT_EQ(served.size(), 24u);
  EXPECT_EQ(source->reads.load(), 24);  // one read per sample for both views
  int views_differ = 0;
  for (std::size_t i = 0; i < 24; ++i) {
    const std::int64_t id = 900 + static_cast<std::int64_t>(i);
    torch::Tensor w = read_alone(*source, i), s = read_alone(*source, i);
    Augmenter(weak, 1, {}, 0).apply(w, {id}, 2);
    Augmenter(strong, 1, {}, 1).apply(s, {id}, 2);
    EXPECT_TRUE(w[0].equal(served.at(id).first)) << "weak view of " << id;
    EXPECT_TRUE(s[0].equal(served.at(id).second)) << "strong view of " << id;
    views_differ += !served.at(id).first.equal(served.at(id).second);
  }
  EXPECT_EQ(views_differ, 24);
}

TEST(AugmentViews, WithoutAStrongHookTheBatchHasNoStrongView) {
  auto source = std::make_shared<CountingSource>();
  loader::LoaderOptions options;
  options.batch_size = 8;
  options.threads = 1;
  loader::Loader l(source, torch::data::samplers::SequentialSampler(24), options);
  auto batch = l.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_FALSE(batch->images_strong.defined());
}

TEST(AugmentViews, StrongViewAloneStartsFromTheImagesAsRead) {
  auto source = std::make_shared<CountingSource>();
  loader::LoaderOptions options;
  options.batch_size = 6;
  options.threads = 1;
  options.augment_strong = augment::make_hook(AugmentOptions::strong_view(), 1);
  loader::Loader l(source, torch::data::samplers::SequentialSampler(24), options);
  auto batch = l.next();
  ASSERT_TRUE(batch.has_value());
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(batch->images[static_cast<std::int64_t>(i)].equal(read_alone(*source, i)[0])) << i;
  }
  EXPECT_FALSE(batch->images.equal(batch->images_strong));
}

TEST(AugmentViews, StrongViewWithTargetsIsRefused) {
  loader::LoaderOptions options;
  options.augment_strong = augment::make_hook(AugmentOptions::strong_view(), 1);
  options.augment_targets = [](loader::Batch&) {};
  EXPECT_THROW(options.validate(), ConfigError);
}

TEST(LabelValidity, BatchesCarryAMaskOfTheKnownLabels) {
  for (const std::size_t columns : {std::size_t{0}, std::size_t{3}}) {
    auto source = std::make_shared<CountingSource>(columns);
    loader::LoaderOptions options;
    options.batch_size = 7;
    options.threads = 2;
    loader::Loader l(source, torch::data::samplers::SequentialSampler(24), options);
    std::size_t row = 0;
    while (auto batch = l.next()) {
      ASSERT_EQ(batch->label_valid.scalar_type(), torch::kBool);
      ASSERT_EQ(batch->label_valid.sizes(), batch->labels.sizes());
      const auto width = static_cast<std::int64_t>(std::max<std::size_t>(columns, 1));
      for (std::int64_t j = 0; j < batch->labels.size(0); ++j, ++row) {
        std::vector<std::int64_t> expected(static_cast<std::size_t>(width));
        source->label(row, expected.data());
        const auto labels = batch->labels.reshape({-1, width})[j];
        const auto valid = batch->label_valid.reshape({-1, width})[j];
        for (std::int64_t k = 0; k < width; ++k) {
          EXPECT_EQ(labels[k].item<std::int64_t>(), expected[static_cast<std::size_t>(k)]);
          EXPECT_EQ(valid[k].item<bool>(), expected[static_cast<std::size_t>(k)] >= 0) << row << "," << k;
        }
      }
    }
    EXPECT_EQ(row, 24u);
  }
}
