#pragma once
// The cache format's one home on the reading side (docs/cache.md, "Reading a cache you did not
// build"). Caches travel between teams and may have been rewritten by other tools (h5py), so
// every dataset and attribute medload reads from a cache is named here once, and every read
// checks, before anything is allocated or indexed:
// - the shape (rank, and the length against N, the number of images),
// - the element type (integer, float or string, as the column needs),
// - that the declared size is backed by storage in the file (a table that claims 2^31 entries
//   with no data behind it is refused rather than allocated),
// - the value ranges (schema_version, shard attributes, labels, split parts, split mean/std).
// A failure throws FormatError "<file> is not a usable medload cache: <what it holds>, <what was
// expected>", e.g. `c.h5 is not a usable medload cache: /meta/age has 12 entries for 16 images`.
//
// The writer (cache_writer.cpp, serve/split_store.cpp's write_split_group) still spells the names
// itself; the names here are the ones it writes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "h5.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/privacy.h"

namespace medload::loader::schema {

// ---- names ----------------------------------------------------------------------------------

inline constexpr const char* kImages = "images";
inline constexpr const char* kLabels = "labels";
inline constexpr const char* kLabelMatrix = "label_matrix";
inline constexpr const char* kPatientId = "patient_id";
inline constexpr const char* kSourcePath = "source_path";
inline constexpr const char* kSourceHash = "source_hash";
inline constexpr const char* kSite = "site";
inline constexpr const char* kFrameIndex = "frame_index";
inline constexpr const char* kSourceIndex = "source_index";
inline constexpr const char* kPixelHash = "pixel_hash";
inline constexpr const char* kChecksum = "checksum";
inline constexpr const char* kMeta = "meta";
inline constexpr const char* kImputedSuffix = "_imputed";
inline constexpr const char* kRejected = "rejected";
inline constexpr const char* kSplits = "splits";
/// Root attribute: the PrivacyRecord (JSON text) of the cache's identifying fields.
inline constexpr const char* kPrivacy = "privacy";
/// The integer geometry columns under /geometry, in Geometry's order; /geometry/scale is float64.
inline constexpr const char* kGeometryInt[10] = {"original_height", "original_width", "crop_x",  "crop_y",
                                                 "crop_w",          "crop_h",         "pad_top", "pad_left",
                                                 "pad_bottom",      "pad_right"};
inline constexpr const char* kGeometryScale = "geometry/scale";

// ---- limits on what a header may claim -----------------------------------------------------

/// Most images a cache may declare (its first dimension).
inline constexpr std::uint64_t kMaxImages = std::uint64_t{1} << 31;
/// Largest image side (rows or columns).
inline constexpr std::uint64_t kMaxSide = 65535;
/// Largest single image in bytes (one image is allocated whole when read or verified).
inline constexpr std::uint64_t kMaxImageBytes = std::uint64_t{1} << 31;
/// Most classes (class_names entries).
inline constexpr std::uint64_t kMaxClasses = 65536;
/// Most shards a build may be split into (shard_count).
inline constexpr std::int64_t kMaxShards = 65536;
/// Largest source count (count_sources, count_ok_files, sources_total).
inline constexpr std::int64_t kMaxSources = std::int64_t{1} << 40;
/// Most folds of a k-fold split.
inline constexpr std::int64_t kMaxFolds = 127;
/// A deflated chunk cannot expand more than this (zlib's maximum ratio is about 1032:1).
inline constexpr std::uint64_t kMaxInflation = 1100;

// ---- the file --------------------------------------------------------------------------------

/// A cache file opened read-only for validated reads: the HDF5 file, its name for messages and
/// its size on disk.
class CacheFile {
 public:
  /// Opens `path` read-only. Throws IoError when it does not exist or cannot be read,
  /// FormatError when HDF5 cannot open it (truncated, or not HDF5).
  explicit CacheFile(const std::string& path);

