// Augmentation plugged into medload's loader with one line (LoaderOptions::augment =
// make_hook(...)): a sample comes out augmented the same whatever the batch size, the reader
// threads and the order it is served in, and differently in each epoch.

#include <gtest/gtest.h>
#include <torch/data/samplers/random.h>
#include <torch/data/samplers/sequential.h>

#include <cmath>
#include <map>

#include "medload/augment/augmenter.h"
#include "medload/loader/serve/loader.h"

namespace {

using namespace medload;

// 40 textured 32 x 28 uint8 samples; id = 500 + index.
class TexturedSource : public loader::SampleSource {
 public:
  explicit TexturedSource(loader::SampleOutput output) : output_(output) {}
  std::size_t size() const override { return 40; }
  loader::SampleLayout layout() const override { return {1, 32, 28, loader::PixelDepth::kUInt8}; }
  loader::SampleOutput output() const override { return output_; }
  void read(std::size_t index, void* out) const override {
    auto* p = static_cast<std::uint8_t*>(out);
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 28; ++x) {
        p[y * 28 + x] = static_cast<std::uint8_t>(128 + 100 * std::sin(x / 3.0 + index) * std::cos(y / 4.0));
      }
    }
  }
  std::size_t label_columns() const override { return 0; }
  void label(std::size_t index, std::int64_t* out) const override {
    *out = static_cast<std::int64_t>(index % 2);
  }
  std::int64_t sample_id(std::size_t index) const override { return 500 + static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override { return "sample " + std::to_string(index); }

 private:
  loader::SampleOutput output_;
};

augment::AugmentOptions chain() {
  augment::AugmentOptions o = augment::AugmentOptions::full_chain();
  o.seed = 3;
  return o;
}

// Every served sample of `epoch`, by id.
std::map<std::int64_t, torch::Tensor> serve(loader::SampleOutput output, std::size_t batch_size,
                                            std::size_t threads, bool shuffled, std::size_t epoch,
                                            augment::Normalization norm = {}) {
  auto source = std::make_shared<TexturedSource>(output);
  loader::LoaderOptions options;
  options.batch_size = batch_size;
  options.threads = threads;
  options.augment = augment::make_hook(chain(), threads, norm);  // the one line
  std::map<std::int64_t, torch::Tensor> out;
  auto collect = [&](loader::Loader& l) {
    l.set_epoch(epoch);
    while (auto batch = l.next()) {
      for (std::int64_t j = 0; j < batch->images.size(0); ++j) {
        out[batch->sample_ids[j].item<std::int64_t>()] = batch->images[j].clone();
      }
    }
  };
  if (shuffled) {
    loader::Loader l(source, torch::data::samplers::RandomSampler(40), options);
    collect(l);
  } else {
    loader::Loader l(source, torch::data::samplers::SequentialSampler(40), options);
    collect(l);
  }
  return out;
}

loader::SampleOutput raw_uint8() {
  loader::SampleOutput o;
  o.as_float = false;
  return o;
}

}  // namespace

TEST(AugmentHook, LoaderServesTheSameAugmentationWhateverBatchThreadsAndOrder) {
  const auto a = serve(raw_uint8(), 8, 1, false, 1);
  const auto b = serve(raw_uint8(), 5, 2, true, 1);
  ASSERT_EQ(a.size(), 40u);
  ASSERT_EQ(b.size(), 40u);
  for (const auto& [id, image] : a) EXPECT_TRUE(image.equal(b.at(id))) << "sample " << id;
  // It is the augmentation of that sample alone, keyed by its id and the epoch.
  TexturedSource source(raw_uint8());
  torch::Tensor alone = torch::empty({1, 1, 32, 28}, torch::kUInt8);
  source.read(7, alone.data_ptr());
  augment::Augmenter(chain(), 1).apply(alone, {507}, 1);
  EXPECT_TRUE(alone[0].equal(a.at(507)));
  // Another epoch, another augmentation.
  const auto c = serve(raw_uint8(), 8, 1, false, 2);
  int differing = 0;
  for (const auto& [id, image] : a) differing += !image.equal(c.at(id));
  EXPECT_EQ(differing, 40);
}

TEST(AugmentHook, NormalisedFloatServingIsAugmentedInPixelSpace) {
  loader::SampleOutput normalised;
  normalised.mean = 0.5f;
  normalised.std = 0.25f;
  const auto served = serve(normalised, 8, 2, false, 0, {normalised.mean, normalised.std});
  const auto raw = serve(raw_uint8(), 8, 2, false, 0);
  for (const auto& [id, image] : served) {
    // The uint8 path rounds to grey levels; the float path does not: within one level + rounding.
    const torch::Tensor expected = raw.at(id).to(torch::kFloat32).div(255.0).sub(0.5).div(0.25);
    EXPECT_LT(image.sub(expected).abs().mean().item<double>(), 2.0 / 255.0 / 0.25) << "sample " << id;
  }
}
