// Cache build throughput (DESIGN.md R1), end to end and per stage, on the real corpus's raster
// images (data/corpus/images, when fetched) and on generated 2048 x 2048 inputs: 16-bit PNG
// (12 bits stored) and 8-bit JPEG, kGenerated of each. Inputs are generated once into the system's
// temporary folder.
//
//   BM_Cache_Build/<input>/<threads>   build_cache into a fresh file (decoders in forked workers,
//                                      as `medload build` runs); counters: scan_s, write_s
//   BM_Cache_Decode/<input>            decode + validate one file at a time (decode_file, in process)
//   BM_Cache_Preprocess/<input>        the default preprocessing chain on decoded images
//   BM_Cache_Write/<input>             writing preprocessed 256 x 256 images + tables (CacheWriter)
// <input>: 0 = corpus, 1 = png16 2048, 2 = jpeg8 2048. items_per_second counts images.
// The Python peer and the side-by-side ratio: compare_build.sh beside this file.

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/ingest/scanner.h"
#include "medload/loader/ingest/source.h"

namespace {

namespace fs = std::filesystem;
using namespace medload::loader;

// Generated images per kind. A build of a few files measures mostly the fixed costs of a build
// (forking the decoder workers, each worker's first-touch of its buffers, about 0.1 s together),
// which real datasets of thousands of images do not feel; 96 files make them a small part.
constexpr int kGenerated = 96;

// A radiograph-like image: a smooth body with texture and noise between black side borders.
cv::Mat make_image(int seed, int side, bool sixteen) {
  cv::Mat image(side, side, sixteen ? CV_16UC1 : CV_8UC1);
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::normal_distribution<float> noise(0.f, 0.03f);
  const float full = sixteen ? 4095.f : 255.f;
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const float u = static_cast<float>(x) / side, v = static_cast<float>(y) / side;
      float value = 0.f;
      if (x >= side / 16 && x < side - side / 16) {
        value = 0.65f * std::exp(-((u - 0.5f) * (u - 0.5f) / 0.08f + (v - 0.5f) * (v - 0.5f) / 0.12f)) +
                0.15f * std::sin(u * (17.f + seed % 5)) * std::cos(v * 11.f) + noise(rng);
      }
      value = std::min(1.f, std::max(0.f, value)) * full;
      if (sixteen) {
        image.at<std::uint16_t>(y, x) = static_cast<std::uint16_t>(value);
      } else {
        image.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>(value);
      }
    }
  }
  return image;
}

// The folder of input `which`, generated on first use ("" when the corpus is missing).
std::string input_folder(int which) {
  if (which == 0) {
    const std::string corpus = std::string(MEDLOAD_CORPUS_DIR) + "/images";
    return fs::is_directory(corpus) ? corpus : "";
  }
  const bool sixteen = which == 1;
  const fs::path folder =
      fs::temp_directory_path() / ((sixteen ? "medload-bench-cache-png16-" : "medload-bench-cache-jpeg8-") +
                                   std::to_string(kGenerated));
  const fs::path done = folder / ".complete";
  if (!fs::exists(done)) {
    fs::remove_all(folder);
    for (int i = 0; i < kGenerated; ++i) {
      const fs::path dir = folder / ("class" + std::to_string(i % 2));
      fs::create_directories(dir);
      const cv::Mat image = make_image(i, 2048, sixteen);
      const std::string name = "img" + std::to_string(i) + (sixteen ? ".png" : ".jpg");
      cv::imwrite((dir / name).string(), image, {cv::IMWRITE_JPEG_QUALITY, 90});
    }
    std::ofstream(done.string()) << "ok\n";
  }
  return folder.string();
}

const char* kNames[] = {"corpus", "png16_2048", "jpeg8_2048"};

void BM_Cache_Build(benchmark::State& state) {
  const std::string root = input_folder(static_cast<int>(state.range(0)));
  if (root.empty()) {
    state.SkipWithError("the corpus is missing: run scripts/fetch_corpus.sh");
    return;
  }
  const std::string output = (fs::temp_directory_path() / "medload-bench-cache-build.h5").string();
  BuildOptions options;
  options.root = root;
  options.output = output;
  options.threads = static_cast<int>(state.range(1));
  options.progress = medload::ProgressStyle::kQuiet;
  double scan = 0, write = 0;
  std::size_t images = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove(output);  // a fresh build each time, not an incremental one
    fs::remove_all(output + ".partial");
    state.ResumeTiming();
    const BuildResult result = build_cache(options);
    images += result.images;
    scan += result.scan_seconds;
    write += result.assemble_seconds;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(images));
  state.counters["scan_s"] = scan / static_cast<double>(state.iterations());
  state.counters["write_s"] = write / static_cast<double>(state.iterations());
  state.SetLabel(kNames[state.range(0)]);
  fs::remove(output);
  fs::remove(report_path_for(output));
}

