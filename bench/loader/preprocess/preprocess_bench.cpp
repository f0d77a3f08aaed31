// Cost of each preprocessing step on radiograph-sized input (2048 x 2048, 8-bit and 12-bit in
// 16), on 1 and 2 threads, each thread preprocessing its own stream of images (as a cache build
// does). OpenCV's own thread pool is limited to one thread here so that "threads" means ours.
//
//   BM_Preprocess_FullChain/<bits>/threads:T   the default chain; counters give each step's
//                                               share (ms per image) from StageTimes
//   BM_Preprocess_FullChainAreaFast/<bits>    the same with letterbox.interpolation "area_fast"
//   BM_Preprocess_<Step>/<bits>/<size>/threads:T  one step alone on a size x size input
//                                               (CLAHE and bilateral at 256, their place in the
//                                               chain, and at 2048 to show what downscaling
//                                               first saves)
// items_per_second counts images.

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "medload/loader/preprocess/preprocess.h"

namespace {

using medload::loader::DecodedImage;
using medload::loader::PixelType;
using medload::loader::PreprocessOptions;
using medload::loader::StageTimes;

const bool kOpenCvSingleThreaded = [] {
  cv::setNumThreads(1);
  return true;
}();

// A radiograph stand-in: black border, a smooth textured body, bright annotation text at the top.
DecodedImage make_radiograph(int size, int bits) {
  DecodedImage img;
  img.height = img.width = size;
  img.channels = 1;
  img.type = bits > 8 ? PixelType::kUInt16 : PixelType::kUInt8;
  img.bits_stored = bits;
  img.source_path = "bench_radiograph";
  const int bytes = bits > 8 ? 2 : 1;
  img.pixels.assign(static_cast<std::size_t>(size) * size * bytes, 0);
  const double full = bits > 8 ? 4095.0 : 255.0;
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0.0, 0.02);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      double v = 0.0;
      const double u = static_cast<double>(x) / size, w = static_cast<double>(y) / size;
      if (u > 0.08 && u < 0.92 && w > 0.12 && w < 0.95) {
        v = 0.45 + 0.25 * std::sin(u * 17.0) * std::cos(w * 11.0) + noise(rng);
      } else if (w > 0.02 && w < 0.05 && u > 0.05 && u < 0.4 && ((x / 6 + y / 8) % 2 == 0)) {
        v = 1.0;  // burned-in text
      }
      const double value = std::clamp(v, 0.0, 1.0) * full;
      const std::size_t i = static_cast<std::size_t>(y) * size + x;
      if (bytes == 2) {
        const auto s = static_cast<std::uint16_t>(value);
        std::memcpy(img.pixels.data() + 2 * i, &s, 2);
      } else {
        img.pixels[i] = static_cast<std::uint8_t>(value);
      }
    }
  }
  return img;
}

const DecodedImage& radiograph(int size, int bits) {
  static const DecodedImage kImages[2][2] = {{make_radiograph(256, 8), make_radiograph(256, 12)},
                                             {make_radiograph(2048, 8), make_radiograph(2048, 12)}};
  return kImages[size > 256 ? 1 : 0][bits > 8 ? 1 : 0];
}

PreprocessOptions only(const char* step) {
  PreprocessOptions o;
  o.grayscale.enabled = false;
  o.intensity.enabled = std::strcmp(step, "intensity") == 0;
  o.roi_crop.enabled = std::strcmp(step, "roi_crop") == 0;
  o.letterbox.enabled = std::strcmp(step, "letterbox") == 0;
  o.clahe.enabled = std::strcmp(step, "clahe") == 0;
  o.bilateral.enabled = std::strcmp(step, "bilateral") == 0;
  return o;
}

void run(benchmark::State& state, const DecodedImage& img, const PreprocessOptions& o) {
  StageTimes sum;
  for (auto _ : state) {
    StageTimes t;
    auto out = medload::loader::preprocess(img, o, &t);
    benchmark::DoNotOptimize(out.pixels.data());
    sum += t;
  }
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(img.pixels.size()));
  auto ms = [&](std::int64_t ns) {
    return benchmark::Counter(static_cast<double>(ns) / n / 1e6, benchmark::Counter::kAvgThreads);
  };
  state.counters["intensity_ms"] = ms(sum.intensity_ns);
  state.counters["roi_crop_ms"] = ms(sum.roi_crop_ns);
  state.counters["letterbox_ms"] = ms(sum.letterbox_ns);
  state.counters["clahe_ms"] = ms(sum.clahe_ns);
  state.counters["bilateral_ms"] = ms(sum.bilateral_ns);
  state.counters["output_ms"] = ms(sum.output_ns);
}

void BM_Preprocess_FullChain(benchmark::State& state) {
  run(state, radiograph(2048, static_cast<int>(state.range(0))), PreprocessOptions{});
}

// The default chain with the letterbox's "area_fast" interpolation.
void BM_Preprocess_FullChainAreaFast(benchmark::State& state) {
  PreprocessOptions o;
  o.letterbox.interpolation = "area_fast";
  run(state, radiograph(2048, static_cast<int>(state.range(0))), o);
}

template <const char* Step>
void BM_Step(benchmark::State& state) {
  run(state, radiograph(static_cast<int>(state.range(1)), static_cast<int>(state.range(0))), only(Step));
}

constexpr char kIntensity[] = "intensity";
constexpr char kRoiCrop[] = "roi_crop";
constexpr char kLetterbox[] = "letterbox";
constexpr char kClahe[] = "clahe";
constexpr char kBilateral[] = "bilateral";

BENCHMARK(BM_Preprocess_FullChain)
    ->ArgName("bits")
    ->Arg(8)
    ->Arg(12)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(BM_Preprocess_FullChainAreaFast)
    ->ArgName("bits")
    ->Arg(8)
    ->Arg(12)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK_TEMPLATE(BM_Step, kIntensity)
    ->Name("BM_Preprocess_Intensity")
    ->ArgNames({"bits", "size"})
    ->Args({8, 2048})
    ->Args({12, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK_TEMPLATE(BM_Step, kRoiCrop)
    ->Name("BM_Preprocess_RoiCrop")
    ->ArgNames({"bits", "size"})
    ->Args({8, 2048})
    ->Args({12, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK_TEMPLATE(BM_Step, kLetterbox)
    ->Name("BM_Preprocess_Letterbox")
    ->ArgNames({"bits", "size"})
    ->Args({8, 2048})
    ->Args({12, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK_TEMPLATE(BM_Step, kClahe)
    ->Name("BM_Preprocess_Clahe")
    ->ArgNames({"bits", "size"})
    ->Args({8, 256})
    ->Args({12, 256})
    ->Args({8, 2048})
    ->Args({12, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK_TEMPLATE(BM_Step, kBilateral)
    ->Name("BM_Preprocess_Bilateral")
    ->ArgNames({"bits", "size"})
    ->Args({8, 256})
    ->Args({12, 256})
    ->Args({8, 2048})
    ->Args({12, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);

}  // namespace
