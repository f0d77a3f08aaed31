// Plain serving from a cache (DESIGN.md R4, R5, R7): CacheDataset + Loader, random order, batch 32,
// float32 normalized [32,1,S,S], checksums verified; samples/s at 224 and 512 px with 1 and 2
// reader threads, and the time from opening the cache to holding the first batch.
//
// The caches are written once to $MEDLOAD_BENCH_DIR (default /tmp) as medload-bench-serve-<S>.h5
// (2048 images at 224 px, 512 at 512 px: 100 and 134 MB, warm in the page cache after the first
// epoch), with a stored split of which every sample is served (part "all"). The Python peers
// (peer_serve.py) read the same files.

#include <benchmark/benchmark.h>
#include <torch/data/samplers/random.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/split_store.h"

namespace {

using namespace medload::loader;

std::size_t images_for(int size) { return size <= 256 ? 2048 : 512; }

std::string bench_dir() {
  const char* dir = std::getenv("MEDLOAD_BENCH_DIR");
  return dir != nullptr ? dir : "/tmp";
}

// Writes the cache once (smooth random images, 5 classes, 2 images per patient) and splits it.
std::string ensure_cache(int size) {
  const std::string path = bench_dir() + "/medload-bench-serve-" + std::to_string(size) + ".h5";
  if (std::filesystem::exists(path)) return path;
  const std::string tmp = path + ".tmp";
  const std::size_t n = images_for(size);
  medload::loader::detail::CacheHeader header;
  header.count = n;
  header.height = size;
  header.width = size;
  {
    medload::loader::detail::CacheWriter writer(tmp, header);
    medload::loader::detail::CacheColumns columns;
    std::mt19937 rng(7);
    std::vector<std::uint8_t> image(static_cast<std::size_t>(size) * size);
    for (std::size_t i = 0; i < n; ++i) {
      const int a = static_cast<int>(rng() % 64), b = static_cast<int>(rng() % 64);
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
          image[static_cast<std::size_t>(y) * size + x] =
              static_cast<std::uint8_t>((x * a / 16 + y * b / 16 + i) & 255);
      writer.write_image(i, image.data(), image.size());
      columns.labels.push_back(static_cast<std::int64_t>(i % 5));
      columns.patient_ids.push_back("P" + std::to_string(i / 2));
      columns.source_paths.push_back("class" + std::to_string(i % 5) + "/" + std::to_string(i) + ".png");
      columns.source_hashes.push_back(medload::hash_hex(i));
      columns.sites.push_back("");
      columns.frame_indices.push_back(0);
      columns.source_indices.push_back(static_cast<std::int64_t>(i));
      columns.pixel_hashes.push_back(medload::hash64(image.data(), image.size()));
      columns.checksums.push_back(medload::hash64(image.data(), image.size()));
      columns.geometry.push_back(Geometry{});
    }
    writer.finish(columns, {}, {"a", "b", "c", "d", "e"}, "{}", "0000000000000000", nlohmann::json::object());
  }
  StoredSplit split;
  {
    const CacheReader reader(tmp);
    split = make_split(reader, SplitOptions{}, 2);
  }
  write_split(tmp, split);
  std::filesystem::rename(tmp, path);
  return path;
}

DatasetOptions all_samples(bool verify) {
  DatasetOptions options;
  options.part = "all";
  options.verify = verify;
  return options;
}

// One iteration = one epoch over every cached image, random order, batch 32.
void BM_Serve_Plain(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  const auto threads = static_cast<std::size_t>(state.range(1));
  const bool verify = state.range(2) != 0;
  const CacheDataset dataset(ensure_cache(size), all_samples(verify));
  const std::size_t n = *dataset.size();
  LoaderOptions options;
  options.batch_size = 32;
  options.threads = threads;  // prefetch: the default, 2 batches (as a DataLoader worker's prefetch_factor)
  auto sampler = std::make_shared<torch::data::samplers::RandomSampler>(n);
  Loader loader(dataset, sampler, options);
  // One untimed epoch first, as the peers are measured on a warm epoch: the page cache holds the
  // file and the loader's batch buffers exist (their first touch is page faults, costly in a VM).
  for (Batch& batch : loader) benchmark::DoNotOptimize(batch.images.data_ptr<float>());
  std::size_t samples = 0;
  for (auto _ : state) {
    for (Batch& batch : loader) {
      benchmark::DoNotOptimize(batch.images.data_ptr<float>());
      samples += static_cast<std::size_t>(batch.images.size(0));
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(samples));
  state.SetBytesProcessed(static_cast<std::int64_t>(samples) * size * size);
  state.counters["threads"] = static_cast<double>(threads);
}
BENCHMARK(BM_Serve_Plain)
    ->ArgNames({"size", "threads", "verify"})
    ->Args({224, 1, 1})
    ->Args({224, 2, 1})
    ->Args({512, 1, 1})
    ->Args({512, 2, 1})
    ->Args({224, 1, 0})
    ->Args({224, 2, 0})
    ->Args({512, 1, 0})
    ->Args({512, 2, 0})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Open the cache, select the split, start the loader, hold the first batch of 32.
void BM_Serve_FirstBatch(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  const std::string path = ensure_cache(size);
  for (auto _ : state) {
    const CacheDataset dataset(path, all_samples(true));
    LoaderOptions options;
    options.batch_size = 32;
    options.threads = 2;
    Loader loader(dataset, std::make_shared<torch::data::samplers::RandomSampler>(*dataset.size()), options);
    auto batch = loader.next();
    benchmark::DoNotOptimize(batch->images.data_ptr<float>());
  }
}
BENCHMARK(BM_Serve_FirstBatch)
    ->ArgNames({"size"})
    ->Arg(224)
    ->Arg(512)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
