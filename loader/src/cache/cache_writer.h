#pragma once
// Writing one complete cache file (schema: docs/cache.md; every table through schema.h). Used by
// build_cache (the final assembly of OUTPUT.tmp) and merge_caches. Images are written one chunk
// each with H5Dwrite_chunk (already compressed by the caller's thread when deflate is on), masks
// likewise (always deflated); the per-sample tables, the target tables and the attributes are
// written by finish().

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
  /// Creates `path` (truncating it) with an /images dataset of `header`'s shape and, when
  /// header.masks, /targets/masks (uint16 [N,H,W]).
  CacheWriter(const std::string& path, const CacheHeader& header);

  /// Writes image `index` ([C,H,W] bytes, image_bytes() of them) or, when the header has
  /// deflate, its deflate_chunk() output (`size` = compressed bytes).
  void write_image(std::size_t index, const void* data, std::size_t size);
  /// Bytes of one uncompressed image.
  std::size_t image_bytes() const noexcept { return image_bytes_; }

  /// Writes the mask of image `index`: deflate_chunk(labels, mask_bytes(), mask_deflate()) of its
  /// H*W uint16 class ids ([H,W] row-major, native byte order), `size` = compressed bytes. Write
  /// exactly the masks whose columns.targets.mask_states entry is kValid (finish checks); the
  /// others read as zeros. Throws std::logic_error when the header has no masks,
  /// std::out_of_range for a bad index, HdfError.
  void write_mask(std::size_t index, const void* data, std::size_t size);
  /// Bytes of one uncompressed mask (H * W * 2).
  std::size_t mask_bytes() const noexcept { return mask_bytes_; }
  /// zlib level of the mask chunks (schema::mask_deflate_level: the images' level, else 1).
  int mask_deflate() const noexcept;

  /// Writes the tables, /rejected, the target tables (schema::write_targets, when the header has
  /// masks or some image has a target state other than kNone: else the cache has no /targets),
  /// the root attributes (schema::write_root_attributes: the schema and library versions,
  /// config, classes, counts, build time) and `record`, flushes and closes the file. Throws
  /// HdfError (a full disk shows here), FormatError when a column does not have one entry per
  /// image, when the target tables are not what schema::check_targets accepts, or when the masks
  /// written are not exactly those marked kValid.
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

  // The target tables, after checking that the masks written are exactly the kValid ones.
  void write_targets(const TargetColumns& targets);

  h5::File file_;
  h5::Dataset images_;
  h5::Dataset masks_;
  CacheHeader header_;
  std::size_t image_bytes_ = 0;
  std::size_t mask_bytes_ = 0;
  std::vector<bool> mask_written_;
};

}  // namespace medload::loader::detail