std::vector<SourceFile> sources_of(int which) {
  const std::string root = input_folder(which);
  return root.empty() ? std::vector<SourceFile>{} : list_sources(root);
}

void BM_Cache_Decode(benchmark::State& state) {
  const auto sources = sources_of(static_cast<int>(state.range(0)));
  if (sources.empty()) {
    state.SkipWithError("no inputs");
    return;
  }
  ValidationOptions options;
  std::size_t images = 0;
  for (auto _ : state) {
    for (const SourceFile& source : sources) {
      std::vector<DecodedImage> frames;
      decode_file(source, options, frames);
      images += frames.size();
      benchmark::DoNotOptimize(frames.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(images));
  state.SetLabel(kNames[state.range(0)]);
}

std::vector<DecodedImage> decoded_inputs(int which) {
  static std::map<int, std::vector<DecodedImage>> cache;
  auto& images = cache[which];
  if (images.empty()) {
    ValidationOptions options;
    for (const SourceFile& source : sources_of(which)) {
      std::vector<DecodedImage> frames;
      if (decode_file(source, options, frames).ok) {
        for (auto& f : frames) images.push_back(std::move(f));
      }
    }
  }
  return images;
}

void BM_Cache_Preprocess(benchmark::State& state) {
  const auto images = decoded_inputs(static_cast<int>(state.range(0)));
  if (images.empty()) {
    state.SkipWithError("no inputs");
    return;
  }
  const PreprocessOptions options;
  std::size_t done = 0;
  for (auto _ : state) {
    for (const DecodedImage& image : images) {
      const PreprocessedImage out = preprocess(image, options);
      benchmark::DoNotOptimize(out.pixels.data());
      ++done;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(done));
  state.SetLabel(kNames[state.range(0)]);
}

void BM_Cache_Write(benchmark::State& state) {
  const auto decoded = decoded_inputs(static_cast<int>(state.range(0)));
  if (decoded.empty()) {
    state.SkipWithError("no inputs");
    return;
  }
  std::vector<PreprocessedImage> images;
  for (const auto& image : decoded) images.push_back(preprocess(image, PreprocessOptions{}));
  const std::string output = (fs::temp_directory_path() / "medload-bench-cache-write.h5").string();
  std::size_t done = 0;
  for (auto _ : state) {
    detail::CacheHeader header;
    header.count = images.size();
    header.height = images[0].height;
    header.width = images[0].width;
    detail::CacheWriter writer(output, header);
    detail::CacheColumns columns;
    for (std::size_t i = 0; i < images.size(); ++i) {
      writer.write_image(i, images[i].pixels.data(), images[i].pixels.size());
      columns.labels.push_back(0);
      columns.patient_ids.push_back("p");
      columns.source_paths.push_back("x");
      columns.source_hashes.push_back("0");
      columns.sites.push_back("");
      columns.frame_indices.push_back(0);
      columns.source_indices.push_back(static_cast<std::int64_t>(i));
      columns.pixel_hashes.push_back(i);
      columns.checksums.push_back(medload::hash64(images[i].pixels.data(), images[i].pixels.size()));
      columns.geometry.push_back(images[i].geometry);
    }
    writer.finish(columns, {}, {"a"}, "{}", "0", nlohmann::json::object());
    done += images.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(done));
  state.SetLabel(kNames[state.range(0)]);
  fs::remove(output);
}

}  // namespace

BENCHMARK(BM_Cache_Build)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);
// The single stages are rated per CPU-second of the whole process, so work OpenCV hands to its
// own threads counts (the calling thread's CPU time alone would leave it out and raise the ceiling).
BENCHMARK(BM_Cache_Decode)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->Iterations(2);
BENCHMARK(BM_Cache_Preprocess)
    ->DenseRange(0, 2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->Iterations(2);
BENCHMARK(BM_Cache_Write)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->Iterations(3);
