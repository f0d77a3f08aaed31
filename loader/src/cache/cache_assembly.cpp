#include "cache_assembly.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "medload/core/thread_pool.h"

namespace medload::loader::detail {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t ns_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

AssemblyCost assemble_cache(const std::string& path, const CacheHeader& header,
                            const AssemblyOptions& options, const ReadImage& read,
                            const FinishCache& finish) {
  AssemblyCost cost;
  CacheWriter writer(path, header);
  Progress progress(options.progress_label, header.count, "images", options.progress);
  ThreadPool pool(options.threads);
  constexpr std::size_t kBlock = 32;
  std::vector<std::vector<std::uint8_t>> block(kBlock);
  std::atomic<std::int64_t> read_total{0}, compress_total{0};
  for (std::size_t start = 0; start < header.count; start += kBlock) {
    const std::size_t n = std::min(kBlock, header.count - start);
    pool.parallel_for(n, [&](std::size_t k) {
      auto t0 = Clock::now();
      std::vector<std::uint8_t>& bytes = block[k];
      bytes.resize(writer.image_bytes());
      read(start + k, bytes.data(), bytes.size());
      read_total += ns_since(t0);
      if (header.deflate > 0) {
        t0 = Clock::now();
        bytes = deflate_chunk(bytes.data(), bytes.size(), header.deflate);
        compress_total += ns_since(t0);
      }
    });
    const auto t0 = Clock::now();
    for (std::size_t k = 0; k < n; ++k) writer.write_image(start + k, block[k].data(), block[k].size());
    cost.write_ns += ns_since(t0);
    progress.advance(n);
  }
  const auto t0 = Clock::now();
  finish(writer);
  progress.finish();
  cost.write_ns += ns_since(t0);
  cost.read_ns = read_total;
  cost.compress_ns = compress_total;
  return cost;
}

}  // namespace medload::loader::detail
