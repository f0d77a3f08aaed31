#pragma once
// Writing a new cache's file image by image, shared by build_cache and merge_caches: blocks of
// images are read (and checked, and compressed) in parallel, then written in order. The file is
// a temporary that the caller publishes with publish_atomically (medload/core/atomic_file.h).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "cache_writer.h"
#include "medload/core/progress.h"

namespace medload::loader::detail {

/// What assembling cost: reading and compressing summed over threads, writing on the caller's.
struct AssemblyCost {
  std::int64_t read_ns = 0;
  std::int64_t compress_ns = 0;
  std::int64_t write_ns = 0;
};

/// Reads image `index` of the new cache ([C,H,W], `size` = CacheWriter::image_bytes() bytes)
/// into `out` and checks it against its checksum; throws naming the image on a mismatch.
using ReadImage = std::function<void(std::size_t index, std::uint8_t* out, std::size_t size)>;
/// Reads the mask of image `index` of the new cache (H*W uint16 class ids, [H,W]) into `out`
/// when its mask state is kValid and returns true; returns false (`out` unused, nothing written:
/// the mask reads as zeros) otherwise.
using ReadMask = std::function<bool(std::size_t index, std::uint16_t* out)>;
/// Writes the tables and attributes (CacheWriter::finish) once every image is written.
using FinishCache = std::function<void(CacheWriter& writer)>;

/// How to assemble: the progress line's label and style, the reading threads (0 = all cores).
struct AssemblyOptions {
  const char* progress_label = "write";
  ProgressStyle progress = ProgressStyle::kAuto;
  std::size_t threads = 0;
};

/// Creates `path` with `header` and writes its `header.count` images (deflated on the reading
/// threads when header.deflate > 0) and, when header.masks, the masks `read_mask` gives (always
/// deflated, on the reading threads), then calls `finish`. Throws std::invalid_argument when
/// header.masks and no `read_mask` is given, what `read`, `read_mask`, `finish` or the writer
/// throw (IoError, HdfError, FormatError); `path` is then left for the caller to remove.
AssemblyCost assemble_cache(const std::string& path, const CacheHeader& header,
                            const AssemblyOptions& options, const ReadImage& read, const FinishCache& finish,
                            const ReadMask& read_mask = nullptr);

}  // namespace medload::loader::detail