  /// The open HDF5 file id.
  hid_t id() const noexcept { return file_.id(); }
  /// The name used in messages, as given.
  const std::string& path() const noexcept { return path_; }
  /// Bytes of the file when it was opened.
  std::uint64_t size_bytes() const noexcept { return size_bytes_; }
  /// Throws FormatError "<path> is not a usable medload cache: <what>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  h5::File file_;
  std::string path_;
  std::uint64_t size_bytes_ = 0;
};

/// Caches medload writes now hold no variable-length strings. When `file` does (an older
/// cache, or one another tool rewrote), they live in HDF5's global heap, whose damage crashes or
/// hangs libhdf5 in the reading process: the file is then closed, checked with
/// check_cache_in_child (unless that already passed for this file in this process), and opened
/// again. Returns at once inside that child. Throws what check_cache_in_child throws.
void contain_variable_length_strings(const std::string& path, h5::File& file);

// ---- root attributes -------------------------------------------------------------------------

/// `schema_version`: required, an integer in 1..kCacheSchemaVersion (a newer one says to use a
/// newer medload).
std::int64_t read_schema_version(const CacheFile& file);
/// `class_names`: a JSON array of at most kMaxClasses strings; empty when absent.
std::vector<std::string> read_class_names(const CacheFile& file);
/// A string attribute of the root (`config`, `config_hash`, `library_version`, `impute`, ...);
/// `fallback` when absent; FormatError when it is not a string.
std::string read_text_attribute(const CacheFile& file, const std::string& name, const std::string& fallback);

/// `privacy`: the PrivacyRecord's JSON; a record with recorded = false when absent (an older cache).
PrivacyRecord read_privacy(const CacheFile& file);

/// The shard and count attributes a merge reads.
struct ShardInfo {
  std::int64_t index = 0;          ///< shard_index, 0..count-1 (default 0)
  std::int64_t count = 1;          ///< shard_count, 1..kMaxShards (default 1)
  std::int64_t sources = 0;        ///< count_sources, 0..kMaxSources (default 0)
  std::int64_t ok_files = 0;       ///< count_ok_files, 0..sources (default 0)
  std::int64_t sources_total = 0;  ///< sources_total, sources..kMaxSources (default sources)
};
/// Reads and range-checks the shard attributes.
ShardInfo read_shard_info(const CacheFile& file);

// ---- /images -----------------------------------------------------------------------------------

/// What /images declares, validated.
struct ImageShape {
  std::size_t count = 0;  ///< N, at most kMaxImages
  int rank = 3;           ///< 3: [N,H,W]; 4: [N,C,H,W]
  int channels = 1;       ///< 1 or 3
  int height = 0;         ///< 1..kMaxSide
  int width = 0;          ///< 1..kMaxSide
  PixelType dtype = PixelType::kUInt8;
  std::size_t image_bytes = 0;  ///< C*H*W*element size, at most kMaxImageBytes
  /// File offset of image 0 when the dataset is contiguous and written; kNotWritten otherwise.
  std::uint64_t contiguous_offset = 0;
  bool contiguous = false;  ///< the dataset's layout is contiguous
};
/// `contiguous_offset` of a dataset with no storage: every image reads as HDF5's fill value (0).
inline constexpr std::uint64_t kNotWritten = ~std::uint64_t{0};

/// Validates /images: rank 3 or 4, N <= kMaxImages, sides 1..kMaxSide, channels 1 or 3, uint8 or
/// little-endian uint16, one image <= kMaxImageBytes, and (contiguous and written) every image's
/// bytes inside the file. A contiguous dataset never written, or a chunked one with chunks never
/// written, is accepted: those images read as zeros and fail their checksums.
ImageShape read_image_shape(const CacheFile& file, const h5::Dataset& images);

// ---- per-image tables --------------------------------------------------------------------------

/// True when the dataset `name` exists.
bool has_dataset(const CacheFile& file, const std::string& name);

/// Reads the numeric dataset `name` of shape `dims` (row-major) as T. Checks that it exists,
/// has exactly that shape, holds integers (or, for T = double, integers or floats), and that its
/// storage can hold that many values. T: int8, uint8, int32, int64, uint64, double.
template <class T>
std::vector<T> read_array(const CacheFile& file, const std::string& name,
                          const std::vector<std::uint64_t>& dims);
/// read_array of the 1-D table `name` with `n` entries.
template <class T>
std::vector<T> read_column(const CacheFile& file, const std::string& name, std::size_t n) {
  return read_array<T>(file, name, {static_cast<std::uint64_t>(n)});
}
/// Reads the 1-D string dataset `name` with exactly `n` entries.
std::vector<std::string> read_text_column(const CacheFile& file, const std::string& name, std::size_t n);

/// Reads /labels [N] int64, each in -1..classes-1.
std::vector<std::int64_t> read_labels(const CacheFile& file, std::size_t n, std::size_t classes);
/// Reads /label_matrix [N, classes] of 0/1.
std::vector<std::uint8_t> read_label_matrix(const CacheFile& file, std::size_t n, std::size_t classes);

/// Reads /source_index [n], each 0..kMaxSources; zeros when absent.
std::vector<std::int64_t> read_source_indices(const CacheFile& file, std::size_t n);
/// Reads /pixel_hash [n]; zeros when absent and not `required`.
std::vector<std::uint64_t> read_pixel_hashes(const CacheFile& file, std::size_t n, bool required);

/// Names of the /meta columns (without the `_imputed` flags), sorted.
std::vector<std::string> meta_names(const CacheFile& file);
/// Reads /meta/<name> (float64-convertible numbers or strings, [n]) and /meta/<name>_imputed
/// ([n] 0/1; all 0 when absent).
MetaColumn read_meta(const CacheFile& file, const std::string& name, std::size_t n);

/// Reads /rejected: path, reason, detail (required when the group exists) and source_hash,
/// outcome, source_index (optional: "", "" and 0 when absent), all of one length M.
std::vector<detail::RejectedRecord> read_rejected(const CacheFile& file);

// ---- /splits -----------------------------------------------------------------------------------

/// Names of the stored splits (sorted; those starting with '.' are being written and left out).
std::vector<std::string> split_names(const CacheFile& file);

/// The part of a split that serving and inspection rely on, validated.
struct SplitCore {
  std::string kind;               ///< "parts" or "kfold"
  std::size_t parts = 0;          ///< parts: 1..3; kfold: 2..kMaxFolds
  std::vector<std::int8_t> part;  ///< [n]: parts: 0..parts-1; kfold: -1..parts-1
  std::vector<double> mean;       ///< parts: 1 value; kfold: `parts`; finite
  std::vector<double> std;        ///< as mean; finite and > 0
};
/// `n` for read_split_core when the number of images is not known: the stored length is taken
/// (at most kMaxImages).
inline constexpr std::size_t kStoredLength = ~std::size_t{0};
/// Reads /splits/<name>/part ([n] entries) and the attributes kind, parts, mean and std.
SplitCore read_split_core(const CacheFile& file, const std::string& name, std::size_t n);

}  // namespace medload::loader::schema
