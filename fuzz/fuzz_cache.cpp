// fuzz_cache: opening a cache file from arbitrary bytes, then everything a reader does with it:
// the tables, metadata columns, geometry, rejected files, attributes, and every image read and
// verified. medload::Error (IoError, FormatError, HdfError) and std::out_of_range are the
// expected answers to a damaged cache; a crash, a hang, a memory error or any other exception is
// a bug. Seeds are small caches built by the tests; HDF5's own parser is exercised with them.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache_check.h"
#include "fuzz_support.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"

namespace {

void read_everything(const medload::loader::CacheReader& cache) {
  (void)cache.labels();
  (void)cache.class_names();
  (void)cache.patient_ids();
  (void)cache.source_paths();
  (void)cache.config_json();
  for (const auto& name : cache.meta_names()) (void)cache.meta(name);
  for (const auto& name : cache.attribute_names()) (void)cache.attribute(name);
  (void)cache.rejected();
  // A corrupt cache may claim any size: read at most a few images of at most 64 MiB in all.
  const std::size_t bytes = cache.image_bytes();
  if (bytes == 0 || bytes > (std::size_t{64} << 20)) return;
  std::vector<std::uint8_t> image(bytes);
  const std::size_t n = cache.size() < 16 ? cache.size() : 16;
  for (std::size_t i = 0; i < n; ++i) {
    (void)cache.geometry(i);
    try {
      cache.read_image(i, image.data());
    } catch (const medload::Error&) {
    }
    (void)cache.verify(i);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static medload::fuzz::TempFile file(".h5");
  const std::string& path = file.write(data, size);
  if (!medload::fuzz::checked_in_child(path)) return 0;
  try {
    const medload::loader::CacheReader cache(path);
    read_everything(cache);
  } catch (const medload::Error&) {
  } catch (const std::out_of_range&) {
  }
  return 0;
}
