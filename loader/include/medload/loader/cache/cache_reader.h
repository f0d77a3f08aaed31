#pragma once
/// Reading a medload HDF5 cache (schema in docs/cache.md). Opening reads the small per-sample
/// tables and every image chunk's file offset once; after that, reading images never takes the
/// HDF5 library lock: `read_image` is a `pread` on a plain file descriptor (plus zlib inflate,
/// outside any lock, when the cache is compressed), so it is thread-safe and scales with threads.
/// Any number of processes may open the same cache read-only at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/preprocess/preprocess.h"

namespace medload::loader {

/// The newest schema version this medload reads (the cache's `schema_version` attribute).
/// Version 2 added the targets (/targets: masks, boxes, landmarks); version 1 caches are read as
/// caches without targets. Version 3 is a version 2 cache whose /label_matrix holds unknown
/// entries (int8, -1): medload writes it only then, so that an older medload, which would read -1
/// as 0 (a negative), refuses the cache instead; other caches are still written as version 2.
inline constexpr std::int64_t kCacheSchemaVersion = 3;

/// One metadata column (`/meta/<name>`): numeric (float64) or text, with its imputation flags.
struct MetaColumn {
  std::string name;               ///< column name ("age", "sex", "modality", ...)
  bool numeric = false;           ///< true: `values` holds the data; false: `text` does
  std::vector<double> values;     ///< [N] numeric values (NaN when missing and not imputed)
  std::vector<std::string> text;  ///< [N] text values ("" when missing and not imputed)
  /// [N] 1 where the source had no value (it was filled by the imputation policy, or left
  /// NaN/"" when imputation is off), else 0.
  std::vector<std::uint8_t> imputed;
};

/// One rejected input file (`/rejected`).
struct RejectedFile {
  std::string path;    ///< as listed in the build report
  std::string reason;  ///< reason code ("blank", "truncated", ...)
  std::string detail;  ///< for a person
};

/// A read-only view of one cache file.
class CacheReader {
 public:
  /// Opens `path` read-only and validates it (docs/cache.md, "Reading a cache you did not
  /// build"): every table's shape, type and length against N, /images' dimensions against the
  /// limits and the file's size, the splits under /splits, the target tables under /targets
  /// (their lengths, offsets, states, boxes and landmarks inside the output grid, labels; the
  /// masks' shape and type, not their values). Throws IoError when it cannot be
  /// opened, FormatError naming the file and the dataset or attribute when it is not a usable
  /// medload cache: a newer `schema_version` than kCacheSchemaVersion, truncated (an image lies
  /// past the end of the file), or any table or attribute out of shape or range.
  explicit CacheReader(const std::string& path);
  ~CacheReader();
  CacheReader(CacheReader&&) noexcept;
  CacheReader& operator=(CacheReader&&) noexcept;
  CacheReader(const CacheReader&) = delete;
  CacheReader& operator=(const CacheReader&) = delete;

  /// The file it reads.
  const std::string& path() const noexcept;
  /// Number of images N.
  std::size_t size() const noexcept;
  /// Rows of every image.
  int height() const noexcept;
  /// Columns of every image.
  int width() const noexcept;
  /// Channels C (1 = gray; 3 = colour, stored planar B,G,R).
  int channels() const noexcept;
  /// Element type: PixelType::kUInt8 or PixelType::kUInt16.
  PixelType dtype() const noexcept;
  /// Bytes of one image: channels * height * width * element size.
  std::size_t image_bytes() const noexcept;

  /// Reads image `index` into `out` (image_bytes() bytes, layout [C,H,W] row-major, native byte
  /// order). Thread-safe; takes no lock. Throws std::out_of_range for a bad index, IoError when
  /// the read fails or comes up short (file truncated since it was opened), FormatError when a
  /// compressed chunk does not inflate to image_bytes().
  void read_image(std::size_t index, void* out) const;
  /// Reads `indices.size()` images one after another into `out` ([B,C,H,W]). Thread-safe.
  void read_images(const std::vector<std::size_t>& indices, void* out) const;
  /// True when the stored bytes of image `index` match its checksum (XXH64 of the image bytes,
  /// `/checksum`). Reading errors (a short read) count as a mismatch.
  bool verify(std::size_t index) const;

  // ---- targets (docs/cache.md, "Targets"; schema version 2) ----------------------------------
  // Every image has a TargetState per kind: kValid (the target is stored; zero boxes or
  // landmarks is a negative image), kInvalid (given but unusable, stored as nothing) or kNone. A
  // cache built without targets, and every schema version 1 cache, has all kNone.

