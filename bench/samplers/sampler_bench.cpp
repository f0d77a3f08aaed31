// ns per index of every medload sampler at N = 1e5 .. 1e8, drawn the way a data loader does:
// set_epoch(e), then next(batch) until the epoch ends. items_per_second counts indices;
// ns per index = 1e9 / items_per_second.
// Inputs (weights, labels, alias tables) are built once per N, outside the timed loop.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "medload/samplers/balanced_batch_sampler.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/counter_rng.h"
#include "medload/samplers/distributed_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"

namespace {

using namespace medload::samplers;

constexpr std::size_t kBatch = 1024;

// Uniform random weights in [0, 1), as the Python peer uses (torch.rand).
const std::vector<double>& weights(std::size_t n) {
  static std::map<std::size_t, std::vector<double>> cache;
  auto& w = cache[n];
  if (w.empty()) {
    w.resize(n);
    CounterRng rng(1, 0);
    for (double& v : w) v = rng.next_double();
  }
  return w;
}

// Five classes with a clinical-looking imbalance: 80 %, 10 %, 6 %, 3 %, 1 %.
const std::vector<std::int64_t>& labels(std::size_t n) {
  static std::map<std::size_t, std::vector<std::int64_t>> cache;
  auto& l = cache[n];
  if (l.empty()) {
    l.resize(n);
    CounterRng rng(2, 0);
    for (auto& v : l) {
      const double u = rng.next_double();
      v = u < 0.80 ? 0 : u < 0.90 ? 1 : u < 0.96 ? 2 : u < 0.99 ? 3 : 4;
    }
  }
  return l;
}

// One iteration is one whole epoch: set_epoch(e) (materialising samplers build the epoch there),
// then next(kBatch) until the epoch ends, as a data loader does. ns per index = time / indices.
template <typename Make>
void run(benchmark::State& state, Make&& make) {
  auto sampler = make(static_cast<std::size_t>(state.range(0)));
  std::size_t epoch = 0;
  std::int64_t indices = 0;
  for (auto _ : state) {
    sampler.set_epoch(epoch++);
    while (auto batch = sampler.next(kBatch)) {
      benchmark::DoNotOptimize(batch->data());
      indices += static_cast<std::int64_t>(batch->size());
    }
  }
  state.SetItemsProcessed(indices);
  state.counters["indices_per_epoch"] = static_cast<double>(sampler.size());
}

void BM_Sampler_Weighted(benchmark::State& state) {
  run(state, [](std::size_t n) { return WeightedRandomSampler(weights(n), {7}); });
}

void BM_Sampler_WeightedDistributed8(benchmark::State& state) {
  run(state, [](std::size_t n) {
    return DistributedSampler(WeightedRandomSampler(weights(n), {7}), {8, 3, false});
  });
}

void BM_Sampler_Oversample(benchmark::State& state) {
  run(state, [](std::size_t n) {
    ClassBalancedSamplerOptions options;
    options.mode = BalanceMode::kOversample;
    // The same epoch length as the others (N), so ns per index compares like with like.
    options.num_samples = n;
    return ClassBalancedSampler(labels(n), options);
  });
}

void BM_Sampler_Undersample(benchmark::State& state) {
  run(state, [](std::size_t n) {
    ClassBalancedSamplerOptions options;
    options.mode = BalanceMode::kUndersample;
    return ClassBalancedSampler(labels(n), options);
  });
}

void BM_Sampler_Sqrt(benchmark::State& state) {
  run(state, [](std::size_t n) {
    ClassBalancedSamplerOptions options;
    options.mode = BalanceMode::kSqrt;
    return ClassBalancedSampler(labels(n), options);
  });
}

void BM_Sampler_BalancedBatch(benchmark::State& state) {
  run(state, [](std::size_t n) {
    BalancedBatchSamplerOptions options;
    options.classes_per_batch = 4;
    options.samples_per_class = 8;
    return BalancedBatchSampler(labels(n), options);
  });
}

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {100000LL, 1000000LL, 10000000LL, 100000000LL}) b->Arg(n);
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Sampler_Weighted)->Apply(sizes);
BENCHMARK(BM_Sampler_WeightedDistributed8)->Apply(sizes);
BENCHMARK(BM_Sampler_Oversample)->Apply(sizes);
BENCHMARK(BM_Sampler_Undersample)->Apply(sizes);
BENCHMARK(BM_Sampler_Sqrt)->Apply(sizes);
BENCHMARK(BM_Sampler_BalancedBatch)->Apply(sizes);

}  // namespace
