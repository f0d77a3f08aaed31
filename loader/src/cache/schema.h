#pragma once
// The cache format's one home (docs/cache.md, "Schema" and "Reading a cache you did not build").
// Every dataset, group and attribute of a cache is named here once, and both directions go
// through this module: CacheWriter (and so build and merge) and the split store write each table
// with a typed write_* function, and every reader (CacheReader, inspect, merge, an incremental
// build, the split store) reads it with the matching read_* function. A table's name, shape and
// element type are thus declared in one place for writing and reading.
//
// Caches travel between teams and may have been rewritten by other tools (h5py), so every read
// checks, before anything is allocated or indexed:
// - the shape (rank, and the length against N, the number of images),
// - the element type (integer, float or string, as the column needs),
// - that the declared size is backed by storage in the file (a table that claims 2^31 entries
//   with no data behind it is refused rather than allocated),
// - the value ranges (schema_version, shard attributes, labels, split parts, split mean/std).
// A failure throws FormatError "<file> is not a usable medload cache: <what it holds>, <what was
// expected>", e.g. `c.h5 is not a usable medload cache: /meta/age has 12 entries for 16 images`.
//
// Writes produce what the reads accept: fixed-length UTF-8 strings (h5::write_strings), int64
// labels and indices, int32 frame indices and geometry, uint64 hashes, float64 numbers.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "h5.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/privacy.h"
#include "medload/loader/cache/split_table.h"
#include "medload/loader/ingest/annotation.h"

namespace medload::loader::detail {

/// The shape and identity of a cache: everything needed before the first image is written.
struct CacheHeader {
  std::size_t count = 0;  ///< N images
  int height = 0;
  int width = 0;
  int channels = 1;  ///< 1 -> /images [N,H,W]; 3 -> [N,C,H,W]
  PixelType dtype = PixelType::kUInt8;
  int deflate = 0;  ///< zlib level of the image chunks, 0 = none
  /// Create /targets/masks (uint16 [N,H,W], one deflated chunk per image) for CacheWriter::write_mask.
  bool masks = false;
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

/// The per-image target tables of /targets (schema version 2), row i for image i: filled by
/// append_targets, one call per image in cache order. The masks themselves are not here: they are
/// streamed with CacheWriter::write_mask. A cache with no rows, or whose rows are all kNone and
/// which has no masks dataset, gets no /targets group.
struct TargetColumns {
  std::vector<std::uint8_t> mask_states;      ///< [N] TargetState values
  std::vector<std::uint8_t> box_states;       ///< [N] TargetState values
  std::vector<std::uint8_t> landmark_states;  ///< [N] TargetState values
  /// [N+1] image i's boxes are rows box_offsets[i]..box_offsets[i+1]-1 (0 first, M last); empty
  /// before the first append_targets.
  std::vector<std::uint64_t> box_offsets;
  std::vector<double> boxes;                     ///< [M*4] x0, y0, x1, y1 in output-grid pixels
  std::vector<std::int32_t> box_labels;          ///< [M] class ids 1..classes-1
  std::vector<std::uint64_t> landmark_offsets;   ///< [N+1], as box_offsets
  std::vector<double> landmarks;                 ///< [L*2] x, y in output-grid pixels
  std::vector<std::int32_t> landmark_labels;     ///< [L] class ids 1..classes-1
  std::vector<std::uint32_t> boxes_dropped;      ///< [N] boxes preprocessing dropped
  std::vector<std::uint32_t> landmarks_dropped;  ///< [N] landmarks preprocessing dropped
  std::vector<std::string> classes;              ///< TargetClasses::names: names by class id, 0 = background

