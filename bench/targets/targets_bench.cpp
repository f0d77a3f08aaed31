// Augmented serving with label masks (DESIGN.md R9): CacheDataset + Loader with
// LoaderOptions::augment_targets = make_target_hook(...), batch 32, float32 [32,1,S,S] normalized
// images and int64 [32,1,S,S] masks, random order, checksums verified; samples/s at 224 and 512 px.
//   BM_Targets_Serve/size:S/threads:T        the whole path, T reader threads, the hook on 1 thread
//                                            (it runs on the reader thread that finishes a batch,
//                                            so with T = 2 two batches are augmented at once)
// and where its time goes, batch by batch on one thread:
//   BM_Targets_Read/size:S/masks:M           the loader without augmentation (read + checksum +
//                                            float conversion; M = 1: the masks too, uint16 -> int64)
//   BM_Targets_AugmentImages/size:S          Augmenter::apply on a float32 batch (the image chain)
//   BM_Targets_WarpMasks/size:S              warp_targets on the batch's int64 masks (nearest)
// The augmentation is AugmentOptions::full_chain() (every operation at p = 1, as BM_Augment_FullChain)
// plus horizontal flips at p = 0.5. One iteration is one epoch (a fixed number of batches, after an
// untimed warm-up epoch); items_per_second counts samples.
//
// The caches are built once, through medload's public path: synthetic radiograph-like PNGs with
// 8-bit label PNGs (three classes, a few blobs each), a manifest with a `mask` column and a class
// map, medload::loader::build_cache, then a patient-level split (every sample served: part "all").
// They go to $MEDLOAD_BENCH_DIR (default /tmp) as medload-bench-targets-<S>.h5 (384 images at
// 224 px, 192 at 512 px); peer_targets.py serves the same files.

#include <benchmark/benchmark.h>
#include <torch/data/samplers/random.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "medload/augment/target_hook.h"
#include "medload/core/progress.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/split_store.h"

namespace {

namespace fs = std::filesystem;
using namespace medload::loader;
using medload::augment::AugmentOptions;

constexpr std::size_t kBatch = 32;

std::size_t images_for(int size) { return size <= 256 ? 384 : 192; }

std::string bench_dir() {
  const char* dir = std::getenv("MEDLOAD_BENCH_DIR");
  return dir != nullptr ? dir : "/tmp";
}

// One image and its label map: smooth shading with a bright vertical structure (as the augment
// benchmark's images), and classes 1..3 as 1-3 filled ellipses each (drawn in order, so a later
// class covers an earlier one), each class with its own intensity and some texture.
void draw_sample(int size, std::uint32_t seed, cv::Mat& image, cv::Mat& mask) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  image.create(size, size, CV_8UC1);
  mask = cv::Mat::zeros(size, size, CV_8UC1);
  const double phase = unit(rng) * 6.28;
  for (int y = 0; y < size; ++y) {
    auto* row = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < size; ++x) {
      const double u = static_cast<double>(x) / size, v = static_cast<double>(y) / size;
      double value = 90 + 60 * std::sin(6 * u + phase) * std::cos(5 * v) + 25 * std::sin(40 * u * v);
      if (std::abs(u - 0.5) < 0.04) value = 220;
      row[x] = static_cast<std::uint8_t>(std::fmin(std::fmax(value, 0.0), 255.0));
    }
  }
  const double radius_scale[] = {0.0, 0.18, 0.10, 0.04};  // class 1 large, class 3 small (lesions)
  for (int cls = 1; cls <= 3; ++cls) {
    const int blobs = 1 + static_cast<int>(rng() % 3);
    for (int b = 0; b < blobs; ++b) {
      const cv::Point centre(static_cast<int>((0.15 + 0.7 * unit(rng)) * size),
                             static_cast<int>((0.15 + 0.7 * unit(rng)) * size));
      const double r = radius_scale[cls] * size * (0.6 + 0.8 * unit(rng));
      const cv::Size axes(std::max(2, static_cast<int>(r)),
                          std::max(2, static_cast<int>(r * (0.5 + unit(rng)))));
      const double angle = unit(rng) * 180;
      cv::ellipse(mask, centre, axes, angle, 0, 360, cv::Scalar(cls), cv::FILLED, cv::LINE_8);
      cv::ellipse(image, centre, axes, angle, 0, 360, cv::Scalar(60 + 50 * cls), cv::FILLED, cv::LINE_AA);
    }
  }
  cv::Mat noise(size, size, CV_8UC1);
  cv::randn(noise, 0, 6);
  cv::add(image, noise, image);
  cv::GaussianBlur(image, image, cv::Size(3, 3), 0.8);
}

