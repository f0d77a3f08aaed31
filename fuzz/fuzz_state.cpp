// fuzz_state: checkpointed sampler and loader state. A checkpoint is a file a run reads back, so
// its values are untrusted: the bytes choose a sampler (weighted, class-balanced, P x K, each
// possibly wrapped for a distributed rank), take the state that sampler saves, replace, drop or
// mistype some of its keys, and load the result; then they choose a loader state (epoch, batches)
// for a loader over a small in-memory source. FormatError / ConfigError naming the key is the
// expected answer to a state that does not fit; a state that loads must yield only indices inside
// the dataset, never more than an epoch holds, and a loader must serve only valid samples.
#include <fuzzer/FuzzedDataProvider.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/serve/loader.h"
#include "medload/samplers/balanced_batch_sampler.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/distributed_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"

namespace {

using medload::samplers::StreamSampler;

const char* const kKeys[] = {"kind", "fingerprint", "seed", "epoch", "position", "world_size", "rank", "drop_last"};
const std::string kPrefix = "medload_sampler/";

// Builds the sampler the bytes describe: n samples of up to 4 classes, every class present.
std::shared_ptr<StreamSampler> make_sampler(FuzzedDataProvider& in, std::size_t n, std::size_t classes) {
  std::vector<std::int64_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<std::int64_t>(i % classes);
  const std::uint64_t seed = in.ConsumeIntegral<std::uint64_t>();
  std::shared_ptr<StreamSampler> sampler;
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: {
      medload::samplers::WeightedRandomSamplerOptions options;
      options.seed = seed;
      options.num_samples = in.ConsumeIntegralInRange<std::size_t>(0, 3 * n);
      std::vector<double> weights(n);
      for (std::size_t i = 0; i < n; ++i) weights[i] = 1.0 + static_cast<double>(i % 3);
      sampler = std::make_shared<medload::samplers::WeightedRandomSampler>(weights, options);
      break;
    }
    case 1: {
      medload::samplers::ClassBalancedSamplerOptions options;
      options.seed = seed;
      options.num_samples = in.ConsumeIntegralInRange<std::size_t>(0, 3 * n);
      sampler = std::make_shared<medload::samplers::ClassBalancedSampler>(labels, options);
      break;
    }
    default: {
      medload::samplers::BalancedBatchSamplerOptions options;
      options.seed = seed;
      options.classes_per_batch = in.ConsumeIntegralInRange<std::size_t>(1, classes);
      options.samples_per_class = in.ConsumeIntegralInRange<std::size_t>(1, 4);
      options.num_batches = in.ConsumeIntegralInRange<std::size_t>(0, 8);
      sampler = std::make_shared<medload::samplers::BalancedBatchSampler>(labels, options);
      break;
    }
  }
  if (in.ConsumeBool()) {
    medload::samplers::DistributedOptions options;
    options.world_size = in.ConsumeIntegralInRange<std::size_t>(1, 4);
    options.rank = in.ConsumeIntegralInRange<std::size_t>(0, options.world_size - 1);
    options.drop_last = in.ConsumeBool();
    sampler = std::make_shared<medload::samplers::DistributedSampler>(*sampler, options);
  }
  return sampler;
}

// One value of any type a checkpoint can hold in place of an integer or a string.
c10::IValue any_value(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: return c10::IValue(in.ConsumeIntegral<std::int64_t>());
    case 1: return c10::IValue(in.ConsumeIntegralInRange<std::int64_t>(-2, 64));
    case 2: return c10::IValue(in.ConsumeRandomLengthString(32));
    case 3: return c10::IValue(in.ConsumeFloatingPoint<double>());
    default: return c10::IValue(in.ConsumeBool());
  }
}

// The sampler's own state with some keys replaced, dropped or mistyped, as a serialized archive.
std::string altered_state(FuzzedDataProvider& in, const StreamSampler& sampler) {
  torch::serialize::OutputArchive saved;
  sampler.save(saved);
  std::ostringstream saved_bytes;
  saved.save_to(saved_bytes);
  torch::serialize::InputArchive original;
  std::istringstream saved_in(saved_bytes.str());
  original.load_from(saved_in);

  torch::serialize::OutputArchive altered;
  for (const char* key : kKeys) {
    c10::IValue value;
    if (!original.try_read(kPrefix + key, value)) std::abort();  // save wrote every key
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0: break;                                         // dropped
      case 1: altered.write(kPrefix + key, any_value(in)); break;  // replaced
      default: altered.write(kPrefix + key, value); break;   // kept
    }
  }
  std::ostringstream bytes;
  altered.save_to(bytes);
  return bytes.str();
}

