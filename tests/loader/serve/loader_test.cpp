#include "medload/loader/serve/loader.h"

#include <gtest/gtest.h>
#include <torch/data/samplers/random.h>
#include <torch/data/samplers/sequential.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "medload/core/error.h"
#include "medload/samplers/weighted_random_sampler.h"

namespace medload::loader {
namespace {

// An in-memory source: sample i has every pixel = (i * 7 + offset) % 251 (offset = pixel position
// % 3), label i % 3 (or a multi-label row), id 1000 + i.
class MemorySource : public SampleSource {
 public:
  MemorySource(std::size_t n, SampleOutput output = {}, std::size_t label_columns = 0)
      : n_(n), output_(output), label_columns_(label_columns) {}
  std::size_t size() const override { return n_; }
  SampleLayout layout() const override { return {1, 4, 5, PixelDepth::kUInt8}; }
  SampleOutput output() const override { return output_; }
  void read(std::size_t index, void* out) const override {
    reads.fetch_add(1);
    if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    if (static_cast<long>(index) == fail_at) throw FormatError("checksum mismatch");
    auto* pixels = static_cast<std::uint8_t*>(out);
    for (std::size_t k = 0; k < 20; ++k) pixels[k] = value(index, k);
  }
  std::size_t label_columns() const override { return label_columns_; }
  void label(std::size_t index, std::int64_t* out) const override {
    if (label_columns_ == 0) {
      *out = static_cast<std::int64_t>(index % 3);
    } else {
      for (std::size_t k = 0; k < label_columns_; ++k) out[k] = (index >> k) & 1;
    }
  }
  std::int64_t sample_id(std::size_t index) const override { return 1000 + static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override {
    return "sample " + std::to_string(1000 + index) + " (img" + std::to_string(index) + ".png) of mem.h5";
  }
  static std::uint8_t value(std::size_t index, std::size_t k) {
    return static_cast<std::uint8_t>((index * 7 + k % 3) % 251);
  }

  mutable std::atomic<std::size_t> reads{0};
  long fail_at = -1;
  int delay_us = 0;

 private:
  std::size_t n_;
  SampleOutput output_;
  std::size_t label_columns_;
};

std::vector<std::int64_t> ids_of(const Batch& batch) {
  const auto* p = batch.sample_ids.data_ptr<std::int64_t>();
  return {p, p + batch.sample_ids.numel()};
}

// Two reader threads, `batch_size` samples per batch, `prefetch` batches ahead.
LoaderOptions two_threads(std::size_t batch_size, std::size_t prefetch = LoaderOptions{}.prefetch) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.threads = 2;
  options.prefetch = prefetch;
  return options;
}

TEST(Loader, ServesEverySampleOnceInSamplerOrderWithExactValues) {
  SampleOutput output;
  output.mean = 0.25f;
  output.std = 0.5f;
  auto source = std::make_shared<MemorySource>(103, output);
  LoaderOptions options = two_threads(8);
  Loader loader(source, torch::data::samplers::SequentialSampler(103), options);
  std::size_t expected = 0;
  std::size_t batches = 0;
  for (Batch& batch : loader) {
    EXPECT_EQ(batch.index, batches++);
    ASSERT_EQ(batch.images.dim(), 4);
    EXPECT_EQ(batch.images.size(1), 1);
    EXPECT_EQ(batch.images.size(2), 4);
    EXPECT_EQ(batch.images.size(3), 5);
    EXPECT_EQ(batch.images.scalar_type(), torch::kFloat32);
    const float* pixels = batch.images.data_ptr<float>();
    for (std::int64_t j = 0; j < batch.images.size(0); ++j, ++expected) {
      EXPECT_EQ(batch.sample_ids[j].item<std::int64_t>(), 1000 + static_cast<std::int64_t>(expected));
      EXPECT_EQ(batch.labels[j].item<std::int64_t>(), static_cast<std::int64_t>(expected % 3));
      for (std::size_t k = 0; k < 20; ++k) {
        const float want = (MemorySource::value(expected, k) / 255.0f - 0.25f) / 0.5f;
        ASSERT_NEAR(pixels[j * 20 + k], want, 1e-6f);
      }
    }
  }
  EXPECT_EQ(expected, 103u);
  EXPECT_EQ(batches, 13u);  // 12 full + one of 7
}

TEST(Loader, RandomSamplerOrderIsKeptWithManyThreads) {
  auto source = std::make_shared<MemorySource>(500);
  source->delay_us = 50;
  LoaderOptions options;
  options.batch_size = 16;
  options.threads = 4;
  options.prefetch = 4;
  auto shared = std::make_shared<torch::data::samplers::RandomSampler>(500);
  Loader loader(source, shared, options);
  std::multiset<std::int64_t> seen;
  std::vector<std::int64_t> order;
  while (auto batch = loader.next()) {
    for (std::int64_t id : ids_of(*batch)) {
      seen.insert(id);
      order.push_back(id);
    }
    // Every image row matches its id, whatever thread read it.
    for (std::int64_t j = 0; j < batch->images.size(0); ++j) {
      const std::size_t index = static_cast<std::size_t>(batch->sample_ids[j].item<std::int64_t>() - 1000);
      ASSERT_NEAR(batch->images[j][0][0][1].item<float>(), MemorySource::value(index, 1) / 255.0f, 1e-6f);
    }
  }
  EXPECT_EQ(seen.size(), 500u);
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 500u);
}

TEST(Loader, DropLastDropsTheShortBatch) {
  auto source = std::make_shared<MemorySource>(20);
  LoaderOptions options;
  options.batch_size = 8;
  options.threads = 1;
  options.drop_last = true;
  Loader loader(source, torch::data::samplers::SequentialSampler(20), options);
  std::size_t batches = 0;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->images.size(0), 8);
    ++batches;
  }
  EXPECT_EQ(batches, 2u);
}