  /// Images with a row.
  std::size_t rows() const noexcept { return mask_states.size(); }
  /// True when some image has a state other than kNone.
  bool any() const noexcept;
};

/// Appends one image's row: its three states, its boxes and landmarks (when kValid; a kind that is
/// not kValid gets none) and its dropped counts. The mask's pixels are not stored here (write_mask).
void append_targets(TargetColumns& columns, const FrameTargets& targets);

/// The per-sample tables, N entries each (label_matrix N*K when multi_label).
struct CacheColumns {
  std::vector<std::int64_t> labels;
  bool multi_label = false;
  std::vector<std::int8_t> label_matrix;  ///< [N*K] 1 present, 0 absent, -1 unknown
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
  /// /targets: no rows, or N rows (append_targets per image).
  TargetColumns targets;
};

/// Compact JSON text for a string column or attribute. Text is UTF-8 by the time it gets here
/// (list_sources, the decoders); a stray byte that is not (an older cache's column) becomes
/// U+FFFD instead of failing the write.
std::string json_text(const nlohmann::json& value);

}  // namespace medload::loader::detail

namespace medload::loader::schema {

// ---- names: datasets and groups --------------------------------------------------------------

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
/// Group of the metadata columns /meta/<name>, each with its flags /meta/<name>_imputed.
inline constexpr const char* kMeta = "meta";
inline constexpr const char* kImputedSuffix = "_imputed";
/// Group of the geometry columns.
inline constexpr const char* kGeometry = "geometry";
/// The int32 columns under /geometry, in Geometry's order; /geometry/scale is float64.
inline constexpr const char* kGeometryInt[10] = {"original_height", "original_width", "crop_x",  "crop_y",
                                                 "crop_w",          "crop_h",         "pad_top", "pad_left",
                                                 "pad_bottom",      "pad_right"};
/// The Geometry field each kGeometryInt column holds (same order).
inline constexpr int Geometry::*kGeometryIntFields[10] = {
    &Geometry::original_height, &Geometry::original_width, &Geometry::crop_x,  &Geometry::crop_y,
    &Geometry::crop_w,          &Geometry::crop_h,         &Geometry::pad_top, &Geometry::pad_left,
    &Geometry::pad_bottom,      &Geometry::pad_right};
/// Path of the float64 column holding Geometry::scale.
inline constexpr const char* kGeometryScale = "geometry/scale";
/// Group of the rejected inputs, and its columns (one entry per rejected file).
inline constexpr const char* kRejected = "rejected";
inline constexpr const char* kRejectedPath = "path";                 ///< string
inline constexpr const char* kRejectedReason = "reason";             ///< string
inline constexpr const char* kRejectedDetail = "detail";             ///< string
inline constexpr const char* kRejectedSourceHash = "source_hash";    ///< string, optional when read
inline constexpr const char* kRejectedOutcome = "outcome";           ///< string (JSON), optional when read
inline constexpr const char* kRejectedSourceIndex = "source_index";  ///< int64, optional when read
/// Group of the stored splits, /splits/<name>.
inline constexpr const char* kSplits = "splits";
/// Group of the targets (schema version 2; absent when the cache has none), and its datasets.
inline constexpr const char* kTargets = "targets";
inline constexpr const char* kMasks = "targets/masks";                       ///< uint16 [N,H,W]
inline constexpr const char* kMaskState = "targets/mask_state";              ///< uint8 [N]
inline constexpr const char* kBoxState = "targets/box_state";                ///< uint8 [N]
inline constexpr const char* kLandmarkState = "targets/landmark_state";      ///< uint8 [N]
inline constexpr const char* kBoxOffsets = "targets/box_offsets";            ///< uint64 [N+1]
inline constexpr const char* kBoxes = "targets/boxes";                       ///< float64 [M,4]
inline constexpr const char* kBoxLabels = "targets/box_labels";              ///< int32 [M]
inline constexpr const char* kBoxDropped = "targets/box_dropped";            ///< uint32 [N]
inline constexpr const char* kLandmarkOffsets = "targets/landmark_offsets";  ///< uint64 [N+1]
inline constexpr const char* kLandmarks = "targets/landmarks";               ///< float64 [L,2]
inline constexpr const char* kLandmarkLabels = "targets/landmark_labels";    ///< int32 [L]
inline constexpr const char* kLandmarkDropped = "targets/landmark_dropped";  ///< uint32 [N]
inline constexpr const char* kTargetClasses = "targets/classes";             ///< string [K]

// ---- names: root attributes --------------------------------------------------------------------

inline constexpr const char* kSchemaVersion = "schema_version";    ///< int64
inline constexpr const char* kLibraryVersion = "library_version";  ///< string (also on each split)
inline constexpr const char* kConfig = "config";                   ///< string: canonical config JSON
inline constexpr const char* kConfigHash = "config_hash";          ///< string: 16 hex digits
inline constexpr const char* kClassNames = "class_names";          ///< string: JSON array
inline constexpr const char* kCountImages = "count_images";        ///< int64
inline constexpr const char* kCountRejected = "count_rejected";    ///< int64
inline constexpr const char* kBuildTime = "build_time";            ///< string: UTC, ISO 8601
inline constexpr const char* kCountSources = "count_sources";      ///< int64
inline constexpr const char* kCountOkFiles = "count_ok_files";     ///< int64
inline constexpr const char* kSourcesTotal = "sources_total";      ///< int64
inline constexpr const char* kShardIndex = "shard_index";          ///< int64
inline constexpr const char* kShardCount = "shard_count";          ///< int64
inline constexpr const char* kMultiLabel = "multi_label";          ///< int64 0/1
inline constexpr const char* kMissingLabels = "missing_labels";    ///< string: the policy
inline constexpr const char* kImpute = "impute";                   ///< string: the policy
inline constexpr const char* kMergedFrom = "merged_from";          ///< string: JSON array of files
/// Root attribute: the PrivacyRecord (JSON text) of the cache's identifying fields.
inline constexpr const char* kPrivacy = "privacy";

// ---- names: a split, /splits/<name> ------------------------------------------------------------

inline constexpr const char* kSplitPart = "part";                        ///< dataset, int8 [N]
inline constexpr const char* kSplitKind = "kind";                        ///< string
inline constexpr const char* kSplitParts = "parts";                      ///< int64
inline constexpr const char* kSplitSeed = "seed";                        ///< string: decimal uint64
inline constexpr const char* kSplitRatios = "ratios";                    ///< float64 [parts]
inline constexpr const char* kSplitPatientSetHash = "patient_set_hash";  ///< string
inline constexpr const char* kSplitPatients = "patients";                ///< int64
inline constexpr const char* kSplitSamplesWithoutPatient = "samples_without_patient";  ///< int64
inline constexpr const char* kSplitClassCounts = "class_counts";                       ///< string: JSON
inline constexpr const char* kSplitSampleCounts = "sample_counts";                     ///< float64 [parts]
inline constexpr const char* kSplitPatientCounts = "patient_counts";                   ///< float64 [parts]
inline constexpr const char* kSplitMean = "mean";  ///< float64 [1 or folds]
inline constexpr const char* kSplitStd = "std";    ///< float64 [1 or folds]

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
/// The first schema version with /targets: an older cache's /targets, if any, is not read.
inline constexpr std::int64_t kTargetsSchemaVersion = 2;
/// The version of a cache whose /label_matrix holds unknown entries (-1); see kCacheSchemaVersion.
inline constexpr std::int64_t kUnknownLabelsSchemaVersion = 3;
/// Most target classes (/targets/classes entries: mask values are uint16).
inline constexpr std::uint64_t kMaxTargetClasses = 65536;
/// How far a stored box or landmark may lie outside the output grid [0,W] x [0,H] (pixels): the
/// rounding of the geometry's mapping, not a real overhang.
inline constexpr double kTargetSlack = 1e-6;
/// zlib level of the mask chunks when the images are not deflated: label maps are mostly runs of
/// one value and shrink 20-100x even at level 1, so masks are always deflated.
inline constexpr int kMaskDeflate = 1;

// ---- the file --------------------------------------------------------------------------------

/// A cache file opened read-only for validated reads: the HDF5 file, its name for messages and
/// its size on disk.
class CacheFile {
 public:
  /// Opens `path` read-only. Throws IoError when it does not exist, cannot be read or is not a
  /// regular file (a FIFO would block HDF5's open forever: "cannot read the cache c.h5: it is a
  /// FIFO (named pipe), not a regular file"), FormatError when HDF5 cannot open it (truncated, or not HDF5)
  /// and when the file reaches outside itself (h5::first_foreign_object: a soft, external or
  /// user-defined link, external storage, a virtual dataset), checked before any object is
  /// opened by name: "c.h5 is not a usable medload cache: /labels is an external link (to
  /// x.h5:/labels); ...".
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
/// check_cache_in_child (unless that already passed for this file, as it is now, in this
/// process), and opened again. Either way `file` is then distrusted (h5::File::distrust): its
/// variable-length strings are read from what the checking child read, never converted here.
/// Returns at once, trusting the file, inside that child. Throws what check_cache_in_child throws.
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
/// The schema version a cache with these tables is written as: kUnknownLabelsSchemaVersion when
/// its label matrix holds an unknown entry (-1), else kTargetsSchemaVersion.
std::int64_t schema_version_for(const detail::CacheColumns& columns);
/// Writes the root attributes every cache carries: schema_version (`schema_version`, from
/// schema_version_for), library_version (this medload's), config, config_hash, class_names (JSON
/// array), count_images, count_rejected and build_time (now, UTC).
void write_root_attributes(hid_t file, std::int64_t schema_version,
                           const std::vector<std::string>& class_names, const std::string& config_json,
                           const std::string& config_hash, std::size_t images, std::size_t rejected);

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

/// How a cache was made: the root attributes build and merge write beside the root ones above.
struct BuildRecord {
  ShardInfo shard;                           ///< shard_index, shard_count, count_sources, ...
  bool multi_label = false;                  ///< multi_label (int64 0/1): /label_matrix is present
  std::string missing_labels = "unlabeled";  ///< missing_labels: the policy for unlabeled inputs
  std::string impute = "class_median";       ///< impute: the metadata policy
  PrivacyRecord privacy;                     ///< privacy (JSON), written when recorded
  std::vector<std::string> merged_from;      ///< merged_from (JSON array), written when not empty
};
/// Reads the shard attributes (read_shard_info), missing_labels, impute and privacy, with their
/// defaults when absent. multi_label and merged_from are not read back (a reader takes
/// multi-label from /label_matrix).
BuildRecord read_build_record(const CacheFile& file);
/// Writes every attribute of `record`.
void write_build_record(hid_t file, const BuildRecord& record);
/// Writes each member of the JSON object `attributes` as a root attribute: integers as int64,
/// other numbers as float64, strings as they are, anything else as its JSON text. For caches of
/// a hand-made shape (tests, benchmarks); build and merge write a BuildRecord.
void write_json_attributes(hid_t file, const nlohmann::json& attributes);

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
/// Creates /images for `header`: uint8 or little-endian uint16, [N,H,W] (one channel) or
/// [N,C,H,W]. Contiguous (image i is one byte range at one offset: readers locate every image at
/// once), or with header.deflate one image per chunk, deflated at that level.
h5::Dataset create_images(hid_t file, const detail::CacheHeader& header);

// ---- /targets ------------------------------------------------------------------------------------

/// The zlib level of `header`'s mask chunks: the images' level, or kMaskDeflate when they are not
/// deflated.
int mask_deflate_level(const detail::CacheHeader& header);
/// Creates /targets/masks for `header`: little-endian uint16 [N,H,W], one deflated chunk per image
/// (mask_deflate_level). Chunks never written read as zeros.
h5::Dataset create_masks(hid_t file, const detail::CacheHeader& header);
/// Validates /targets/masks against the images: exactly [N,H,W], unsigned little-endian 16-bit
/// integers, and (contiguous and written) inside the file. The mask values are not read.
ImageShape read_mask_shape(const CacheFile& file, const h5::Dataset& masks, const ImageShape& images);

/// Checks the target tables of an N-image cache with an output grid of `width` x `height`, and
/// calls `fail` (which must throw) with what is wrong, naming the dataset: every table's length
/// (N, N+1 for the offsets, the offsets' last value for the rows), offsets starting at 0 and
/// non-decreasing, states 0..2, a kValid mask only with a masks dataset (`has_masks`), no boxes or
/// landmarks for an image whose state for them is not kValid, boxes finite with x0 < x1, y0 < y1,
/// landmarks finite, both inside [0,W] x [0,H] (within kTargetSlack), labels 1..K-1 (K = classes),
/// at most kMaxTargetClasses classes. The read and the write side both call it.
void check_targets(const detail::TargetColumns& targets, std::size_t n, int height, int width, bool has_masks,
                   const std::function<void(const std::string&)>& fail);
/// Reads and validates /targets (a cache of schema version >= kTargetsSchemaVersion): the classes,
/// the three state columns, the ragged box and landmark tables (each offsets table read and its
/// last value compared with the rows declared before the rows are read) and the dropped counts,
/// then check_targets. No rows when the cache has no /targets group. Throws FormatError naming
/// the file and the dataset.
detail::TargetColumns read_targets(const CacheFile& file, std::size_t n, int height, int width,
                                   bool has_masks);
/// Writes /targets: the classes, the state columns, the box and landmark tables and the dropped
/// counts, `targets` having N rows (no rows: every image kNone). Throws FormatError "cannot write
/// <file>: ..." when check_targets refuses them (`has_masks`: /targets/masks was created).
void write_targets(hid_t file, const detail::TargetColumns& targets, std::size_t n, int height, int width,
                   bool has_masks);

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
/// Reads /label_matrix [N, classes]: 1 present, 0 absent, -1 unknown. Stored as unsigned
/// integers (uint8, as written when no entry is unknown) it must hold only 0/1; as signed integers
/// (int8) only -1/0/1. Anything else (floats, 2, -2, 255) is refused naming the image and class.
std::vector<std::int8_t> read_label_matrix(const CacheFile& file, std::size_t n, std::size_t classes);
/// Writes /labels [N] int64.
void write_labels(hid_t file, const std::vector<std::int64_t>& labels);
/// Writes /label_matrix [n, classes] (row-major): uint8 0/1 when no entry is -1 (readable by
/// medload versions from before unknown labels), else int8 -1/0/1. Throws FormatError naming the
/// file when `matrix` does not hold n x classes values, or holds a value other than -1, 0 or 1.
void write_label_matrix(hid_t file, const std::vector<std::int8_t>& matrix, std::size_t n,
                        std::size_t classes);

/// Writes every per-image table of `columns`, each with `n` entries: /labels, /label_matrix (when
/// multi_label, `classes` columns), /patient_id, /source_path, /source_hash, /site (strings),
/// /frame_index, /source_index, /pixel_hash, /checksum, /geometry and /meta (the group even when
/// there are no columns). Throws FormatError naming the file and the column when one does not
/// have `n` entries.
void write_columns(hid_t file, const detail::CacheColumns& columns, std::size_t n, std::size_t classes);

/// Reads /source_index [n], each 0..kMaxSources; zeros when absent.
std::vector<std::int64_t> read_source_indices(const CacheFile& file, std::size_t n);
/// Reads /pixel_hash [n]; zeros when absent and not `required`.
std::vector<std::uint64_t> read_pixel_hashes(const CacheFile& file, std::size_t n, bool required);

/// Names of the /meta columns (without the `_imputed` flags), sorted.
std::vector<std::string> meta_names(const CacheFile& file);
/// Reads /meta/<name> (float64-convertible numbers or strings, [n]) and /meta/<name>_imputed
/// ([n] 0/1; all 0 when absent).
MetaColumn read_meta(const CacheFile& file, const std::string& name, std::size_t n);
/// Writes /meta/<column.name> (float64 when numeric, else strings) and its uint8 flags
/// /meta/<column.name>_imputed. Throws FormatError when the values or flags are not `n`.
void write_meta(hid_t file, const MetaColumn& column, std::size_t n);

/// The /geometry columns, each [N], or empty when the cache lacks it (every image then has
/// Geometry's default for that field: 0, scale 1).
struct GeometryColumns {
  std::vector<std::int32_t> ints[10];  ///< kGeometryInt order
  std::vector<double> scale;           ///< /geometry/scale
  /// Image `index`'s geometry (index < N).
  Geometry at(std::size_t index) const;
};
/// Reads the /geometry columns that exist, each int32 (scale: float64) with `n` entries.
GeometryColumns read_geometry(const CacheFile& file, std::size_t n);
/// Writes every /geometry column: int32 [N] each, /geometry/scale float64 [N].
void write_geometry(hid_t file, const std::vector<Geometry>& geometry);

/// Reads /rejected: path, reason, detail (required when the group exists) and source_hash,
/// outcome, source_index (optional: "", "" and 0 when absent), all of one length M.
std::vector<detail::RejectedRecord> read_rejected(const CacheFile& file);
/// Writes /rejected: path, reason, detail, source_hash, outcome (strings) and source_index (int64),
/// one entry per record (the group and its six columns even when there are none).
void write_rejected(hid_t file, const std::vector<detail::RejectedRecord>& records);

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
/// Reads the whole split /splits/<name>: read_split_core, then seed (decimal text), ratios
/// (at most kMaxFolds), patient_set_hash (required) and patients, samples_without_patient,
/// class_counts (JSON [parts][classes + 1]), sample_counts, patient_counts (0..kMaxImages each;
/// absent: 0 or empty).
SplitTable read_split(const CacheFile& file, const std::string& name, std::size_t n);
/// Writes /splits/<split.name> (replacing a split of that name): the int8 dataset `part` and
/// every attribute of the split, library_version included. Throws ConfigError when the name is
/// not plain (check_split_name) or `split.part` does not have one entry per image (the message
/// names the cache `shown_as`).
void write_split(hid_t file, const SplitTable& split, const std::string& shown_as);

}  // namespace medload::loader::schema
