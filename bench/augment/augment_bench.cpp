// Augmented samples per second, batch 32 of uint8 [1,S,S] on the CPU, per operation and for the
// full chain: BM_Augment_<Op>/<size>/<threads>, items_per_second = samples.
// Each iteration restores the batch from a pristine copy (a memcpy, as a loader's read would
// fill it) and augments it for a new epoch, so every iteration draws fresh parameters.
// OpenCV's own thread pool is switched off so that <threads> is the number of cores used.

#include <benchmark/benchmark.h>

#include <opencv2/core.hpp>

#include <cmath>
#include <map>
#include <vector>

#include "medload/augment/augmenter.h"

namespace {

using namespace medload::augment;

constexpr std::int64_t kBatch = 32;

// A radiograph-like uint8 batch: smooth shading, a bright structure, mild texture.
torch::Tensor images(std::int64_t size) {
  torch::Tensor t = torch::empty({kBatch, 1, size, size}, torch::kUInt8);
  std::uint8_t* d = t.data_ptr<std::uint8_t>();
  for (std::int64_t b = 0; b < kBatch; ++b) {
    for (std::int64_t y = 0; y < size; ++y) {
      for (std::int64_t x = 0; x < size; ++x) {
        const double u = static_cast<double>(x) / size, v = static_cast<double>(y) / size;
        double value = 90 + 60 * std::sin(6 * u + b) * std::cos(5 * v) + 25 * std::sin(40 * u * v);
        if (std::abs(u - 0.5) < 0.04) value = 220;  // a spine
        d[(b * size + y) * size + x] = static_cast<std::uint8_t>(std::fmin(std::fmax(value, 0.0), 255.0));
      }
    }
  }
  return t;
}

// The options with only `op` switched on at probability 1 ("FullChain": every operation;
// "WeakView" and "StrongView": the two presets of consistency training).
AugmentOptions only(const std::string& op) {
  if (op == "FullChain") return AugmentOptions::full_chain();
  if (op == "WeakView") return AugmentOptions::weak_view();
  if (op == "StrongView") return AugmentOptions::strong_view();
  AugmentOptions o = AugmentOptions::full_chain();
  o.rotation.probability = o.translation.probability = o.scale.probability = 0.0;
  o.gamma.probability = o.brightness.probability = o.contrast.probability = 0.0;
  o.gaussian_noise.probability = o.poisson_noise.probability = 0.0;
  o.blur.probability = o.downsample.probability = 0.0;
  if (op == "Affine") o.rotation.probability = o.translation.probability = o.scale.probability = 1.0;
  if (op == "Gamma") o.gamma.probability = 1.0;
  if (op == "BrightnessContrast") o.brightness.probability = o.contrast.probability = 1.0;
  if (op == "GaussianNoise") o.gaussian_noise.probability = 1.0;
  if (op == "PoissonNoise") o.poisson_noise.probability = 1.0;
  if (op == "Blur") o.blur.probability = 1.0;
  if (op == "Downsample") o.downsample.probability = 1.0;
  return o;
}

void run(benchmark::State& state, const std::string& op) {
  cv::setNumThreads(0);
  const std::int64_t size = state.range(0);
  const auto threads = static_cast<std::size_t>(state.range(1));
  const torch::Tensor pristine = images(size);
  torch::Tensor batch = pristine.clone();
  Augmenter augmenter(only(op), threads);
  std::vector<std::int64_t> ids(kBatch);
  for (std::int64_t i = 0; i < kBatch; ++i) ids[i] = i;
  std::int64_t epoch = 0;
  for (auto _ : state) {
    batch.copy_(pristine);
    auto params = augmenter.apply(batch, ids, epoch++);
    benchmark::DoNotOptimize(params.data());
    benchmark::DoNotOptimize(batch.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * size * size);
}

void grid(benchmark::internal::Benchmark* b) {
  for (std::int64_t size : {224, 512}) {
    for (std::int64_t threads : {1, 2}) b->Args({size, threads});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

#define MEDLOAD_AUGMENT_BENCH(Op)                                    \
  void BM_Augment_##Op(benchmark::State& state) { run(state, #Op); } \
  BENCHMARK(BM_Augment_##Op)->Apply(grid);

MEDLOAD_AUGMENT_BENCH(Affine)
MEDLOAD_AUGMENT_BENCH(Gamma)
MEDLOAD_AUGMENT_BENCH(BrightnessContrast)
MEDLOAD_AUGMENT_BENCH(GaussianNoise)
MEDLOAD_AUGMENT_BENCH(PoissonNoise)
MEDLOAD_AUGMENT_BENCH(Blur)
MEDLOAD_AUGMENT_BENCH(Downsample)
MEDLOAD_AUGMENT_BENCH(FullChain)
MEDLOAD_AUGMENT_BENCH(WeakView)
MEDLOAD_AUGMENT_BENCH(StrongView)

}  // namespace