// True when every image of `batch` holds the pixels of the sample its id names (uint8 output).
bool holds_its_samples(const Batch& batch) {
  const auto* pixels = batch.images.data_ptr<std::uint8_t>();
  for (std::int64_t j = 0; j < batch.images.size(0); ++j) {
    const auto index = static_cast<std::size_t>(batch.sample_ids[j].item<std::int64_t>() - 1000);
    for (std::size_t k = 0; k < 20; ++k) {
      if (pixels[j * 20 + k] != MemorySource::value(index, k)) return false;
    }
  }
  return true;
}

// A source whose samples are served as raw uint8 pixels.
std::shared_ptr<MemorySource> uint8_source(std::size_t n) {
  SampleOutput output;
  output.as_float = false;
  return std::make_shared<MemorySource>(n, output);
}

TEST(Loader, Uint8OutputIsTheRawPixels) {
  LoaderOptions options = two_threads(10);
  Loader loader(uint8_source(10), torch::data::samplers::SequentialSampler(10), options);
  auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(ids_of(*batch),
            (std::vector<std::int64_t>{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009}));
  EXPECT_TRUE(holds_its_samples(*batch));
}

TEST(Loader, MultiLabelRowsAreCollatedAsBxK) {
  auto source = std::make_shared<MemorySource>(6, SampleOutput{}, 3);
  LoaderOptions options;
  options.batch_size = 6;
  options.threads = 1;
  Loader loader(source, torch::data::samplers::SequentialSampler(6), options);
  auto batch = loader.next();
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->labels.sizes(), (std::vector<std::int64_t>{6, 3}));
  EXPECT_EQ(batch->labels[5][0].item<std::int64_t>(), 1);
  EXPECT_EQ(batch->labels[5][1].item<std::int64_t>(), 0);
  EXPECT_EQ(batch->labels[5][2].item<std::int64_t>(), 1);
}

TEST(Loader, AWorkerExceptionSurfacesNamingTheSampleAndTheLoaderGoesOn) {
  auto source = std::make_shared<MemorySource>(32);
  source->fail_at = 13;
  LoaderOptions options = two_threads(8);
  Loader loader(source, torch::data::samplers::SequentialSampler(32), options);
  ASSERT_TRUE(loader.next());  // batch 0: samples 0..7
  try {
    loader.next();  // batch 1 holds sample 13
    FAIL() << "no exception";
  } catch (const WorkerError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("sample 1013 (img13.png) of mem.h5"), std::string::npos) << message;
    EXPECT_NE(message.find("checksum mismatch"), std::string::npos) << message;
  }
  auto next = loader.next();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->sample_ids[0].item<std::int64_t>(), 1016);
}