// Writes the inputs (img/, mask/, manifest.csv, classes.json) under `root`.
void write_inputs(const fs::path& root, int size) {
  fs::create_directories(root / "img");
  fs::create_directories(root / "mask");
  std::ofstream manifest(root / "manifest.csv");
  manifest << "path,label,patient_id,mask\n";
  cv::Mat image, mask;
  for (std::size_t i = 0; i < images_for(size); ++i) {
    draw_sample(size, static_cast<std::uint32_t>(1000 + i), image, mask);
    const std::string name = std::to_string(i) + ".png";
    cv::imwrite((root / "img" / name).string(), image);
    cv::imwrite((root / "mask" / name).string(), mask);
    manifest << "img/" << name << "," << (i % 3 == 0 ? "abnormal" : "normal") << ",P" << i / 2 << ",mask/"
             << name << "\n";
  }
  std::ofstream(root / "classes.json") << R"({"1": "lung", "2": "heart", "3": "nodule"})"
                                       << "\n";
}

// Builds the cache once with medload::loader::build_cache and stores a split.
std::string ensure_cache(int size) {
  const std::string path = bench_dir() + "/medload-bench-targets-" + std::to_string(size) + ".h5";
  if (fs::exists(path)) return path;
  const fs::path root = bench_dir() + "/medload-bench-targets-" + std::to_string(size) + "-inputs";
  fs::remove_all(root);
  write_inputs(root, size);
  const std::string tmp = path + ".tmp.h5";
  BuildOptions b;
  b.root = root.string();
  b.manifest = (root / "manifest.csv").string();
  b.target_classes = (root / "classes.json").string();
  b.output = tmp;
  b.config.preprocess.letterbox.size = size;
  b.threads = 2;
  b.progress = medload::ProgressStyle::kQuiet;
  const BuildResult result = build_cache(b);
  if (result.images != images_for(size) || result.targets.masks[1] != images_for(size)) {
    throw std::runtime_error(tmp + ": expected " + std::to_string(images_for(size)) +
                             " images with valid masks, got " + std::to_string(result.images) + " (see " +
                             result.report_path + ")");
  }
  StoredSplit split;
  {
    const CacheReader reader(tmp);
    split = make_split(reader, SplitOptions{}, 2);
  }
  write_split(tmp, split);
  fs::rename(tmp, path);
  fs::remove(result.report_path);
  fs::remove_all(root);
  return path;
}

DatasetOptions all_samples(bool masks) {
  DatasetOptions options;
  options.part = "all";
  options.targets = masks;
  options.mask_dtype = MaskDtype::kInt64;
  return options;
}

// The defaults of the augment benchmark's full chain, every operation at p = 1, and flips.
AugmentOptions augment_options() {
  AugmentOptions o = AugmentOptions::full_chain();
  o.allow_horizontal_flip = true;
  o.horizontal_flip.probability = 0.5;
  return o;
}