void fuzz_sampler_state(FuzzedDataProvider& in, std::size_t n, std::size_t classes) {
  std::shared_ptr<StreamSampler> sampler = make_sampler(in, n, classes);
  const std::string state = altered_state(in, *sampler);
  torch::serialize::InputArchive archive;
  std::istringstream state_in(state);
  archive.load_from(state_in);
  try {
    sampler->load(archive);
  } catch (const medload::Error&) {
    return;
  }
  // A loaded state resumes inside the epoch: indices valid, never more than the epoch holds.
  sampler->reset();
  const std::size_t length = sampler->size();
  const std::size_t batch = in.ConsumeIntegralInRange<std::size_t>(1, 16);
  std::size_t drawn = 0;
  while (auto indices = sampler->next(batch)) {
    if (indices->empty() || indices->size() > batch) std::abort();
    for (std::size_t i : *indices) {
      if (i >= n) std::abort();
    }
    drawn += indices->size();
    if (drawn > length) std::abort();
  }
}

// N samples of 1 x 4 x 4 uint8 pixels, each filled with its index.
class MemorySource : public medload::loader::SampleSource {
 public:
  MemorySource(std::size_t n, std::size_t classes) : n_(n), classes_(classes) {}
  std::size_t size() const override { return n_; }
  medload::loader::SampleLayout layout() const override { return {1, 4, 4, medload::loader::PixelDepth::kUInt8}; }
  medload::loader::SampleOutput output() const override { return {false, 1.0f, 0.0f, 1.0f}; }
  void read(std::size_t index, void* out) const override { std::memset(out, static_cast<int>(index & 0xff), 16); }
  std::size_t label_columns() const override { return 0; }
  void label(std::size_t index, std::int64_t* out) const override {
    *out = static_cast<std::int64_t>(index % classes_);
  }
  std::int64_t sample_id(std::size_t index) const override { return static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override { return "sample " + std::to_string(index); }

 private:
  std::size_t n_, classes_;
};

void fuzz_loader_state(FuzzedDataProvider& in, std::size_t n, std::size_t classes) {
  std::shared_ptr<StreamSampler> sampler = make_sampler(in, n, classes);
  medload::loader::LoaderOptions options;
  options.batch_size = in.ConsumeIntegralInRange<std::size_t>(1, 16);
  options.threads = 1;
  options.prefetch = 1;
  options.drop_last = in.ConsumeBool();
  options.pin_memory = false;
  medload::loader::LoaderState state;
  state.epoch = in.ConsumeBool() ? in.ConsumeIntegral<std::size_t>() : in.ConsumeIntegralInRange<std::size_t>(0, 3);
  state.batches = in.ConsumeBool() ? in.ConsumeIntegral<std::size_t>() : in.ConsumeIntegralInRange<std::size_t>(0, 8);
  medload::loader::Loader loader(std::make_shared<MemorySource>(n, classes), sampler, options);
  try {
    loader.load_state(state);
  } catch (const medload::Error&) {
    return;
  }
  for (int b = 0; b < 3; ++b) {
    auto batch = loader.next();
    if (!batch) break;
    if (batch->epoch != state.epoch || batch->index != state.batches + static_cast<std::size_t>(b)) std::abort();
    const auto ids = batch->sample_ids.contiguous();
    for (std::int64_t k = 0; k < ids.numel(); ++k) {
      const std::int64_t id = ids.data_ptr<std::int64_t>()[k];
      if (id < 0 || static_cast<std::size_t>(id) >= n) std::abort();
      if (batch->images[k].max().item<std::uint8_t>() != static_cast<std::uint8_t>(id & 0xff)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::size_t classes = in.ConsumeIntegralInRange<std::size_t>(2, 4);
  const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(classes, 48);
  const bool loader = in.ConsumeBool();
  try {
    if (loader) {
      fuzz_loader_state(in, n, classes);
    } else {
      fuzz_sampler_state(in, n, classes);
    }
  } catch (const medload::ConfigError&) {
    // A sampler configuration the bytes chose that medload refuses (e.g. P x K larger than the data).
  }
  return 0;
}
