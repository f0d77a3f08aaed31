#pragma once
// A thin RAII layer over the HDF5 C API, private to medload::loader_cache: the other stages reach
// a cache through its public headers (the split store through medload/loader/cache/split_table.h);
// tests, benchmarks and fuzzers include it with ${PROJECT_SOURCE_DIR}/loader/src/cache among their
// PRIVATE include directories.
//
// - Every hid_t is owned by a move-only handle (File, Group, Dataset, Dataspace, Datatype,
//   Attribute, PropList) that closes it exactly once.
// - Every C call goes through one checked wrapper that throws medload::HdfError naming the action,
//   the object and the file: `Unable to open the dataset "images" in cache.h5 (<HDF5's reason>)`.
// - HDF5's automatic error printing is turned off (per thread: the thread-safe library keeps one
//   error stack per thread), so nothing is printed behind the caller's back.
//
// Debian's libhdf5 1.10.8 is built thread-safe with one global lock: these calls are safe from
// any thread but serialise. The cache reader's hot path avoids them (pread on chunk offsets).

#include <hdf5.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "medload/core/error.h"

namespace medload::loader::h5 {

/// Turns HDF5's automatic error printing off for the calling thread (cheap after the first call).
void silence_errors() noexcept;

/// The innermost messages of HDF5's error stack for the calling thread ("" when empty).
std::string last_error_message();

/// Throws HdfError "Unable to <action> <object> in <file> (<HDF5's reason>)". `loc` (any open
/// id, or H5I_INVALID_HID) supplies the file name when `file` is empty.
[[noreturn]] void fail(const std::string& action, const std::string& object, hid_t loc,
                       const std::string& file = "");

/// The checked wrapper: returns `id` when it is valid (>= 0), else throws through fail().
inline hid_t check(hid_t id, const std::string& action, const std::string& object, hid_t loc,
                   const std::string& file = "") {
  if (id < 0) fail(action, object, loc, file);
  return id;
}
/// The checked wrapper for herr_t / htri_t results: negative throws through fail().
inline herr_t check_status(herr_t status, const std::string& action, const std::string& object, hid_t loc,
                           const std::string& file = "") {
  if (status < 0) fail(action, object, loc, file);
  return status;
}

/// The file an id belongs to, as it was opened ("" when unknown).
std::string file_name(hid_t id);
/// The path of an object inside its file ("/images"), "" when unknown.
std::string object_name(hid_t id);

/// A move-only owner of one hid_t, closed by `Close` (H5Fclose, H5Dclose, ...).
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  /// Takes ownership of `id` (which may be H5I_INVALID_HID).
  explicit Handle(hid_t id) noexcept : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  /// The raw id, for C calls; still owned by this handle.
  hid_t id() const noexcept { return id_; }
  /// True when it holds an id.
  bool valid() const noexcept { return id_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  /// Closes the id now (errors while closing are ignored: nothing can be done about them here).
  void reset() noexcept {
    if (id_ >= 0) Close(id_);
    id_ = H5I_INVALID_HID;
  }
  /// Gives up ownership.
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropList = Handle<H5Pclose>;

struct VariableLengthString;
/// The values of a file's variable-length strings by where they are, as read_variable_length_strings
/// returns them.
using VariableLengthValues = std::map<VariableLengthString, std::vector<std::string>>;

/// An open HDF5 file. `path()` is the name used in error messages.
///
/// A file is trusted (libhdf5 converts its variable-length strings in this process) unless
/// distrust() was called: files medload creates or writes are trusted; a cache from elsewhere is
/// distrusted by schema::CacheFile, the one way every reader opens a cache.
class File {
 public:
  File() = default;
  ~File();
  File(File&& other) noexcept = default;
  File& operator=(File&& other) noexcept;
  /// Opens an existing file, read-only or read-write. Throws HdfError naming the file, also when
  /// `path` is not a regular file (a FIFO would block libhdf5's open forever).
  static File open(const std::string& path, bool read_write = false);
  /// Creates a file (replacing an existing one; a link at `path` is replaced, never followed).
  /// `latest_format` selects the 1.10 file format (fixed-array chunk indexes: O(1) chunk lookups; readable by
  /// HDF5 >= 1.10 and h5py).
  static File create(const std::string& path, bool latest_format = true);

  hid_t id() const noexcept { return handle_.id(); }
  bool valid() const noexcept { return handle_.valid(); }
  const std::string& path() const noexcept { return path_; }
  /// Writes buffered data to the file (H5Fflush). Throws HdfError.
  void flush() const;
  /// Closes the file, reporting an error (a full disk often shows only here). Every object of
  /// the file must be closed first (else HDF5 would only mark the file, and flush it unseen when
  /// the last object goes): throws HdfError when one is open, or when closing fails.
  void close();

  /// Marks the file, until it closes, as one this process must not let libhdf5 convert
  /// variable-length strings of: a damaged global heap crashes libhdf5 inside that conversion in
  /// ways that depend on the process's memory, so a check in another process cannot make it safe.
  /// Every later read of such strings (read_strings and the attribute readers) returns the
  /// values in `checked` (what a checking child read; null = none) and throws FormatError naming
  /// the file and the object for one that is not there; read_rows refuses them.
  void distrust(std::shared_ptr<const VariableLengthValues> checked);

 private:
  // Drops the file from the distrusted ones (before its id is closed or replaced).
  void forget_distrust() noexcept;

  Handle<H5Fclose> handle_;
  std::string path_;
};

// ---- element types --------------------------------------------------------------------------

/// The native HDF5 type of T (not owned: predefined types are never closed).
template <class T>
hid_t native_type();
template <>
inline hid_t native_type<std::int8_t>() {
  return H5T_NATIVE_INT8;
}
template <>
inline hid_t native_type<std::uint8_t>() {
  return H5T_NATIVE_UINT8;
}
template <>
inline hid_t native_type<std::uint16_t>() {
  return H5T_NATIVE_UINT16;
}
template <>
inline hid_t native_type<std::int16_t>() {
  return H5T_NATIVE_INT16;
}
template <>
inline hid_t native_type<std::int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
inline hid_t native_type<std::int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
inline hid_t native_type<std::uint64_t>() {
  return H5T_NATIVE_UINT64;
}
template <>
inline hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
inline hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}

/// A variable-length UTF-8 string type (owned): the memory type for reading such strings.
Datatype string_type();
/// A fixed-length UTF-8 string type of `size` bytes (>= 1), NUL-padded (owned).
Datatype fixed_string_type(std::size_t size);

// ---- links, groups, datasets ---------------------------------------------------------------

/// True when `path` ("a/b/c", relative to `loc` or absolute) names an object; every intermediate
/// link is checked, so a missing parent is false, not an error.
bool exists(hid_t loc, const std::string& path);
/// Opens a group. Throws HdfError naming it and the file.
Group open_group(hid_t loc, const std::string& name);
/// Creates a group (intermediate groups too).
Group create_group(hid_t loc, const std::string& name);
/// Opens the group, creating it first when missing.
Group require_group(hid_t loc, const std::string& name);
/// Names of the direct children of a group, in name order.
std::vector<std::string> list_children(hid_t group);
/// Removes the link `name` (the space is not reclaimed by HDF5 until the file is rewritten).
void remove(hid_t loc, const std::string& name);

/// Opens a dataset. Throws HdfError "Unable to open the dataset "images" in cache.h5".
Dataset open_dataset(hid_t loc, const std::string& name);

/// How a new dataset is stored.
struct DatasetLayout {
  /// Chunk shape (empty = contiguous). Required for `deflate` and for resizable datasets.
  std::vector<hsize_t> chunk;
  /// Deflate (zlib) level 1..9; 0 = none.
  int deflate = 0;
  /// Maximum shape for resizable datasets (empty = the initial shape; H5S_UNLIMITED allowed).
  std::vector<hsize_t> max_dims;
};

/// Creates a dataset of `type` (not owned) and `dims`. Throws HdfError naming it.
Dataset create_dataset(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
                       const DatasetLayout& layout = {});

/// The shape of a dataset (or attribute's) dataspace.
std::vector<hsize_t> shape(const Dataset& dataset);
/// The shape of the dataspace `space`.
std::vector<hsize_t> space_shape(hid_t space);
/// The dataset's element type (owned copy).
Datatype dataset_type(const Dataset& dataset);

/// Writes a whole 1-D (or any-shape, flat row-major) dataset named `name` with `dims`
/// (default: [values.size()]).
template <class T>
void write_vector(hid_t loc, const std::string& name, const std::vector<T>& values,
                  std::vector<hsize_t> dims = {}, const DatasetLayout& layout = {});
/// Reads a whole dataset into a flat row-major vector (converted to T by HDF5).
template <class T>
std::vector<T> read_vector(hid_t loc, const std::string& name);

/// Writes a 1-D dataset of fixed-length UTF-8 strings (as long as the longest value, NUL-padded;
/// chunked and deflated, so the padding costs next to nothing on disk). Fixed length on purpose:
/// variable-length strings live in HDF5's global heap, whose lengths libhdf5 trusts when it
/// reads, so a damaged one crashes or hangs the reader (docs/fuzzing.md, finding 2).
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
/// Reads a 1-D dataset of strings (variable or fixed length; variable-length ones of a
/// distrusted file from its checked values, see File::distrust).
std::vector<std::string> read_strings(hid_t loc, const std::string& name);

/// A dataset or attribute of a file whose type is a variable-length string.
struct VariableLengthString {
  std::string object;     ///< path of the dataset, or of the object holding the attribute ("/a/b")
  std::string attribute;  ///< the attribute's name; empty for a dataset