// Runs `loader` one untimed epoch (which checks that every sample comes with a valid mask when
// `masks`, so that a cache without them cannot pass for one), then one epoch per iteration.
void serve_epochs(benchmark::State& state, Loader& loader, int size, bool masks) {
  for (Batch& batch : loader) {
    if (masks && (!batch.masks.defined() || !batch.mask_valid.all().item<bool>())) {
      state.SkipWithError("the cache served a batch without valid masks");
      return;
    }
  }
  std::size_t samples = 0, batches = 0;
  for (auto _ : state) {
    for (Batch& batch : loader) {
      benchmark::DoNotOptimize(batch.images.data_ptr<float>());
      if (batch.masks.defined()) benchmark::DoNotOptimize(batch.masks.data_ptr<std::int64_t>());
      samples += static_cast<std::size_t>(batch.images.size(0));
      ++batches;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(samples));
  state.SetBytesProcessed(static_cast<std::int64_t>(samples) * size * size);
  state.counters["batches"] = static_cast<double>(batches);
}

void BM_Targets_Serve(benchmark::State& state) {
  cv::setNumThreads(0);
  const int size = static_cast<int>(state.range(0));
  const CacheDataset dataset(ensure_cache(size), all_samples(true));
  LoaderOptions options;
  options.batch_size = kBatch;
  options.threads = static_cast<std::size_t>(state.range(1));
  options.augment_targets =
      medload::augment::make_target_hook(augment_options(), 1, {dataset.mean(), dataset.std()});
  Loader loader(dataset, std::make_shared<torch::data::samplers::RandomSampler>(*dataset.size()), options);
  serve_epochs(state, loader, size, true);
}
BENCHMARK(BM_Targets_Serve)
    ->ArgNames({"size", "threads"})
    ->Args({224, 1})
    ->Args({224, 2})
    ->Args({512, 1})
    ->Args({512, 2})
    ->Iterations(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Targets_Read(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  const CacheDataset dataset(ensure_cache(size), all_samples(state.range(1) != 0));
  LoaderOptions options;
  options.batch_size = kBatch;
  options.threads = 1;
  Loader loader(dataset, std::make_shared<torch::data::samplers::RandomSampler>(*dataset.size()), options);
  serve_epochs(state, loader, size, state.range(1) != 0);
}
BENCHMARK(BM_Targets_Read)
    ->ArgNames({"size", "masks"})
    ->Args({224, 0})
    ->Args({224, 1})
    ->Args({512, 0})
    ->Args({512, 1})
    ->Iterations(8)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The first batch the loader serves (no augmentation): real images and masks of the cache.
Batch first_batch(int size, float& mean, float& std) {
  const CacheDataset dataset(ensure_cache(size), all_samples(true));
  mean = dataset.mean();
  std = dataset.std();
  LoaderOptions options;
  options.batch_size = kBatch;
  options.threads = 1;
  Loader loader(dataset, std::make_shared<torch::data::samplers::RandomSampler>(*dataset.size()), options);
  Batch batch = *loader.next();
  batch.images = batch.images.clone();
  batch.masks = batch.masks.clone();
  return batch;
}

// One iteration = one batch restored from a pristine copy (untimed) and augmented for a new epoch.
void BM_Targets_AugmentImages(benchmark::State& state) {
  cv::setNumThreads(0);
  const int size = static_cast<int>(state.range(0));
  float mean = 0, std = 1;
  const Batch pristine = first_batch(size, mean, std);
  torch::Tensor images = pristine.images.clone();
  medload::augment::Augmenter augmenter(augment_options(), 1, {mean, std});
  const std::vector<std::int64_t> ids(pristine.sample_ids.data_ptr<std::int64_t>(),
                                      pristine.sample_ids.data_ptr<std::int64_t>() + kBatch);
  std::int64_t epoch = 0;
  for (auto _ : state) {
    state.PauseTiming();
    images.copy_(pristine.images);
    state.ResumeTiming();
    auto params = augmenter.apply(images, ids, epoch++);
    benchmark::DoNotOptimize(params.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBatch));
}
BENCHMARK(BM_Targets_AugmentImages)
    ->ArgNames({"size"})
    ->Arg(224)
    ->Arg(512)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The same, for the masks alone: warp_targets with the parameters the images would get.
void BM_Targets_WarpMasks(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  float mean = 0, std = 1;
  const Batch pristine = first_batch(size, mean, std);
  const medload::augment::Augmenter augmenter(augment_options(), 1, {mean, std});
  medload::augment::TargetTensors targets;
  targets.masks = pristine.masks.clone();
  targets.mask_valid = pristine.mask_valid;
  const std::int64_t* ids = pristine.sample_ids.data_ptr<std::int64_t>();
  std::int64_t epoch = 0;
  for (auto _ : state) {
    state.PauseTiming();
    targets.masks.copy_(pristine.masks);
    std::vector<medload::augment::AppliedParams> params;
    for (std::size_t j = 0; j < kBatch; ++j) params.push_back(augmenter.draw(ids[j], epoch));
    ++epoch;
    state.ResumeTiming();
    medload::augment::warp_targets(targets, params, size, size);
    benchmark::DoNotOptimize(targets.masks.data_ptr<std::int64_t>());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBatch));
}
BENCHMARK(BM_Targets_WarpMasks)
    ->ArgNames({"size"})
    ->Arg(224)
    ->Arg(512)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
