#include "cache_assembly.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "medload/core/thread_pool.h"

namespace medload::loader::detail {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t ns_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

namespace {

// One image of a block: its bytes (deflated when the cache is) and its mask's, when it has one.
struct BlockItem {
  std::vector<std::uint8_t> image;
  std::vector<std::uint8_t> mask;
  bool has_mask = false;
};

}  // namespace

AssemblyCost assemble_cache(const std::string& path, const CacheHeader& header,
                            const AssemblyOptions& options, const ReadImage& read, const FinishCache& finish,
                            const ReadMask& read_mask) {
  if (header.masks && !read_mask) {
    throw std::invalid_argument("assemble_cache: " + path + " has masks but no mask reader was given");
  }
  AssemblyCost cost;
  CacheWriter writer(path, header);
  Progress progress(options.progress_label, header.count, "images", options.progress);
  ThreadPool pool(options.threads);
  constexpr std::size_t kBlock = 32;
  std::vector<BlockItem> block(kBlock);
  std::atomic<std::int64_t> read_total{0}, compress_total{0};
  for (std::size_t start = 0; start < header.count; start += kBlock) {
    const std::size_t n = std::min(kBlock, header.count - start);
    pool.parallel_for(n, [&](std::size_t k) {
      auto t0 = Clock::now();
      BlockItem& item = block[k];
      item.image.resize(writer.image_bytes());
      read(start + k, item.image.data(), item.image.size());
      if (header.masks) {
        item.mask.resize(writer.mask_bytes());
        item.has_mask = read_mask(start + k, reinterpret_cast<std::uint16_t*>(item.mask.data()));
      }
      read_total += ns_since(t0);
      t0 = Clock::now();
      if (header.deflate > 0)
        item.image = deflate_chunk(item.image.data(), item.image.size(), header.deflate);
      if (item.has_mask) item.mask = deflate_chunk(item.mask.data(), item.mask.size(), writer.mask_deflate());
      compress_total += ns_since(t0);
    });
    const auto t0 = Clock::now();
    for (std::size_t k = 0; k < n; ++k) {
      BlockItem& item = block[k];
      writer.write_image(start + k, item.image.data(), item.image.size());
      if (item.has_mask) writer.write_mask(start + k, item.mask.data(), item.mask.size());
      item.has_mask = false;
    }
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