  bool operator<(const VariableLengthString& other) const {
    return std::tie(object, attribute) < std::tie(other.object, other.attribute);
  }
  bool operator==(const VariableLengthString& other) const {
    return object == other.object && attribute == other.attribute;
  }
};
/// Every variable-length string dataset and attribute in `file`, found from object headers only
/// (nothing in the global heap is read). Caches medload writes now have none; older ones do.
std::vector<VariableLengthString> variable_length_strings(hid_t file);
/// Reads every one of them (what a damaged global heap would crash) with libhdf5's conversion,
/// in this process: the checking child's job (check_cache_in_child), never done to a distrusted
/// file. Returns the values by location.
VariableLengthValues read_variable_length_strings(hid_t file, const std::vector<VariableLengthString>& found);

/// The bytes a checking child sends its parent for `values` (format in h5.cpp: counts and
/// lengths as little-endian integers, each location then its strings).
std::string encode_variable_length_values(const VariableLengthValues& values);
/// Parses encode_variable_length_values's bytes strictly: a truncated, malformed or padded
/// answer, a repeated location or more than kMaxVariableLengthLocations of them throws
/// FormatError "<file> is not a usable medload cache: its checking child's answer ...". Nothing
/// is allocated beyond what `bytes` backs.
VariableLengthValues decode_variable_length_values(std::string_view bytes, const std::string& file);
/// Most variable-length string datasets and attributes a checked file may hold.
inline constexpr std::size_t kMaxVariableLengthLocations = 65536;

/// How many reads of variable-length strings libhdf5 has converted in this process (a test hook:
/// opening and reading a distrusted file leaves it unchanged).
std::uint64_t variable_length_conversions() noexcept;

/// Writes `count` rows starting at row `start` of a dataset whose first dimension is the row;
/// `data` holds count * (product of the other dims) elements of the memory type `type`.
void write_rows(const Dataset& dataset, hsize_t start, hsize_t count, hid_t type, const void* data);
/// Reads `count` rows starting at `start` (see write_rows). A variable-length string `type` of a
/// distrusted file (File::distrust) throws FormatError: such rows are read with read_strings.
void read_rows(const Dataset& dataset, hsize_t start, hsize_t count, hid_t type, void* data);
/// Changes the shape of a resizable (chunked) dataset.
void resize(const Dataset& dataset, const std::vector<hsize_t>& dims);

// ---- attributes ------------------------------------------------------------------------------

/// True when the object `loc` has the attribute `name`.
bool has_attribute(hid_t loc, const std::string& name);
/// Names of the attributes of `loc`, in name order.
std::vector<std::string> list_attributes(hid_t loc);
/// Writes (replacing) a scalar string attribute (fixed-length UTF-8, see write_strings).
void write_attribute(hid_t loc, const std::string& name, const std::string& value);
inline void write_attribute(hid_t loc, const std::string& name, const char* value) {
  write_attribute(loc, name, std::string(value));
}
/// Writes (replacing) a scalar int64 attribute.
void write_attribute(hid_t loc, const std::string& name, std::int64_t value);
/// Writes (replacing) a scalar float64 attribute.
void write_attribute(hid_t loc, const std::string& name, double value);
/// Writes (replacing) a 1-D float64 attribute (e.g. per-channel mean/std).
void write_attribute(hid_t loc, const std::string& name, const std::vector<double>& values);
/// Reads a string attribute (variable or fixed length). Throws HdfError when missing or not a string.
std::string read_string_attribute(hid_t loc, const std::string& name);
/// Reads a scalar integer attribute (converted). Throws HdfError when missing.
std::int64_t read_int_attribute(hid_t loc, const std::string& name);
/// Reads a float attribute's values (a scalar gives one value). Throws HdfError when missing.
std::vector<double> read_double_attribute(hid_t loc, const std::string& name);
/// True when the attribute's type is a string.
bool attribute_is_string(hid_t loc, const std::string& name);
/// The attribute as text: strings as they are, scalar numbers formatted, arrays (even of one
/// element) as "[a, b]".
std::string attribute_as_text(hid_t loc, const std::string& name);

// ---- template definitions --------------------------------------------------------------------

template <class T>
void write_vector(hid_t loc, const std::string& name, const std::vector<T>& values, std::vector<hsize_t> dims,
                  const DatasetLayout& layout) {
  if (dims.empty()) dims = {static_cast<hsize_t>(values.size())};
  Dataset dataset = create_dataset(loc, name, native_type<T>(), dims, layout);
  if (values.empty()) return;
  check_status(H5Dwrite(dataset.id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
               "write", "the dataset \"" + name + "\"", loc);
}

template <class T>
std::vector<T> read_vector(hid_t loc, const std::string& name) {
  Dataset dataset = open_dataset(loc, name);
  hsize_t total = 1;
  for (hsize_t d : shape(dataset)) total *= d;
  std::vector<T> values(static_cast<std::size_t>(total));
  if (total == 0) return values;
  check_status(H5Dread(dataset.id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "read",
               "the dataset \"" + name + "\"", loc);
  return values;
}

// ---- self-containment ------------------------------------------------------------------------

/// Why `file` is not one self-contained file, or nullopt when it is: every link in it, reached
/// from the root through hard links only, is a hard link, and every dataset stores its data
/// inside the file (contiguous, chunked or compact). Otherwise the first offender in name order,
/// described without opening anything outside the file: "/labels is an external link (to
/// x.h5:/labels)", "/checksum is a soft link (to /pixel_hash)", "/x is a user-defined link (type
/// 99)", "/labels keeps its data in an external file (/etc/shadow)", "/images is a virtual
/// dataset (its data is mapped from y.h5)". Names and file names from the file are shown as valid
/// UTF-8 with control characters as '?', at most 200 bytes each. Opens every dataset (libhdf5
/// 1.10.8 opens neither a virtual dataset's sources nor external storage files when it opens
/// one; it does when it reads one). Throws HdfError when a link or object cannot be read.
std::optional<std::string> first_foreign_object(hid_t file);

}  // namespace medload::loader::h5
