#pragma once
// Writing small caches for the serve tests with the cache stage's writer.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "medload/core/hash.h"
#include "medload_test/temp_dir.h"

namespace medload::loader::testing {

using medload::test::TempDir;

/// One sample of a test cache.
struct TestSample {
  std::vector<std::uint8_t> pixels;  // height * width (8-bit gray)
  std::int64_t label = 0;
  /// Multi-label: the sample's /label_matrix row (1, 0, -1 = unknown), one entry per class. A
  /// cache whose samples have rows is multi-label; leave every row empty for single-label data.
  std::vector<std::int8_t> label_row;
  std::string patient;
  std::string path;
};

/// Writes a gray cache of `samples` (each height x width) to `path`: 8-bit, or with `wide` 16-bit
/// with every pixel v stored as v * 257 (so 16-bit and 8-bit serve the same values).
inline void write_test_cache(const std::string& path, int height, int width,
                             const std::vector<TestSample>& samples,
                             const std::vector<std::string>& class_names = {"normal", "pneumonia"},
                             bool wide = false) {
  detail::CacheHeader header;
  header.count = samples.size();
  header.height = height;
  header.width = width;
  header.channels = 1;
  header.dtype = wide ? PixelType::kUInt16 : PixelType::kUInt8;
  detail::CacheWriter writer(path, header);
  detail::CacheColumns columns;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const TestSample& s = samples[i];
    std::vector<std::uint8_t> bytes = s.pixels;
    if (wide) {
      bytes.resize(s.pixels.size() * 2);
      for (std::size_t k = 0; k < s.pixels.size(); ++k) {
        const auto v = static_cast<std::uint16_t>(s.pixels[k] * 257);
        std::memcpy(bytes.data() + 2 * k, &v, 2);
      }
    }
    writer.write_image(i, bytes.data(), bytes.size());
    columns.labels.push_back(s.label);
    columns.label_matrix.insert(columns.label_matrix.end(), s.label_row.begin(), s.label_row.end());
    columns.patient_ids.push_back(s.patient);
    columns.source_paths.push_back(s.path);
    columns.source_hashes.push_back(hash_hex(i));
    columns.sites.push_back("");
    columns.frame_indices.push_back(0);
    columns.source_indices.push_back(static_cast<std::int64_t>(i));
    columns.pixel_hashes.push_back(hash64(bytes.data(), bytes.size()));
    columns.checksums.push_back(hash64(bytes.data(), bytes.size()));
    columns.geometry.push_back(Geometry{});
  }
  columns.multi_label = !columns.label_matrix.empty();
  writer.finish(columns, {}, class_names, R"({"test":true})", "0000000000000000", nlohmann::json::object());
}

}  // namespace medload::loader::testing
