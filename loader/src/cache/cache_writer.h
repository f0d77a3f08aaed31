#pragma once
// Writing one complete cache file (schema: docs/cache.md; every table through schema.h). Used by
// build_cache (the final assembly of OUTPUT.tmp) and merge_caches. Images are written one chunk
// each with H5Dwrite_chunk (already compressed by the caller's thread when deflate is on); the
// per-sample tables and the attributes are written by finish().

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "h5.h"
#include "medload/loader/cache/cache_reader.h"
#include "schema.h"

namespace medload::loader::detail {

/// Compresses one image for a deflate chunk (zlib stream, as HDF5's deflate filter writes it).
std::vector<std::uint8_t> deflate_chunk(const void* data, std::size_t size, int level);

class CacheWriter {
 public:
  /// Creates `path` (truncating it) with an /images dataset of `header`'s shape.
  CacheWriter(const std::string& path, const CacheHeader& header);

  /// Writes image `index` ([C,H,W] bytes, image_bytes() of them) or, when the header has
  /// deflate, its deflate_chunk() output (`size` = compressed bytes).
  void write_image(std::size_t index, const void* data, std::size_t size);
  /// Bytes of one uncompressed image.
  std::size_t image_bytes() const noexcept { return image_bytes_; }

  /// Writes the tables, /rejected and the root attributes (schema::write_root_attributes: the
  /// schema and library versions, config, classes, counts, build time) and `record`, flushes
  /// and closes the file. Throws HdfError (a full disk shows here), FormatError when a column
  /// does not have one entry per image.
  void finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
              const std::vector<std::string>& class_names, const std::string& config_json,
              const std::string& config_hash, const schema::BuildRecord& record);
  /// finish() with further root attributes given as a JSON object instead of a BuildRecord
  /// (schema::write_json_attributes), for caches of a hand-made shape.
  void finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
              const std::vector<std::string>& class_names, const std::string& config_json,
              const std::string& config_hash, const nlohmann::json& attributes);

 private:
  // The tables, /rejected and the root attributes (everything finish writes but the record).
  void write_contents(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
                      const std::vector<std::string>& class_names, const std::string& config_json,
                      const std::string& config_hash);
  // Closes every object, flushes and closes the file.
  void close();

  h5::File file_;
  h5::Dataset images_;
  CacheHeader header_;
  std::size_t image_bytes_ = 0;
};

}  // namespace medload::loader::detail