TEST(Loader, ReadsAtMostPrefetchBatchesAheadOfTheCaller) {
  auto source = std::make_shared<MemorySource>(1000);
  LoaderOptions options = two_threads(10, 3);
  Loader loader(source, torch::data::samplers::SequentialSampler(1000), options);
  // Waits until the workers have read `expected` samples (or 10 s), then a little longer, so that
  // any read beyond the bound would have happened.
  auto settle = [&](std::size_t expected) {
    for (int i = 0; i < 1000 && source->reads.load() < expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return source->reads.load();
  };
  ASSERT_TRUE(loader.next());
  // The returned batch plus `prefetch` batches in flight, and not one sample more.
  EXPECT_EQ(settle(10u * (1 + 3)), 10u * (1 + 3));
  ASSERT_TRUE(loader.next());
  EXPECT_EQ(settle(10u * (2 + 3)), 10u * (2 + 3));
}

TEST(Loader, DestroyingMidEpochCancelsQueuedReadsAndJoins) {
  auto source = std::make_shared<MemorySource>(100000);
  source->delay_us = 200;
  LoaderOptions options = two_threads(64, 8);
  {
    Loader loader(source, torch::data::samplers::SequentialSampler(100000), options);
    ASSERT_TRUE(loader.next());
  }
  const std::size_t after = source->reads.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(source->reads.load(), after);  // nothing runs after the destructor returned
  EXPECT_LT(after, 64u * 10);
}

TEST(Loader, BatchesTheCallerKeepsAreNeverReusedForLaterBatches) {
  auto source = uint8_source(400);
  LoaderOptions options = two_threads(8, 2);
  Loader loader(source, torch::data::samplers::RandomSampler(400), options);
  std::vector<Batch> kept;
  std::set<const void*> storage;
  std::size_t dropped = 0;
  for (Batch& batch : loader) {
    if (batch.index % 2 == 0) {
      kept.push_back(batch);  // held to the end
      storage.insert(batch.images.data_ptr());
    } else {
      ++dropped;  // let go at once: its storage may serve a later batch
    }
  }
  ASSERT_EQ(kept.size(), 25u);
  EXPECT_EQ(dropped, 25u);
  EXPECT_EQ(storage.size(), kept.size());  // no two kept batches share storage
  std::set<std::int64_t> ids;
  for (const Batch& batch : kept) {
    EXPECT_TRUE(holds_its_samples(batch)) << "batch " << batch.index << " was overwritten";
    for (std::int64_t id : ids_of(batch)) ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 200u);
}

TEST(Loader, ALoopThatKeepsNoBatchUsesPrefetchPlusOneBuffers) {
  // The iterator lets go of the batch the loop is done with before it waits for the next, so the
  // storage in use is the `prefetch` batches being read plus the one the loop body holds.
  auto source = uint8_source(400);
  LoaderOptions options = two_threads(8, 2);
  Loader loader(source, torch::data::samplers::RandomSampler(400), options);
  std::set<const void*> storage;
  std::size_t batches = 0;
  for (Batch& batch : loader) {
    EXPECT_TRUE(holds_its_samples(batch)) << "batch " << batch.index;
    storage.insert(batch.images.data_ptr());
    ++batches;
  }
  EXPECT_EQ(batches, 50u);
  EXPECT_LE(storage.size(), options.prefetch + 1);
}

TEST(Loader, ABatchOutlivesItsLoader) {
  auto source = uint8_source(64);
  LoaderOptions options = two_threads(16);
  torch::optional<Batch> first;
  torch::optional<Batch> second;
  {
    Loader loader(source, torch::data::samplers::SequentialSampler(64), options);
    first = loader.next();
    second = loader.next();
  }
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(holds_its_samples(*first));
  EXPECT_TRUE(holds_its_samples(*second));
  first->images.fill_(0);  // the storage is still ours to write
  first.reset();           // and goes back to a pool that outlived the loader
  EXPECT_TRUE(holds_its_samples(*second));
}

TEST(Loader, AugmentHookSeesIdsAndEpochAndItsChangesAreServed) {
  auto source = std::make_shared<MemorySource>(12);
  LoaderOptions options = two_threads(4);
  std::atomic<int> calls{0};
  options.augment = [&calls](torch::Tensor& images, const std::vector<std::int64_t>& ids,
                             std::int64_t epoch) {
    ++calls;
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(images.size(0)));
    images.fill_(static_cast<float>(epoch * 100 + ids.front()));
  };
  Loader loader(source, torch::data::samplers::SequentialSampler(12), options);
  loader.set_epoch(3);
  auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_FLOAT_EQ(batch->images[2][0][1][1].item<float>(), 300.0f + 1000.0f);
  while (loader.next()) {
  }
  EXPECT_EQ(calls.load(), 3);
}

