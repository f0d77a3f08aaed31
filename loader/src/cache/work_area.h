#pragma once
// The work folder of a build (`<output>.partial/`): finished samples in small batch files, each
// written to a temporary name and renamed when complete, so a kill loses at most the batches in
// progress and a re-run reuses the rest.
//
// Batch file layout: "MLBATCH1" (8 bytes), the JSON header's length (uint64, little-endian),
// the JSON header, then for every frame its pixel bytes ([C,H,W], native order) and, when it has
// a valid mask, the mask's labels (uint16 [H,W], native order), back to back; the header gives
// each frame's offsets relative to the end of the header, and its other targets.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/preprocess/preprocess.h"

namespace medload::loader::detail {

/// One preprocessed frame and where its pixels are.
struct FrameRecord {
  int frame_index = 0;
  std::string patient_id;
  std::string site;
  std::map<std::string, std::string> meta;  ///< raw metadata (missing values absent)
  Geometry geometry;
  std::uint64_t checksum = 0;  ///< XXH64 of the stored [C,H,W] bytes
  int height = 0, width = 0, channels = 1;
  PixelType type = PixelType::kUInt8;
  // Where the pixels are: a batch file at an absolute offset, or an image of the previous cache.
  std::string batch_path;
  std::uint64_t offset = 0;
  std::int64_t cache_index = -1;
  std::vector<std::uint8_t> pixels;  ///< while the batch is being written
  /// The frame's targets on the output grid; the mask's labels only until the batch is written,
  /// then at `mask_offset` of `batch_path` (mask.height x mask.width uint16 values).
  FrameTargets targets;
  std::uint64_t mask_offset = 0;
  std::uint64_t mask_checksum = 0;  ///< XXH64 of the mask's labels as stored
  std::uint16_t mask_max = 0;       ///< the largest class id in the mask
};

/// One finished (ok) source file.
struct FileRecord {
  std::string source_hash;       ///< hex XXH64 of the file's bytes
  std::uint64_t pixel_hash = 0;  ///< XXH64 over the decoded frames (duplicate detection)
  std::string format;
  int frame_count = 1;
  std::vector<FrameRecord> frames;  ///< sorted by frame_index
};

/// Writes `files` (whose frames carry `pixels`) as a batch file in `folder` (temporary name,
/// then renamed); fills each frame's batch_path/offset and frees its pixels. Throws IoError
/// naming the file and the system's reason (e.g. a full disk).
void write_batch(const std::string& folder, const std::string& key, std::vector<FileRecord>& files);

/// Loads every complete batch in `folder` whose key equals `key`, by source hash; batches with
/// another key, unreadable ones and leftover temporaries are deleted.
std::map<std::string, FileRecord> load_batches(const std::string& folder, const std::string& key);

/// Reads `size` bytes at `offset` of `path` (a batch file). Throws IoError.
void read_batch_pixels(const std::string& path, std::uint64_t offset, void* out, std::size_t size);

/// Geometry to/from JSON (the keys of Geometry::to_json()).
Geometry geometry_from_json(const nlohmann::json& j);

}  // namespace medload::loader::detail
