// Scan throughput (decode + validate, files/s): the real corpus and generated 2048x2048 16-bit
// PNGs, with 1 and 2 threads, in forked workers (the default) and in-process.
//   ./build/bench/loader/ingest/medload_bench_ingest --benchmark_filter=BM_Scan

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "medload/loader/ingest/scanner.h"

namespace {

namespace fs = std::filesystem;
using medload::loader::Isolation;

std::string corpus_dir() {
  const char* env = std::getenv("MEDLOAD_CORPUS_DIR");
  return env && *env ? env : MEDLOAD_CORPUS_DIR;
}

// 16 generated 2048x2048 16-bit PNGs (12 bits used, with texture so they compress like images).
const std::vector<medload::loader::SourceFile>& png16_sources() {
  static const std::vector<medload::loader::SourceFile> sources = [] {
    const fs::path dir = fs::temp_directory_path() / ("medload_bench_png16_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::mt19937 rng(1);
    std::normal_distribution<double> noise(0, 40);
    for (int i = 0; i < 16; ++i) {
      cv::Mat m(2048, 2048, CV_16UC1);
      for (int r = 0; r < m.rows; ++r) {
        auto* row = m.ptr<std::uint16_t>(r);
        for (int c = 0; c < m.cols; ++c) {
          row[c] =
              static_cast<std::uint16_t>(std::clamp(1000.0 + (r + c) / 2 + i * 7 + noise(rng), 0.0, 4095.0));
        }
      }
      cv::imwrite((dir / ("img_" + std::to_string(i) + ".png")).string(), m);
    }
    auto list = medload::loader::list_sources(dir.string());
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("medload_bench_png16_" + std::to_string(::getpid())), ec);
    });
    return list;
  }();
  return sources;
}

void run_scan(benchmark::State& state, const std::vector<medload::loader::SourceFile>& sources) {
  medload::loader::ValidationOptions options;
  options.threads = static_cast<int>(state.range(0));
  options.isolation = state.range(1) ? Isolation::kProcess : Isolation::kInProcess;
  const medload::loader::Scanner scanner(options);
  std::size_t ok = 0;
  for (auto _ : state) {
    const auto report = scanner.scan(sources);
    ok = report.ok_count();
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * sources.size()));
  state.counters["files"] = static_cast<double>(sources.size());
  state.counters["ok"] = static_cast<double>(ok);
}

void BM_Scan_Corpus(benchmark::State& state) {
  const std::string manifest = corpus_dir() + "/manifest.csv";
  if (!fs::exists(manifest)) {
    state.SkipWithError("no corpus: run scripts/fetch_corpus.sh");
    return;
  }
  run_scan(state, medload::loader::list_sources(corpus_dir(), manifest));
}

void BM_Scan_Png16_2048(benchmark::State& state) { run_scan(state, png16_sources()); }

// Args: threads, isolation (1 = forked workers, the default; 0 = in-process).
BENCHMARK(BM_Scan_Corpus)
    ->ArgNames({"threads", "workers"})
    ->ArgsProduct({{1, 2}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Scan_Png16_2048)
    ->ArgNames({"threads", "workers"})
    ->ArgsProduct({{1, 2}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