TEST(Loader, AnAugmentExceptionNamesTheBatch) {
  auto source = std::make_shared<MemorySource>(8);
  LoaderOptions options;
  options.batch_size = 4;
  options.threads = 1;
  options.augment = [](torch::Tensor&, const std::vector<std::int64_t>&, std::int64_t) {
    throw std::runtime_error("rotation above the limit");
  };
  Loader loader(source, torch::data::samplers::SequentialSampler(8), options);
  try {
    loader.next();
    FAIL() << "no exception";
  } catch (const WorkerError& e) {
    EXPECT_NE(std::string(e.what()).find("augmenting batch 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rotation above the limit"), std::string::npos) << e.what();
  }
}

TEST(Loader, StateResumesExactlyMidEpochWithAMedloadSampler) {
  auto source = std::make_shared<MemorySource>(300);
  std::vector<double> weights(300, 1.0);
  weights[5] = 30.0;
  LoaderOptions options = two_threads(16);
  samplers::WeightedRandomSamplerOptions sampler_options;
  sampler_options.seed = 42;

  Loader first(source, samplers::WeightedRandomSampler(weights, sampler_options), options);
  first.set_epoch(2);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(first.next());
  const LoaderState state = first.state();
  EXPECT_EQ(state.epoch, 2u);
  EXPECT_EQ(state.batches, 5u);
  std::vector<std::vector<std::int64_t>> rest;
  while (auto batch = first.next()) rest.push_back(ids_of(*batch));
  ASSERT_FALSE(rest.empty());

  options.threads = 1;  // a different thread count must not matter
  Loader resumed(source, samplers::WeightedRandomSampler(weights, sampler_options), options);
  resumed.load_state(state);
  std::vector<std::vector<std::int64_t>> again;
  while (auto batch = resumed.next()) again.push_back(ids_of(*batch));
  EXPECT_EQ(again, rest);

  // Epochs differ, and the range-for walks to the next epoch.
  std::vector<std::int64_t> epoch3;
  for (Batch& batch : resumed) {
    EXPECT_EQ(batch.epoch, 3u);
    auto ids = ids_of(batch);
    epoch3.insert(epoch3.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(epoch3.size(), 300u);
  EXPECT_EQ(resumed.epoch(), 3u);
}

TEST(Loader, AnIndexOutsideTheSourceIsAConfigError) {
  auto source = std::make_shared<MemorySource>(5);
  LoaderOptions options;
  options.batch_size = 4;
  options.threads = 1;
  Loader loader(source, torch::data::samplers::SequentialSampler(9), options);
  EXPECT_THROW(
      {
        while (loader.next()) {
        }
      },
      ConfigError);
}

TEST(LoaderOptions, RejectsBadValuesNamingTheField) {
  LoaderOptions options;
  options.batch_size = 0;
  try {
    options.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos);
  }
  options.batch_size = 1;
  options.prefetch = 0;
  EXPECT_THROW(options.validate(), ConfigError);
  options.prefetch = 1;
  options.threads = 300;
  try {
    options.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "LoaderOptions.threads is 300; allowed 0..256");
  }
}

}  // namespace
}  // namespace medload::loader