  /// True when the cache holds the /targets tables (it was built with masks, boxes or landmarks).
  bool has_targets() const noexcept;
  /// True when the cache holds /targets/masks.
  bool has_masks() const noexcept;
  /// Reads the label mask of image `index` into `out`: height() * width() uint16 class ids,
  /// layout [H,W] row-major (ids index target_classes(); 0 = background). Thread-safe; takes no
  /// lock, like read_image. An image whose mask_state is not kValid reads as zeros. The values
  /// are not checked against target_classes(). Throws FormatError naming the file when
  /// !has_masks() (a schema version 1 cache, or one built without a mask column),
  /// std::out_of_range for a bad index, IoError and FormatError as read_image.
  void read_mask(std::size_t index, std::uint16_t* out) const;
  /// The mask's state of image `index`. Throws std::out_of_range for a bad index.
  TargetState mask_state(std::size_t index) const;
  /// [N] the masks' states.
  const std::vector<TargetState>& mask_states() const noexcept;
  /// [N] the boxes' states.
  const std::vector<TargetState>& box_states() const noexcept;
  /// [N] the landmarks' states.
  const std::vector<TargetState>& landmark_states() const noexcept;
  /// The boxes of image `index` in output-grid pixel coordinates (continuous: within
  /// [0,width()] x [0,height()], x0 < x1, y0 < y1), labels 1..target_classes().names.size()-1;
  /// empty unless box_states()[index] is kValid (and then possibly empty: a negative image).
  /// Throws FormatError naming the file when !has_targets(), std::out_of_range for a bad index.
  std::vector<Box> boxes(std::size_t index) const;
  /// The landmarks of image `index` (output-grid pixels, labels as boxes); empty unless
  /// landmark_states()[index] is kValid. Throws as boxes().
  std::vector<Landmark> landmarks(std::size_t index) const;
  /// Boxes in the whole cache.
  std::size_t box_count() const noexcept;
  /// Landmarks in the whole cache.
  std::size_t landmark_count() const noexcept;
  /// [N] boxes that preprocessing dropped per image (too little of them inside the crop box);
  /// all 0 without targets.
  const std::vector<std::uint32_t>& boxes_dropped() const noexcept;
  /// [N] landmarks that preprocessing dropped per image (outside the crop box); all 0 without
  /// targets.
  const std::vector<std::uint32_t>& landmarks_dropped() const noexcept;
  /// The target classes (names by class id, 0 = background); no names without targets.
  const TargetClasses& target_classes() const noexcept;

  /// [N] class index per image; -1 = unlabeled (or multi-label: see label_matrix()).
  const std::vector<std::int64_t>& labels() const noexcept;
  /// True when the cache has a `/label_matrix` (some sample has several labels, or some label
  /// whose value is unknown).
  bool multi_label() const noexcept;
  /// [N, K] row-major matrix, K = class_names().size(): 1 = the class is present, 0 = absent,
  /// -1 = unknown (the manifest's `unknown_labels`; every entry of an unlabeled sample). Read from
  /// a uint8 /label_matrix (0/1: fully labeled caches, and caches of older medload) or an int8 one
  /// (-1/0/1). Empty when !multi_label().
  const std::vector<std::int8_t>& label_matrix() const noexcept;
  /// Class names, index = label.
  const std::vector<std::string>& class_names() const noexcept;
  /// [N] patient identifiers ("" when unknown).
  const std::vector<std::string>& patient_ids() const noexcept;
  /// [N] source files, relative to the build's root, as in the build report.
  const std::vector<std::string>& source_paths() const noexcept;
  /// [N] XXH64 of each source file's bytes (16 hex digits).
  const std::vector<std::string>& source_hashes() const noexcept;
  /// [N] site (institution), "" when unknown.
  const std::vector<std::string>& sites() const noexcept;
  /// [N] frame of a multi-frame source (0 for single-frame files).
  const std::vector<std::int32_t>& frame_indices() const noexcept;
  /// [N] stored per-image checksums.
  const std::vector<std::uint64_t>& checksums() const noexcept;
  /// Names of the `/meta` columns, sorted.
  std::vector<std::string> meta_names() const;
  /// The metadata column `name`. Throws FormatError naming the file when there is none, or when
  /// it or its `_imputed` flags are not N values of the right type.
  MetaColumn meta(const std::string& name) const;
  /// Where image `index` came from (original size, crop box, scale, padding).
  Geometry geometry(std::size_t index) const;
  /// The rejected input files of the build. Throws FormatError naming the file and the column
  /// when the /rejected columns differ in length or type.
  std::vector<RejectedFile> rejected() const;

  /// The canonical pipeline config JSON it was built with.
  const std::string& config_json() const noexcept;
  /// Its hash (16 hex digits).
  const std::string& config_hash() const noexcept;
  /// The medload version that built it.
  const std::string& library_version() const noexcept;
  /// The schema version of the file.
  std::int64_t schema_version() const noexcept;
  /// True when the root group has the attribute `name`.
  bool has_attribute(const std::string& name) const;
  /// Root attribute `name` as text (strings as stored, numbers formatted, arrays "[a, b]").
  /// Throws HdfError naming it and the file when missing.
  std::string attribute(const std::string& name) const;
  /// Names of the root attributes, sorted.
  std::vector<std::string> attribute_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Opens the cache at `path` in a forked child process, the way CacheReader does (every table
/// and stored split read and validated), so that a file damaged inside HDF5's own structures,
/// on which libhdf5 itself can crash, hang or allocate gigabytes, costs that child and not the
/// caller. Returns when the child read it all; throws FormatError naming the file and what
/// happened (the validation's message, libhdf5's signal, `limit_seconds` passed, or the child's
/// 4 GiB address-space allowance run out) otherwise. For caches from elsewhere, before opening
/// them; call it while the process has one thread (the medload command does, for every command
/// that reads a cache): a child forked while another thread holds a lock may hang on it.
void check_cache_in_child(const std::string& path, int limit_seconds = 120);

}  // namespace medload::loader
