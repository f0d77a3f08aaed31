#pragma once
// Writing one complete cache file (schema: docs/cache.md). Used by build_cache (the final
// assembly of OUTPUT.tmp) and merge_caches. Images are written one chunk each with
// H5Dwrite_chunk (already compressed by the caller's thread when deflate is on); the per-sample
// tables and the attributes are written by finish().

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "h5.h"
#include "medload/loader/cache/cache_reader.h"

namespace medload::loader::detail {

/// The shape and identity of a cache: everything needed before the first image is written.
struct CacheHeader {
  std::size_t count = 0;  ///< N images
  int height = 0;
  int width = 0;
  int channels = 1;  ///< 1 -> /images [N,H,W]; 3 -> [N,C,H,W]
  PixelType dtype = PixelType::kUInt8;
  int deflate = 0;  ///< zlib level of the image chunks, 0 = none
};

/// One rejected input file as stored in /rejected.
struct RejectedRecord {
  std::int64_t source_index = 0;  ///< index in the full (unsharded) source list
  std::string path;
  std::string reason;
  std::string detail;
  std::string source_hash;  ///< hex, "" when the file could not be read
  std::string outcome;      ///< the file's build-report entry (JSON text)
};

/// The per-sample tables, N entries each (label_matrix N*K when multi_label).
struct CacheColumns {
  std::vector<std::int64_t> labels;
  bool multi_label = false;
  std::vector<std::uint8_t> label_matrix;
  std::vector<std::string> patient_ids;
  std::vector<std::string> source_paths;
  std::vector<std::string> source_hashes;
  std::vector<std::string> sites;
  std::vector<std::int32_t> frame_indices;
  std::vector<std::int64_t> source_indices;
  std::vector<std::uint64_t> pixel_hashes;
  std::vector<std::uint64_t> checksums;
  std::vector<Geometry> geometry;
  std::vector<MetaColumn> meta;
};

/// Compresses one image for a deflate chunk (zlib stream, as HDF5's deflate filter writes it).
std::vector<std::uint8_t> deflate_chunk(const void* data, std::size_t size, int level);

/// Compact JSON text for a string column or attribute. Text is UTF-8 by the time it gets here
/// (list_sources, the decoders); a stray byte that is not (an older cache's column) becomes
/// U+FFFD instead of failing the write.
std::string json_text(const nlohmann::json& value);

class CacheWriter {
 public:
  /// Creates `path` (truncating it) with an /images dataset of `header`'s shape.
  CacheWriter(const std::string& path, const CacheHeader& header);

  /// Writes image `index` ([C,H,W] bytes, image_bytes() of them) or, when the header has
  /// deflate, its deflate_chunk() output (`size` = compressed bytes).
  void write_image(std::size_t index, const void* data, std::size_t size);
  /// Bytes of one uncompressed image.
  std::size_t image_bytes() const noexcept { return image_bytes_; }

  /// Writes the tables, /rejected and the root attributes (schema_version and library_version
  /// are added here), flushes and closes the file. Throws HdfError (a full disk shows here).
  void finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
              const std::vector<std::string>& class_names, const std::string& config_json,
              const std::string& config_hash, const nlohmann::json& attributes);

 private:
  h5::File file_;
  h5::Dataset images_;
  CacheHeader header_;
  std::size_t image_bytes_ = 0;
};

}  // namespace medload::loader::detail
