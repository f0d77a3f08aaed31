#include "schema.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "medload/core/regular_file.h"
#include "medload/core/version.h"

namespace medload::loader::detail {

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool TargetColumns::any() const noexcept {
  const auto given = [](const std::vector<std::uint8_t>& states) {
    return std::any_of(states.begin(), states.end(), [](std::uint8_t state) { return state != 0; });
  };
  return given(mask_states) || given(box_states) || given(landmark_states);
}

namespace {

std::uint32_t clamp_count(std::size_t count) {
  return static_cast<std::uint32_t>(std::min<std::size_t>(count, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

void append_targets(TargetColumns& columns, const FrameTargets& targets) {
  if (columns.box_offsets.empty()) columns.box_offsets.push_back(0);
  if (columns.landmark_offsets.empty()) columns.landmark_offsets.push_back(0);
  columns.mask_states.push_back(static_cast<std::uint8_t>(targets.mask_state));
  columns.box_states.push_back(static_cast<std::uint8_t>(targets.boxes_state));
  columns.landmark_states.push_back(static_cast<std::uint8_t>(targets.landmarks_state));
  if (targets.boxes_state == TargetState::kValid) {
    for (const Box& box : targets.boxes) {
      columns.boxes.insert(columns.boxes.end(), {box.x0, box.y0, box.x1, box.y1});
      columns.box_labels.push_back(box.label);
    }
  }
  if (targets.landmarks_state == TargetState::kValid) {
    for (const Landmark& point : targets.landmarks) {
      columns.landmarks.insert(columns.landmarks.end(), {point.x, point.y});
      columns.landmark_labels.push_back(point.label);
    }
  }
  columns.box_offsets.push_back(columns.box_labels.size());
  columns.landmark_offsets.push_back(columns.landmark_labels.size());
  columns.boxes_dropped.push_back(clamp_count(targets.boxes_dropped));
  columns.landmarks_dropped.push_back(clamp_count(targets.landmarks_dropped));
}

}  // namespace medload::loader::detail

namespace medload::loader::schema {

namespace {

std::string str(std::uint64_t v) { return std::to_string(v); }

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text = "(";
  for (std::size_t k = 0; k < dims.size(); ++k) text += (k ? ", " : "") + str(dims[k]);
  return text + (dims.size() == 1 ? ",)" : ")");
}

std::string shape_text(const std::vector<std::uint64_t>& dims) {
  return shape_text(std::vector<hsize_t>(dims.begin(), dims.end()));
}

// a * b, or fail() when it does not fit in 64 bits.
std::uint64_t checked_product(const CacheFile& file, const std::string& what, std::uint64_t a,
                              std::uint64_t b) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) file.fail(what + " declares more than 2^64 bytes");
  return product;
}

h5::Dataset open(const CacheFile& file, const std::string& name) {
  if (!h5::exists(file.id(), name)) file.fail("it has no /" + name + " dataset");
  return h5::open_dataset(file.id(), name);
}

// Refuses a dataset whose storage cannot hold `elements` values of its file type: what a header
// claims is never allocated unless the file has the bytes behind it (a chunked, compressed
// dataset may inflate up to kMaxInflation times).
void require_backed(const CacheFile& file, const h5::Dataset& dataset, const std::string& name,
                    std::uint64_t elements) {
  if (elements == 0) return;
  const h5::Datatype type = h5::dataset_type(dataset);
  const std::uint64_t need = checked_product(file, "/" + name, elements, H5Tget_size(type.id()));
  const std::uint64_t stored = H5Dget_storage_size(dataset.id());
  h5::PropList create(h5::check(H5Dget_create_plist(dataset.id()), "read the layout of",
                                "the dataset \"" + name + "\"", H5I_INVALID_HID, file.path()));
  const bool chunked = H5Pget_layout(create.id()) == H5D_CHUNKED;
  const std::uint64_t can_hold =
      chunked ? (stored > ~std::uint64_t{0} / kMaxInflation ? ~std::uint64_t{0} : stored * kMaxInflation)
              : stored;
  if (can_hold < need) {
    file.fail("/" + name + " declares " + str(elements) + " entries (" + str(need) + " bytes) but stores " +
              str(stored) + " bytes");
  }
}

// The shape of `name`, which must be `expected`.
void require_shape(const CacheFile& file, const h5::Dataset& dataset, const std::string& name,
                   const std::vector<std::uint64_t>& expected) {
  const std::vector<hsize_t> dims = h5::shape(dataset);
  if (dims.size() == 1 && expected.size() == 1 && dims[0] != expected[0]) {
    file.fail("/" + name + " has " + str(dims[0]) + " entries for " + str(expected[0]) + " images");
  }
  if (!std::equal(dims.begin(), dims.end(), expected.begin(), expected.end())) {
    file.fail("/" + name + " has shape " + shape_text(dims) + ", not " + shape_text(expected));
  }
}

H5T_class_t type_class(const h5::Dataset& dataset) {
  const h5::Datatype type = h5::dataset_type(dataset);
  return H5Tget_class(type.id());
}

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integers";
    case H5T_FLOAT:
      return "floats";
    case H5T_STRING:
      return "strings";
    case H5T_COMPOUND:
      return "compound values";
    case H5T_ENUM:
      return "enum values";
    default:
      return "values of another type";
  }
}

// An attribute of `loc` (at `where`, for messages), opened; its element count must be 1..max.
h5::Attribute open_attribute(const CacheFile& file, hid_t loc, const std::string& where,
                             const std::string& name, H5T_class_t want, std::size_t max_values,
                             std::size_t* values) {
  h5::Attribute attribute(
      h5::check(H5Aopen(loc, name.c_str(), H5P_DEFAULT), "open", "the attribute \"" + name + "\"", loc));
  h5::Datatype type(
      h5::check(H5Aget_type(attribute.id()), "read the type of", "the attribute \"" + name + "\"", loc));
  const H5T_class_t have = H5Tget_class(type.id());
  const bool number_ok = want == H5T_FLOAT && have == H5T_INTEGER;
  if (have != want && !number_ok) {
    file.fail("the attribute " + where + name + " holds " + class_name(have) + ", not " + class_name(want));
  }
  h5::Dataspace space(H5Aget_space(attribute.id()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id());
  if (n < 1 || static_cast<std::uint64_t>(n) > max_values) {
    file.fail("the attribute " + where + name + " holds " + std::to_string(n) + " values, not 1" +
              (max_values > 1 ? ".." + str(max_values) : ""));
  }
  *values = static_cast<std::size_t>(n);
  return attribute;
}

// An integer attribute in [lo, hi]; `fallback` when absent.
std::int64_t int_attribute(const CacheFile& file, hid_t loc, const std::string& where,
                           const std::string& name, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  if (!h5::has_attribute(loc, name)) return fallback;
  std::size_t count = 0;
  const h5::Attribute attribute = open_attribute(file, loc, where, name, H5T_INTEGER, 1, &count);
  std::int64_t value = 0;
  h5::check_status(H5Aread(attribute.id(), H5T_NATIVE_INT64, &value), "read",
                   "the attribute \"" + name + "\"", loc);
  if (value < lo || value > hi) {
    file.fail("the attribute " + where + name + " is " + std::to_string(value) + " (" + std::to_string(lo) +
              ".." + std::to_string(hi) + " expected)");
  }
  return value;
}

std::vector<double> double_attribute(const CacheFile& file, hid_t loc, const std::string& where,
                                     const std::string& name, std::size_t max_values) {
  std::size_t count = 0;
  const h5::Attribute attribute = open_attribute(file, loc, where, name, H5T_FLOAT, max_values, &count);
  std::vector<double> values(count);
  h5::check_status(H5Aread(attribute.id(), H5T_NATIVE_DOUBLE, values.data()), "read",
                   "the attribute \"" + name + "\"", loc);
  return values;
}

std::string text_attribute(const CacheFile& file, hid_t loc, const std::string& where,
                           const std::string& name, const std::string& fallback) {
  if (!h5::has_attribute(loc, name)) return fallback;
  std::size_t count = 0;
  open_attribute(file, loc, where, name, H5T_STRING, 1, &count);
  return h5::read_string_attribute(loc, name);
}

template <class T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

}  // namespace

// ---- the file ----------------------------------------------------------------------------------

CacheFile::CacheFile(const std::string& path) : path_(path) {
  {
    // HDF5's open of a FIFO waits for a writer forever, and a device or a folder is no cache.
    const core::FileDescriptor fd = core::open_regular_file(path, "the cache");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
      throw IoError("cannot read the cache " + path + ": " + std::strerror(errno));
    size_bytes_ = static_cast<std::uint64_t>(st.st_size);
  }
  h5::silence_errors();
  try {
    file_ = h5::File::open(path);
  } catch (const HdfError& e) {
    // HDF5 refuses truncated files at open ("truncated file: eof = ..."); say so in our terms.
    fail(std::string("HDF5 cannot open it (truncated or not HDF5): ") + e.what());
  }
  // Before any object is opened by path (contain_variable_length_strings opens them all): a soft
  // or external link, external storage or a virtual dataset would make the reads below follow
  // the file's word to other objects or files (/etc/shadow read as a table; a FIFO that blocks).
  std::optional<std::string> foreign;
  try {
    foreign = h5::first_foreign_object(file_.id());
  } catch (const HdfError& e) {
    fail(std::string("HDF5 cannot list its objects (damaged object headers): ") + e.what());
  }
  if (foreign) {
    fail(*foreign +
         "; a medload cache is one self-contained file (hard links only, every dataset stored in it) "
         "and medload reads nothing outside it");
  }
  try {
    contain_variable_length_strings(path, file_);
  } catch (const HdfError& e) {
    fail(std::string("HDF5 cannot list its objects (damaged object headers): ") + e.what());
  }
}

void CacheFile::fail(const std::string& what) const {
  throw FormatError(path_ + " is not a usable medload cache: " + what);
}

// ---- root attributes -------------------------------------------------------------------------

std::int64_t read_schema_version(const CacheFile& file) {
  if (!h5::has_attribute(file.id(), kSchemaVersion)) {
    file.fail(std::string("it has no ") + kSchemaVersion + " attribute");
  }
  const std::int64_t version =
      int_attribute(file, file.id(), "", kSchemaVersion, 0, std::numeric_limits<std::int64_t>::min(),
                    std::numeric_limits<std::int64_t>::max());
  if (version > kCacheSchemaVersion) {
    file.fail("its schema_version is " + std::to_string(version) + ", newer than " +
              std::to_string(kCacheSchemaVersion) + ", the newest this medload reads; use a newer medload");
  }
  if (version < 1)
    file.fail("its schema_version is " + std::to_string(version) + " (1.." +
              std::to_string(kCacheSchemaVersion) + " expected)");
  return version;
}

std::vector<std::string> read_class_names(const CacheFile& file) {
  const std::string text = text_attribute(file, file.id(), "", kClassNames, "[]");
  const std::string not_names = "its class_names attribute is not a JSON array of strings: ";
  std::string why;
  const nlohmann::json parsed = core::parse_json(text, &why);
  if (parsed.is_discarded()) file.fail(not_names + why);
  std::vector<std::string> names;
  try {
    names = parsed.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    file.fail(not_names + e.what());
  }
  if (names.size() > kMaxClasses) {
    file.fail("its class_names attribute names " + str(names.size()) + " classes (at most " +
              str(kMaxClasses) + " expected)");
  }
  return names;
}

std::string read_text_attribute(const CacheFile& file, const std::string& name, const std::string& fallback) {
  return text_attribute(file, file.id(), "", name, fallback);
}

PrivacyRecord read_privacy(const CacheFile& file) {
  const std::string text = text_attribute(file, file.id(), "", kPrivacy, "");
  if (text.empty()) return PrivacyRecord{};
  const auto j = core::parse_json(text);
  return PrivacyRecord::from_json(j, file.path() + " is not a usable medload cache: its privacy attribute");
}

ShardInfo read_shard_info(const CacheFile& file) {
  const hid_t f = file.id();
  ShardInfo info;
  info.count = int_attribute(file, f, "", kShardCount, 1, 1, kMaxShards);
  info.index = int_attribute(file, f, "", kShardIndex, 0, 0, info.count - 1);
  info.sources = int_attribute(file, f, "", kCountSources, 0, 0, kMaxSources);
  info.ok_files = int_attribute(file, f, "", kCountOkFiles, 0, 0, kMaxSources);
  info.sources_total = int_attribute(file, f, "", kSourcesTotal, info.sources, 0, kMaxSources);
  return info;
}

BuildRecord read_build_record(const CacheFile& file) {
  BuildRecord record;
  record.shard = read_shard_info(file);
  record.missing_labels = read_text_attribute(file, kMissingLabels, record.missing_labels);
  record.impute = read_text_attribute(file, kImpute, record.impute);
  record.privacy = read_privacy(file);
  return record;
}

namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// Whether a label matrix holds an unknown entry: what makes it int8 (write_label_matrix) and the
// cache schema version 3 (schema_version_for), which must agree.
bool holds_unknown(const std::vector<std::int8_t>& matrix) {
  return std::find(matrix.begin(), matrix.end(), std::int8_t{-1}) != matrix.end();
}

}  // namespace

std::int64_t schema_version_for(const detail::CacheColumns& columns) {
  const bool unknown = columns.multi_label && holds_unknown(columns.label_matrix);
  return unknown ? kUnknownLabelsSchemaVersion : kTargetsSchemaVersion;
}

void write_root_attributes(hid_t file, std::int64_t schema_version,
                           const std::vector<std::string>& class_names, const std::string& config_json,
                           const std::string& config_hash, std::size_t images, std::size_t rejected) {
  h5::write_attribute(file, kSchemaVersion, schema_version);
  h5::write_attribute(file, kLibraryVersion, std::string(kVersion));
  h5::write_attribute(file, kConfig, config_json);
  h5::write_attribute(file, kConfigHash, config_hash);
  h5::write_attribute(file, kClassNames, detail::json_text(class_names));
  h5::write_attribute(file, kCountImages, static_cast<std::int64_t>(images));
  h5::write_attribute(file, kCountRejected, static_cast<std::int64_t>(rejected));
  h5::write_attribute(file, kBuildTime, utc_now());
}

// In name order, as medload has always written them (files stay alike byte for byte).
void write_build_record(hid_t file, const BuildRecord& record) {
  h5::write_attribute(file, kCountOkFiles, record.shard.ok_files);
  h5::write_attribute(file, kCountSources, record.shard.sources);
  h5::write_attribute(file, kImpute, record.impute);
  if (!record.merged_from.empty())
    h5::write_attribute(file, kMergedFrom, detail::json_text(record.merged_from));
  h5::write_attribute(file, kMissingLabels, record.missing_labels);
  h5::write_attribute(file, kMultiLabel, std::int64_t{record.multi_label ? 1 : 0});
  if (record.privacy.recorded)
    h5::write_attribute(file, kPrivacy, detail::json_text(record.privacy.to_json()));
  h5::write_attribute(file, kShardCount, record.shard.count);
  h5::write_attribute(file, kShardIndex, record.shard.index);
  h5::write_attribute(file, kSourcesTotal, record.shard.sources_total);
}

void write_json_attributes(hid_t file, const nlohmann::json& attributes) {
  for (const auto& item : attributes.items()) {
    const auto& v = item.value();
    if (v.is_number_integer()) {
      h5::write_attribute(file, item.key(), v.get<std::int64_t>());
    } else if (v.is_number()) {
      h5::write_attribute(file, item.key(), v.get<double>());
    } else if (v.is_string()) {
      h5::write_attribute(file, item.key(), v.get<std::string>());
    } else {
      h5::write_attribute(file, item.key(), detail::json_text(v));
    }
  }
}

// ---- /images -------------------------------------------------------------------------------------

namespace {

// Sets shape.contiguous and shape.contiguous_offset of the per-image dataset `name` (`item`:
// "image" or "mask", for messages), whose count and image_bytes are set: a contiguous dataset
// that was written must hold every item inside the file.
void locate_items(const CacheFile& file, const h5::Dataset& dataset, const std::string& name,
                  const char* item, ImageShape& shape) {
  const std::uint64_t total = checked_product(file, "/" + name, shape.count, shape.image_bytes);
  h5::PropList create(h5::check(H5Dget_create_plist(dataset.id()), "read the layout of",
                                "the dataset \"" + name + "\"", H5I_INVALID_HID, file.path()));
  shape.contiguous = H5Pget_layout(create.id()) == H5D_CONTIGUOUS;
  shape.contiguous_offset = kNotWritten;
  if (!shape.contiguous) return;  // chunks never written read as the fill value
  const haddr_t address = H5Dget_offset(dataset.id());
  if (address == HADDR_UNDEF) {
    H5Eclear2(H5E_DEFAULT);
    return;  // never written: every item reads as zeros (HDF5's fill value)
  }
  std::uint64_t end = 0;
  if (__builtin_add_overflow(static_cast<std::uint64_t>(address), total, &end) || end > file.size_bytes()) {
    const std::uint64_t whole =
        file.size_bytes() > address
            ? (file.size_bytes() - address) / std::max<std::uint64_t>(shape.image_bytes, 1)
            : 0;
    const std::string where = name == kImages ? "" : " of /" + name;
    file.fail("it is truncated: the " + std::string(item) + "s" + where + " end at byte " + str(end) +
              " of a file of " + str(file.size_bytes()) + " (" + item + " " + str(whole) +
              " onwards is missing)");
  }
  shape.contiguous_offset = address;
}

}  // namespace

ImageShape read_image_shape(const CacheFile& file, const h5::Dataset& images) {
  const std::vector<hsize_t> dims = h5::shape(images);
  if (dims.size() != 3 && dims.size() != 4) {
    file.fail("/images has " + str(dims.size()) + " dimensions (3 or 4 expected)");
  }
  ImageShape shape;
  shape.rank = static_cast<int>(dims.size());
  const std::uint64_t channels = dims.size() == 4 ? dims[1] : 1;
  const std::uint64_t height = dims[dims.size() - 2], width = dims[dims.size() - 1];
  if (dims[0] > kMaxImages || (channels != 1 && channels != 3) || height < 1 || height > kMaxSide ||
      width < 1 || width > kMaxSide) {
    file.fail("/images has shape " + shape_text(dims) + "; expected at most " + str(kMaxImages) +
              " images of 1 or 3 channels, sides 1.." + str(kMaxSide));
  }
  shape.count = static_cast<std::size_t>(dims[0]);
  shape.channels = static_cast<int>(channels);
  shape.height = static_cast<int>(height);
  shape.width = static_cast<int>(width);
  {
    const h5::Datatype type = h5::dataset_type(images);
    const std::size_t size = H5Tget_size(type.id());
    if (H5Tget_class(type.id()) != H5T_INTEGER || H5Tget_sign(type.id()) != H5T_SGN_NONE ||
        (size != 1 && size != 2) || (size == 2 && H5Tget_order(type.id()) != H5T_ORDER_LE)) {
      file.fail("/images is not uint8 or little-endian uint16");
    }
    shape.dtype = size == 1 ? PixelType::kUInt8 : PixelType::kUInt16;
  }
  const std::uint64_t image_bytes = channels * height * width * bytes_per_element(shape.dtype);
  if (image_bytes > kMaxImageBytes) {
    file.fail("/images has shape " + shape_text(dims) + ": one image is " + str(image_bytes) +
              " bytes (at most " + str(kMaxImageBytes) + " expected)");
  }
  shape.image_bytes = static_cast<std::size_t>(image_bytes);
  locate_items(file, images, kImages, "image", shape);
  return shape;
}

h5::Dataset create_images(hid_t file, const detail::CacheHeader& header) {
  std::vector<hsize_t> dims{static_cast<hsize_t>(header.count)};
  if (header.channels != 1) dims.push_back(static_cast<hsize_t>(header.channels));
  dims.push_back(static_cast<hsize_t>(header.height));
  dims.push_back(static_cast<hsize_t>(header.width));
  h5::DatasetLayout layout;
  if (header.deflate > 0) {
    layout.chunk = dims;
    layout.chunk[0] = 1;  // one image per chunk: a random read inflates exactly one image
    layout.deflate = header.deflate;
    if (header.count == 0) {
      // HDF5 refuses a chunk dimension larger than a fixed-size zero extent; let it grow instead.
      layout.max_dims = dims;
      layout.max_dims[0] = H5S_UNLIMITED;
    }
  }
  // Uncompressed images are stored contiguously: image i is one byte range at a single offset, so
  // readers locate every image at once (per-chunk lookups cost O(N) each in HDF5 1.10.8).
  return h5::create_dataset(file, kImages, header.dtype == PixelType::kUInt8 ? H5T_STD_U8LE : H5T_STD_U16LE,
                            dims, layout);
}

// ---- per-image tables --------------------------------------------------------------------------

bool has_dataset(const CacheFile& file, const std::string& name) { return h5::exists(file.id(), name); }

template <class T>
std::vector<T> read_array(const CacheFile& file, const std::string& name,
                          const std::vector<std::uint64_t>& dims) {
  const h5::Dataset dataset = open(file, name);
  require_shape(file, dataset, name, dims);
  const H5T_class_t have = type_class(dataset);
  if (have != H5T_INTEGER && !(kIsFloat<T> && have == H5T_FLOAT)) {
    file.fail("/" + name + " holds " + class_name(have) + ", not " + (kIsFloat<T> ? "numbers" : "integers"));
  }
  std::uint64_t elements = 1;
  for (std::uint64_t d : dims) elements = checked_product(file, "/" + name, elements, d);
  require_backed(file, dataset, name, elements);
  checked_product(file, "/" + name, elements, sizeof(T));
  std::vector<T> values(static_cast<std::size_t>(elements));
  if (values.empty()) return values;
  h5::check_status(H5Dread(dataset.id(), h5::native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
                   "read", "the dataset \"" + name + "\"", file.id());
  return values;
}

template std::vector<std::int8_t> read_array(const CacheFile&, const std::string&,
                                             const std::vector<std::uint64_t>&);
template std::vector<std::uint8_t> read_array(const CacheFile&, const std::string&,
                                              const std::vector<std::uint64_t>&);
template std::vector<std::int32_t> read_array(const CacheFile&, const std::string&,
                                              const std::vector<std::uint64_t>&);
template std::vector<std::int64_t> read_array(const CacheFile&, const std::string&,
                                              const std::vector<std::uint64_t>&);
template std::vector<std::uint64_t> read_array(const CacheFile&, const std::string&,
                                               const std::vector<std::uint64_t>&);
template std::vector<double> read_array(const CacheFile&, const std::string&,
                                        const std::vector<std::uint64_t>&);

std::vector<std::string> read_text_column(const CacheFile& file, const std::string& name, std::size_t n) {
  const h5::Dataset dataset = open(file, name);
  require_shape(file, dataset, name, {static_cast<std::uint64_t>(n)});
  const H5T_class_t have = type_class(dataset);
  if (have != H5T_STRING) file.fail("/" + name + " holds " + class_name(have) + ", not strings");
  require_backed(file, dataset, name, n);
  return h5::read_strings(file.id(), name);
}

std::vector<std::int64_t> read_labels(const CacheFile& file, std::size_t n, std::size_t classes) {
  std::vector<std::int64_t> labels = read_column<std::int64_t>(file, kLabels, n);
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < -1 || labels[i] >= static_cast<std::int64_t>(classes)) {
      file.fail("/labels holds " + std::to_string(labels[i]) + " for image " + str(i) + " (-1.." +
                std::to_string(static_cast<std::int64_t>(classes) - 1) + " expected)");
    }
  }
  return labels;
}

namespace {

// "image 3, class 1" for entry `i` of a row-major [N, classes] matrix.
std::string matrix_entry(std::size_t i, std::size_t classes) {
  const std::size_t k = std::max<std::size_t>(classes, 1);
  return "image " + str(i / k) + ", class " + str(i % k);
}

// The file type of the integer dataset `name`: signed or not, and its size in bytes.
struct IntegerType {
  bool is_signed = false;
  std::size_t size = 0;
};

IntegerType integer_type(const CacheFile& file, const std::string& name) {
  const h5::Dataset dataset = open(file, name);
  const h5::Datatype type = h5::dataset_type(dataset);
  return {H5Tget_class(type.id()) == H5T_INTEGER && H5Tget_sign(type.id()) == H5T_SGN_2,
          H5Tget_size(type.id())};
}

// /label_matrix read as T, each value checked: -1, 0 or 1 in signed storage, 0 or 1 in unsigned.
template <class T>
std::vector<std::int8_t> checked_label_values(const CacheFile& file, std::size_t n, std::size_t classes,
                                              bool is_signed) {
  const std::vector<T> stored = read_array<T>(file, kLabelMatrix, {n, classes});
  const std::int64_t lowest = is_signed ? -1 : 0;
  std::vector<std::int8_t> matrix(stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const auto value = static_cast<std::int64_t>(stored[i]);
    if (value < lowest || value > 1) {
      file.fail("/label_matrix holds " + std::to_string(value) + " at " + matrix_entry(i, classes) +
                (is_signed ? " (signed: -1 = unknown, 0 or 1 expected)" : " (unsigned: 0 or 1 expected)"));
    }
    matrix[i] = static_cast<std::int8_t>(value);
  }
  return matrix;
}

}  // namespace

std::vector<std::int8_t> read_label_matrix(const CacheFile& file, std::size_t n, std::size_t classes) {
  const IntegerType type = integer_type(file, kLabelMatrix);
  // Bytes as they are (what medload writes); wider integers (another tool's) through int64, so
  // that no value wraps into range (257 into 1) before it is checked.
  if (type.size > 1) return checked_label_values<std::int64_t>(file, n, classes, type.is_signed);
  if (type.is_signed) return checked_label_values<std::int8_t>(file, n, classes, true);
  return checked_label_values<std::uint8_t>(file, n, classes, false);
}

namespace {

// Throws FormatError unless the column `name` about to be written to `file` has `n` entries.
void require_length(hid_t file, const std::string& name, std::size_t size, std::size_t n) {
  if (size == n) return;
  throw FormatError("cannot write " + h5::file_name(file) + ": column " + name + " has " +
                    std::to_string(size) + " entries for " + std::to_string(n) + " images");
}

}  // namespace

void write_labels(hid_t file, const std::vector<std::int64_t>& labels) {
  h5::write_vector(file, kLabels, labels);
}

void write_label_matrix(hid_t file, const std::vector<std::int8_t>& matrix, std::size_t n,
                        std::size_t classes) {
  if (matrix.size() != n * classes) {
    throw FormatError("cannot write " + h5::file_name(file) + ": column " + kLabelMatrix + " has " +
                      std::to_string(matrix.size()) + " values for " + std::to_string(n) + " images x " +
                      std::to_string(classes) + " classes");
  }
  const auto bad = std::find_if(matrix.begin(), matrix.end(), [](std::int8_t v) { return v < -1 || v > 1; });
  if (bad != matrix.end()) {
    throw FormatError("cannot write " + h5::file_name(file) + ": column " + kLabelMatrix + " holds " +
                      std::to_string(*bad) + " (-1, 0 or 1 expected)");
  }
  const std::vector<hsize_t> dims{static_cast<hsize_t>(n), static_cast<hsize_t>(classes)};
  // uint8 0/1 when nothing is unknown, so that fully labeled caches stay readable by older medload.
  if (!holds_unknown(matrix)) {
    h5::write_vector(file, kLabelMatrix, std::vector<std::uint8_t>(matrix.begin(), matrix.end()), dims);
  } else {
    h5::write_vector(file, kLabelMatrix, matrix, dims);
  }
}

void write_columns(hid_t file, const detail::CacheColumns& columns, std::size_t n, std::size_t classes) {
  require_length(file, kLabels, columns.labels.size(), n);
  require_length(file, kPatientId, columns.patient_ids.size(), n);
  require_length(file, kSourcePath, columns.source_paths.size(), n);
  require_length(file, kSourceHash, columns.source_hashes.size(), n);
  require_length(file, kSite, columns.sites.size(), n);
  require_length(file, kFrameIndex, columns.frame_indices.size(), n);
  require_length(file, kSourceIndex, columns.source_indices.size(), n);
  require_length(file, kPixelHash, columns.pixel_hashes.size(), n);
  require_length(file, kChecksum, columns.checksums.size(), n);
  require_length(file, kGeometry, columns.geometry.size(), n);

  write_labels(file, columns.labels);
  if (columns.multi_label) write_label_matrix(file, columns.label_matrix, n, classes);
  h5::write_strings(file, kPatientId, columns.patient_ids);
  h5::write_strings(file, kSourcePath, columns.source_paths);
  h5::write_strings(file, kSourceHash, columns.source_hashes);
  h5::write_strings(file, kSite, columns.sites);
  h5::write_vector(file, kFrameIndex, columns.frame_indices);
  h5::write_vector(file, kSourceIndex, columns.source_indices);
  h5::write_vector(file, kPixelHash, columns.pixel_hashes);
  h5::write_vector(file, kChecksum, columns.checksums);
  write_geometry(file, columns.geometry);
  h5::create_group(file, kMeta);
  for (const MetaColumn& column : columns.meta) write_meta(file, column, n);
}

std::vector<std::int64_t> read_source_indices(const CacheFile& file, std::size_t n) {
  if (!h5::exists(file.id(), kSourceIndex)) return std::vector<std::int64_t>(n, 0);
  std::vector<std::int64_t> indices = read_column<std::int64_t>(file, kSourceIndex, n);
  for (std::size_t i = 0; i < n; ++i) {
    if (indices[i] < 0 || indices[i] > kMaxSources) {
      file.fail("/source_index holds " + std::to_string(indices[i]) + " for image " + str(i) + " (0.." +
                std::to_string(kMaxSources) + " expected)");
    }
  }
  return indices;
}

std::vector<std::uint64_t> read_pixel_hashes(const CacheFile& file, std::size_t n, bool required) {
  if (!required && !h5::exists(file.id(), kPixelHash)) return std::vector<std::uint64_t>(n, 0);
  return read_column<std::uint64_t>(file, kPixelHash, n);
}

std::vector<std::string> meta_names(const CacheFile& file) {
  std::vector<std::string> names;
  if (!h5::exists(file.id(), kMeta)) return names;
  const h5::Group group = h5::open_group(file.id(), kMeta);
  const std::string suffix = kImputedSuffix;
  for (const std::string& name : h5::list_children(group.id())) {
    const bool flag =
        name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!flag) names.push_back(name);
  }
  return names;
}

MetaColumn read_meta(const CacheFile& file, const std::string& name, std::size_t n) {
  const std::string path = std::string(kMeta) + "/" + name;
  if (!h5::exists(file.id(), path)) {
    throw FormatError("the cache " + file.path() + " has no metadata column \"" + name + "\" (/" + path +
                      ")");
  }
  MetaColumn column;
  column.name = name;
  column.numeric = type_class(h5::open_dataset(file.id(), path)) != H5T_STRING;
  if (column.numeric) {
    column.values = read_column<double>(file, path, n);
  } else {
    column.text = read_text_column(file, path, n);
  }
  const std::string flags = path + kImputedSuffix;
  if (h5::exists(file.id(), flags)) {
    column.imputed = read_column<std::uint8_t>(file, flags, n);
    for (std::size_t i = 0; i < n; ++i) {
      if (column.imputed[i] > 1) {
        file.fail("/" + flags + " holds " + str(column.imputed[i]) + " for image " + str(i) +
                  " (0 or 1 expected)");
      }
    }
  } else {
    column.imputed.assign(n, 0);
  }
  return column;
}

void write_meta(hid_t file, const MetaColumn& column, std::size_t n) {
  const std::string path = std::string(kMeta) + "/" + column.name;
  require_length(file, column.name, column.numeric ? column.values.size() : column.text.size(), n);
  require_length(file, column.name, column.imputed.size(), n);
  if (column.numeric) {
    h5::write_vector(file, path, column.values);
  } else {
    h5::write_strings(file, path, column.text);
  }
  h5::write_vector(file, path + kImputedSuffix, column.imputed);
}

namespace {

std::string geometry_path(const char* column) { return std::string(kGeometry) + "/" + column; }

}  // namespace

Geometry GeometryColumns::at(std::size_t index) const {
  Geometry g;
  for (int k = 0; k < 10; ++k) {
    if (!ints[k].empty()) g.*kGeometryIntFields[k] = ints[k][index];
  }
  if (!scale.empty()) g.scale = scale[index];
  return g;
}

GeometryColumns read_geometry(const CacheFile& file, std::size_t n) {
  GeometryColumns columns;
  for (int k = 0; k < 10; ++k) {
    const std::string name = geometry_path(kGeometryInt[k]);
    if (has_dataset(file, name)) columns.ints[k] = read_column<std::int32_t>(file, name, n);
  }
  if (has_dataset(file, kGeometryScale)) columns.scale = read_column<double>(file, kGeometryScale, n);
  return columns;
}

void write_geometry(hid_t file, const std::vector<Geometry>& geometry) {
  const std::size_t n = geometry.size();
  for (int k = 0; k < 10; ++k) {
    std::vector<std::int32_t> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = geometry[i].*kGeometryIntFields[k];
    h5::write_vector(file, geometry_path(kGeometryInt[k]), values);
  }
  std::vector<double> scale(n);
  for (std::size_t i = 0; i < n; ++i) scale[i] = geometry[i].scale;
  h5::write_vector(file, kGeometryScale, scale);
}

std::vector<detail::RejectedRecord> read_rejected(const CacheFile& file) {
  std::vector<detail::RejectedRecord> records;
  const std::string group = kRejected;
  if (!h5::exists(file.id(), group)) return records;
  // The length M is the path column's; every other column must match it.
  const std::string path_name = group + "/" + kRejectedPath;
  const h5::Dataset paths = open(file, path_name);
  const std::vector<hsize_t> dims = h5::shape(paths);
  if (dims.size() != 1)
    file.fail("/" + path_name + " has shape " + shape_text(dims) + ", not one-dimensional");
  const std::size_t m = static_cast<std::size_t>(dims[0]);
  auto column_length_error = [&](const std::string& name) {
    const std::vector<hsize_t> other = h5::shape(h5::open_dataset(file.id(), group + "/" + name));
    file.fail("/" + group + "/" + name + " has shape " + shape_text(other) + " but /" + path_name + " has " +
              str(m) + " entries (one per rejected file expected)");
  };
  auto text = [&](const std::string& name, bool required, const std::string& fallback) {
    const std::string full = group + "/" + name;
    if (!h5::exists(file.id(), full)) {
      if (required) file.fail("it has no /" + full + " dataset");
      return std::vector<std::string>(m, fallback);
    }
    if (h5::shape(h5::open_dataset(file.id(), full)) != std::vector<hsize_t>{m}) column_length_error(name);
    return read_text_column(file, full, m);
  };
  const std::vector<std::string> path_values = read_text_column(file, path_name, m);
  const std::vector<std::string> reasons = text(kRejectedReason, true, "");
  const std::vector<std::string> details = text(kRejectedDetail, true, "");
  const std::vector<std::string> hashes = text(kRejectedSourceHash, false, "");
  const std::vector<std::string> outcomes = text(kRejectedOutcome, false, "");
  const std::string index_name = group + "/" + kRejectedSourceIndex;
  std::vector<std::int64_t> indices(m, 0);
  if (h5::exists(file.id(), index_name)) {
    if (h5::shape(h5::open_dataset(file.id(), index_name)) != std::vector<hsize_t>{m}) {
      column_length_error(kRejectedSourceIndex);
    }
    indices = read_column<std::int64_t>(file, index_name, m);
  }
  records.reserve(m);
  for (std::size_t i = 0; i < m; ++i) {
    if (indices[i] < 0 || indices[i] > kMaxSources) {
      file.fail("/" + index_name + " holds " + std::to_string(indices[i]) + " for entry " + str(i) + " (0.." +
                std::to_string(kMaxSources) + " expected)");
    }
    records.push_back({indices[i], path_values[i], reasons[i], details[i], hashes[i], outcomes[i]});
  }
  return records;
}

void write_rejected(hid_t file, const std::vector<detail::RejectedRecord>& records) {
  const h5::Group group = h5::create_group(file, kRejected);
  std::vector<std::string> paths, reasons, details, hashes, outcomes;
  std::vector<std::int64_t> indices;
  for (const detail::RejectedRecord& r : records) {
    paths.push_back(r.path);
    reasons.push_back(r.reason);
    details.push_back(r.detail);
    hashes.push_back(r.source_hash);
    outcomes.push_back(r.outcome);
    indices.push_back(r.source_index);
  }
  const hid_t g = group.id();
  h5::write_strings(g, kRejectedPath, paths);
  h5::write_strings(g, kRejectedReason, reasons);
  h5::write_strings(g, kRejectedDetail, details);
  h5::write_strings(g, kRejectedSourceHash, hashes);
  h5::write_strings(g, kRejectedOutcome, outcomes);
  h5::write_vector(g, kRejectedSourceIndex, indices);
}

// ---- /splits -----------------------------------------------------------------------------------

std::vector<std::string> split_names(const CacheFile& file) {
  std::vector<std::string> names;
  if (!h5::exists(file.id(), kSplits)) return names;
  const h5::Group splits = h5::open_group(file.id(), kSplits);
  for (const std::string& name : h5::list_children(splits.id())) {
    if (!name.empty() && name[0] != '.') names.push_back(name);
  }
  return names;
}

namespace {

// Fails unless the split group `g` (at `path`) has every attribute of `names`.
void require_attributes(const CacheFile& file, hid_t g, const std::string& path,
                        std::initializer_list<const char*> names) {
  for (const char* attribute : names) {
    if (!h5::has_attribute(g, attribute))
      file.fail("the split " + path + " has no attribute \"" + attribute + "\"");
  }
}

// `values` (the split attribute `where` + `attribute`): `count` finite values, > 0 when `positive`.
void check_statistics(const CacheFile& file, const std::string& where, const char* attribute,
                      const std::vector<double>& values, std::size_t count, bool positive) {
  if (values.size() != count) {
    file.fail("the attribute " + where + attribute + " holds " + str(values.size()) + " values (" +
              str(count) + " expected: one per training set)");
  }
  for (const double v : values) {
    if (std::isfinite(v) && (!positive || v > 0)) continue;
    std::ostringstream text;
    text << v;
    file.fail("the attribute " + where + attribute + " holds " + text.str() + " (a finite number" +
              (positive ? " > 0" : "") + " expected)");
  }
}

// The split's `part` dataset: `n` entries (kStoredLength: as stored), each lowest..parts-1.
std::vector<std::int8_t> read_parts(const CacheFile& file, const std::string& name, std::size_t n, int lowest,
                                    std::size_t parts) {
  if (n == kStoredLength) {
    const std::vector<hsize_t> dims = h5::shape(open(file, name));
    if (dims.size() != 1 || dims[0] > kMaxImages) {
      file.fail("/" + name + " has shape " + shape_text(dims) + " (one entry per image expected)");
    }
    n = static_cast<std::size_t>(dims[0]);
  }
  std::vector<std::int8_t> part = read_column<std::int8_t>(file, name, n);
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] < lowest || part[i] >= static_cast<int>(parts)) {
      file.fail("/" + name + " holds " + std::to_string(part[i]) + " for image " + str(i) + " (" +
                std::to_string(lowest) + ".." + str(parts - 1) + " expected)");
    }
  }
  return part;
}

}  // namespace

SplitCore read_split_core(const CacheFile& file, const std::string& name, std::size_t n) {
  const std::string path = std::string(kSplits) + "/" + name;
  const std::string where = "/" + path + "/";
  const h5::Group group = h5::open_group(file.id(), path);
  const hid_t g = group.id();
  require_attributes(file, g, path, {kSplitKind, kSplitParts, kSplitMean, kSplitStd});
  SplitCore split;
  split.kind = text_attribute(file, g, where, kSplitKind, "");
  if (split.kind != "parts" && split.kind != "kfold") {
    file.fail("the attribute " + where + kSplitKind + " is \"" + split.kind +
              "\" (\"parts\" or \"kfold\" expected)");
  }
  const bool kfold = split.kind == "kfold";
  split.parts = static_cast<std::size_t>(
      int_attribute(file, g, where, kSplitParts, 0, kfold ? 2 : 1, kfold ? kMaxFolds : 3));
  const std::size_t training_sets = kfold ? split.parts : 1;
  split.mean = double_attribute(file, g, where, kSplitMean, kMaxFolds);
  check_statistics(file, where, kSplitMean, split.mean, training_sets, /*positive=*/false);
  split.std = double_attribute(file, g, where, kSplitStd, kMaxFolds);
  check_statistics(file, where, kSplitStd, split.std, training_sets, /*positive=*/true);
  split.part = read_parts(file, path + "/" + kSplitPart, n, kfold ? -1 : 0, split.parts);
  return split;
}

namespace {

// The split's sample_counts or patient_counts: at most kMaxFolds whole numbers in 0..kMaxImages.
std::vector<std::int64_t> read_counts(const CacheFile& file, hid_t group, const std::string& where,
                                      const char* name) {
  std::vector<std::int64_t> counts;
  if (!h5::has_attribute(group, name)) return counts;
  for (const double v : double_attribute(file, group, where, name, kMaxFolds)) {
    if (!(v >= 0 && v <= static_cast<double>(kMaxImages))) {
      std::ostringstream text;
      text << v;
      file.fail("the attribute " + where + name + " holds " + text.str() + " (0.." + str(kMaxImages) +
                " expected)");
    }
    counts.push_back(static_cast<std::int64_t>(v));
  }
  return counts;
}

// The split's descriptive attributes: how it was made and what it holds.
void read_split_description(const CacheFile& file, hid_t g, const std::string& where, SplitTable& split) {
  const std::string seed = text_attribute(file, g, where, kSplitSeed, "");
  if (seed.empty() || seed.size() > 20 || seed.find_first_not_of("0123456789") != std::string::npos ||
      (seed.size() == 20 && seed > "18446744073709551615")) {
    file.fail("the attribute " + where + kSplitSeed + " is \"" + seed + "\" (a decimal uint64 expected)");
  }
  split.seed = std::stoull(seed);
  split.ratios = double_attribute(file, g, where, kSplitRatios, kMaxFolds);
  split.patient_set_hash = text_attribute(file, g, where, kSplitPatientSetHash, "");
  split.patients = static_cast<std::size_t>(
      int_attribute(file, g, where, kSplitPatients, 0, 0, static_cast<std::int64_t>(kMaxImages)));
  split.samples_without_patient = static_cast<std::size_t>(int_attribute(
      file, g, where, kSplitSamplesWithoutPatient, 0, 0, static_cast<std::int64_t>(kMaxImages)));
  const std::string class_counts = text_attribute(file, g, where, kSplitClassCounts, "[]");
  const std::string not_counts =
      "the attribute " + where + kSplitClassCounts + " is not a JSON array of count arrays: ";
  std::string why;
  const nlohmann::json parsed = core::parse_json(class_counts, &why);
  if (parsed.is_discarded()) file.fail(not_counts + why);
  try {
    split.class_counts = parsed.get<std::vector<std::vector<std::int64_t>>>();
  } catch (const nlohmann::json::exception& e) {
    file.fail(not_counts + e.what());
  }
  split.sample_counts = read_counts(file, g, where, kSplitSampleCounts);
  split.patient_counts = read_counts(file, g, where, kSplitPatientCounts);
}

}  // namespace

SplitTable read_split(const CacheFile& file, const std::string& name, std::size_t n) {
  SplitCore core = read_split_core(file, name, n);
  const std::string path = std::string(kSplits) + "/" + name;
  const h5::Group group = h5::open_group(file.id(), path);
  require_attributes(file, group.id(), path, {kSplitSeed, kSplitRatios, kSplitPatientSetHash});
  SplitTable split;
  split.name = name;
  split.kind = std::move(core.kind);
  split.parts = core.parts;
  split.part = std::move(core.part);
  split.mean = std::move(core.mean);
  split.std = std::move(core.std);
  read_split_description(file, group.id(), "/" + path + "/", split);
  return split;
}

void write_split(hid_t file, const SplitTable& split, const std::string& shown_as) {
  check_split_name(split.name);
  {
    const h5::Dataset images = h5::open_dataset(file, kImages);
    const auto dims = h5::shape(images);
    if (dims.empty() || dims[0] != split.part.size()) {
      throw ConfigError("the split has " + std::to_string(split.part.size()) + " samples but " + shown_as +
                        " has " + (dims.empty() ? std::string("none") : std::to_string(dims[0])));
    }
  }
  const h5::Group splits = h5::require_group(file, kSplits);
  if (h5::exists(splits.id(), split.name)) h5::remove(splits.id(), split.name);
  const h5::Group group = h5::create_group(splits.id(), split.name);
  const hid_t g = group.id();
  h5::write_vector(g, kSplitPart, split.part);
  h5::write_attribute(g, kSplitKind, split.kind);
  h5::write_attribute(g, kSplitParts, static_cast<std::int64_t>(split.parts));
  h5::write_attribute(g, kSplitSeed, std::to_string(split.seed));  // uint64: text keeps every bit
  h5::write_attribute(g, kSplitRatios, split.ratios);
  h5::write_attribute(g, kSplitPatientSetHash, split.patient_set_hash);
  h5::write_attribute(g, kSplitPatients, static_cast<std::int64_t>(split.patients));
  h5::write_attribute(g, kSplitSamplesWithoutPatient,
                      static_cast<std::int64_t>(split.samples_without_patient));
  h5::write_attribute(g, kSplitClassCounts, nlohmann::json(split.class_counts).dump());
  h5::write_attribute(g, kSplitSampleCounts,
                      std::vector<double>(split.sample_counts.begin(), split.sample_counts.end()));
  h5::write_attribute(g, kSplitPatientCounts,
                      std::vector<double>(split.patient_counts.begin(), split.patient_counts.end()));
  h5::write_attribute(g, kSplitMean, split.mean);
  h5::write_attribute(g, kSplitStd, split.std);
  h5::write_attribute(g, kLibraryVersion, std::string(kVersion));
}

// ---- /targets ------------------------------------------------------------------------------------

int mask_deflate_level(const detail::CacheHeader& header) {
  return header.deflate > 0 ? header.deflate : kMaskDeflate;
}

h5::Dataset create_masks(hid_t file, const detail::CacheHeader& header) {
  const std::vector<hsize_t> dims{static_cast<hsize_t>(header.count), static_cast<hsize_t>(header.height),
                                  static_cast<hsize_t>(header.width)};
  h5::DatasetLayout layout;
  layout.chunk = dims;
  layout.chunk[0] = 1;  // one mask per chunk, as the images: a random read inflates one mask
  layout.deflate = mask_deflate_level(header);
  if (header.count == 0) {
    layout.max_dims = dims;
    layout.max_dims[0] = H5S_UNLIMITED;
  }
  return h5::create_dataset(file, kMasks, H5T_STD_U16LE, dims, layout);
}

ImageShape read_mask_shape(const CacheFile& file, const h5::Dataset& masks, const ImageShape& images) {
  const std::vector<hsize_t> dims = h5::shape(masks);
  const std::vector<std::uint64_t> expected{images.count, static_cast<std::uint64_t>(images.height),
                                            static_cast<std::uint64_t>(images.width)};
  if (!std::equal(dims.begin(), dims.end(), expected.begin(), expected.end())) {
    file.fail("/" + std::string(kMasks) + " has shape " + shape_text(dims) + ", not " + shape_text(expected) +
              " (one mask of the images' size per image)");
  }
  {
    const h5::Datatype type = h5::dataset_type(masks);
    if (H5Tget_class(type.id()) != H5T_INTEGER || H5Tget_sign(type.id()) != H5T_SGN_NONE ||
        H5Tget_size(type.id()) != 2 || H5Tget_order(type.id()) != H5T_ORDER_LE) {
      file.fail("/" + std::string(kMasks) + " is not little-endian uint16");
    }
  }
  ImageShape shape;
  shape.count = images.count;
  shape.rank = 3;
  shape.channels = 1;
  shape.height = images.height;
  shape.width = images.width;
  shape.dtype = PixelType::kUInt16;
  shape.image_bytes = static_cast<std::size_t>(images.height) * static_cast<std::size_t>(images.width) * 2;
  locate_items(file, masks, kMasks, "mask", shape);
  return shape;
}

namespace {

using Fail = std::function<void(const std::string&)>;

std::string slash(const char* name) { return "/" + std::string(name); }

std::string number_text(double v) {
  std::ostringstream text;
  text << v;
  return text.str();
}

void check_length(const Fail& fail, const char* name, std::size_t size, std::size_t expected,
                  const std::string& per) {
  if (size != expected) fail(slash(name) + " has " + str(size) + " entries for " + per);
}

void check_states(const Fail& fail, const char* name, const std::vector<std::uint8_t>& states) {
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (states[i] > static_cast<std::uint8_t>(TargetState::kInvalid)) {
      fail(slash(name) + " holds " + str(states[i]) + " for image " + str(i) +
           " (0 none, 1 valid or 2 invalid expected)");
    }
  }
}

// One ragged table: `offsets` ([n+1], 0 first, non-decreasing, `rows` last) over `rows` rows of
// `width` values each (`values`) and their labels; an image whose state is not kValid has no rows.
struct Ragged {
  const char* offsets_name;
  const char* rows_name;
  const char* labels_name;
  const char* states_name;
  std::size_t width;
  const std::vector<std::uint64_t>& offsets;
  const std::vector<double>& values;
  const std::vector<std::int32_t>& labels;
  const std::vector<std::uint8_t>& states;
};

void check_ragged(const Fail& fail, const Ragged& t, std::size_t n) {
  check_length(fail, t.offsets_name, t.offsets.size(), n + 1,
               str(n) + " images (" + str(n + 1) + " expected)");
  const std::size_t rows = t.labels.size();
  if (t.values.size() != rows * t.width) {
    fail(slash(t.rows_name) + " holds " + str(t.values.size()) + " values for the " + str(rows) +
         " entries of " + slash(t.labels_name) + " (" + str(t.width) + " per row expected)");
  }
  if (t.offsets[0] != 0) fail(slash(t.offsets_name) + " starts at " + str(t.offsets[0]) + " (0 expected)");
  for (std::size_t i = 0; i < n; ++i) {
    if (t.offsets[i + 1] < t.offsets[i]) {
      fail(slash(t.offsets_name) + " decreases at image " + str(i) + " (" + str(t.offsets[i]) + ", then " +
           str(t.offsets[i + 1]) + ")");
    }
    if (t.offsets[i + 1] != t.offsets[i] && t.states[i] != static_cast<std::uint8_t>(TargetState::kValid)) {
      fail(slash(t.offsets_name) + " gives image " + str(i) + " " + str(t.offsets[i + 1] - t.offsets[i]) +
           " rows of " + slash(t.rows_name) + " but " + slash(t.states_name) + " marks it " +
           std::string(to_string(static_cast<TargetState>(t.states[i]))) + " (only valid images have rows)");
    }
  }
  if (t.offsets[n] != rows) {
    fail(slash(t.offsets_name) + " ends at " + str(t.offsets[n]) + " but " + slash(t.rows_name) + " has " +
         str(rows) + " rows");
  }
}

void check_labels(const Fail& fail, const char* name, const std::vector<std::int32_t>& labels,
                  std::size_t classes) {
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] < 1 || static_cast<std::size_t>(labels[r]) >= classes) {
      fail(slash(name) + " holds " + std::to_string(labels[r]) + " for row " + str(r) + " (1.." +
           std::to_string(static_cast<std::int64_t>(classes) - 1) + " expected: /" + kTargetClasses +
           " names " + str(classes) + " classes, 0 the background)");
    }
  }
}

bool on_grid(double v, int side) {
  return std::isfinite(v) && v >= -kTargetSlack && v <= side + kTargetSlack;
}

// The image each row belongs to, for messages (the offsets are checked first).
std::size_t image_of_row(const std::vector<std::uint64_t>& offsets, std::size_t row) {
  const auto it = std::upper_bound(offsets.begin(), offsets.end(), static_cast<std::uint64_t>(row));
  return static_cast<std::size_t>(it - offsets.begin()) - 1;
}

void check_boxes(const Fail& fail, const detail::TargetColumns& t, int height, int width) {
  for (std::size_t r = 0; r < t.box_labels.size(); ++r) {
    const double* b = &t.boxes[4 * r];
    const bool finite =
        std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
    const bool has_area = b[0] < b[2] && b[1] < b[3];
    const bool inside =
        on_grid(b[0], width) && on_grid(b[2], width) && on_grid(b[1], height) && on_grid(b[3], height);
    if (finite && has_area && inside) continue;
    const std::string what = !finite     ? "a value that is not finite"
                             : !has_area ? "no area (x0 < x1 and y0 < y1 expected)"
                                         : "a box outside the " + std::to_string(width) + "x" +
                                               std::to_string(height) + " output grid";
    fail(slash(kBoxes) + " row " + str(r) + " (image " + str(image_of_row(t.box_offsets, r)) + ") is (" +
         number_text(b[0]) + ", " + number_text(b[1]) + ", " + number_text(b[2]) + ", " + number_text(b[3]) +
         "): " + what);
  }
}

void check_landmarks(const Fail& fail, const detail::TargetColumns& t, int height, int width) {
  for (std::size_t r = 0; r < t.landmark_labels.size(); ++r) {
    const double x = t.landmarks[2 * r], y = t.landmarks[2 * r + 1];
    if (on_grid(x, width) && on_grid(y, height)) continue;
    fail(slash(kLandmarks) + " row " + str(r) + " (image " + str(image_of_row(t.landmark_offsets, r)) +
         ") is (" + number_text(x) + ", " + number_text(y) + "): " +
         (std::isfinite(x) && std::isfinite(y)
              ? "outside the " + std::to_string(width) + "x" + std::to_string(height) + " output grid"
              : std::string("a value that is not finite")));
  }
}

}  // namespace

void check_targets(const detail::TargetColumns& t, std::size_t n, int height, int width, bool has_masks,
                   const Fail& fail) {
  const std::string per_image = str(n) + " images";
  check_length(fail, kMaskState, t.mask_states.size(), n, per_image);
  check_length(fail, kBoxState, t.box_states.size(), n, per_image);
  check_length(fail, kLandmarkState, t.landmark_states.size(), n, per_image);
  check_length(fail, kBoxDropped, t.boxes_dropped.size(), n, per_image);
  check_length(fail, kLandmarkDropped, t.landmarks_dropped.size(), n, per_image);
  if (t.classes.size() > kMaxTargetClasses) {
    fail(slash(kTargetClasses) + " names " + str(t.classes.size()) + " classes (at most " +
         str(kMaxTargetClasses) + " expected)");
  }
  check_states(fail, kMaskState, t.mask_states);
  check_states(fail, kBoxState, t.box_states);
  check_states(fail, kLandmarkState, t.landmark_states);
  if (!has_masks) {
    const auto valid =
        std::find(t.mask_states.begin(), t.mask_states.end(), static_cast<std::uint8_t>(TargetState::kValid));
    if (valid != t.mask_states.end()) {
      fail(slash(kMaskState) + " marks the mask of image " +
           str(static_cast<std::size_t>(valid - t.mask_states.begin())) + " valid but there is no " +
           slash(kMasks));
    }
  }
  check_ragged(
      fail,
      {kBoxOffsets, kBoxes, kBoxLabels, kBoxState, 4, t.box_offsets, t.boxes, t.box_labels, t.box_states}, n);
  check_ragged(fail,
               {kLandmarkOffsets, kLandmarks, kLandmarkLabels, kLandmarkState, 2, t.landmark_offsets,
                t.landmarks, t.landmark_labels, t.landmark_states},
               n);
  check_labels(fail, kBoxLabels, t.box_labels, t.classes.size());
  check_labels(fail, kLandmarkLabels, t.landmark_labels, t.classes.size());
  check_boxes(fail, t, height, width);
  check_landmarks(fail, t, height, width);
}

namespace {

// The 1-D dataset `name`, which must have `expected` entries (`why` says why, for the message).
void require_entries(const CacheFile& file, const char* name, std::uint64_t expected,
                     const std::string& why) {
  const std::vector<hsize_t> dims = h5::shape(open(file, name));
  if (dims.size() != 1 || dims[0] != expected) {
    file.fail(slash(name) + " has shape " + shape_text(dims) + ", not (" + str(expected) + ",): " + why);
  }
}

// One ragged table as read: the offsets [n+1], then (their last value compared with the rows the
// rows dataset declares, before those are read) the rows [R, width] and their labels [R].
void read_ragged(const CacheFile& file, const char* offsets_name, const char* rows_name,
                 const char* labels_name, std::size_t width, std::size_t n,
                 std::vector<std::uint64_t>& offsets, std::vector<double>& values,
                 std::vector<std::int32_t>& labels) {
  require_entries(file, offsets_name, std::uint64_t{n} + 1, "one entry per image and one more");
  offsets = read_column<std::uint64_t>(file, offsets_name, n + 1);
  const std::vector<hsize_t> dims = h5::shape(open(file, rows_name));
  if (dims.size() != 2 || dims[1] != width) {
    file.fail(slash(rows_name) + " has shape " + shape_text(dims) + ", not (rows, " + str(width) + ")");
  }
  if (offsets[n] != dims[0]) {
    file.fail(slash(offsets_name) + " ends at " + str(offsets[n]) + " but " + slash(rows_name) + " has " +
              str(dims[0]) + " rows");
  }
  values = read_array<double>(file, rows_name, {dims[0], width});
  require_entries(file, labels_name, dims[0], "one label per row of " + slash(rows_name));
  labels = read_column<std::int32_t>(file, labels_name, static_cast<std::size_t>(dims[0]));
}

std::vector<std::uint32_t> read_dropped(const CacheFile& file, const char* name, std::size_t n) {
  const std::vector<std::uint64_t> wide = read_column<std::uint64_t>(file, name, n);
  std::vector<std::uint32_t> counts(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (wide[i] > std::numeric_limits<std::uint32_t>::max()) {
      file.fail(slash(name) + " holds " + str(wide[i]) + " for image " + str(i) +
                " (a uint32 count expected)");
    }
    counts[i] = static_cast<std::uint32_t>(wide[i]);
  }
  return counts;
}

std::vector<std::string> read_target_class_names(const CacheFile& file) {
  const std::vector<hsize_t> dims = h5::shape(open(file, kTargetClasses));
  if (dims.size() != 1 || dims[0] > kMaxTargetClasses) {
    file.fail(slash(kTargetClasses) + " has shape " + shape_text(dims) + " (at most " +
              str(kMaxTargetClasses) + " names expected)");
  }
  return read_text_column(file, kTargetClasses, static_cast<std::size_t>(dims[0]));
}

void write_counts(hid_t file, const char* name, const std::vector<std::uint32_t>& counts) {
  const h5::Dataset dataset =
      h5::create_dataset(file, name, H5T_STD_U32LE, {static_cast<hsize_t>(counts.size())});
  if (counts.empty()) return;
  h5::check_status(H5Dwrite(dataset.id(), H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, counts.data()),
                   "write", "the dataset \"" + std::string(name) + "\"", file);
}

}  // namespace

detail::TargetColumns read_targets(const CacheFile& file, std::size_t n, int height, int width,
                                   bool has_masks) {
  detail::TargetColumns t;
  if (!h5::exists(file.id(), kTargets)) return t;
  t.classes = read_target_class_names(file);
  t.mask_states = read_column<std::uint8_t>(file, kMaskState, n);
  t.box_states = read_column<std::uint8_t>(file, kBoxState, n);
  t.landmark_states = read_column<std::uint8_t>(file, kLandmarkState, n);
  read_ragged(file, kBoxOffsets, kBoxes, kBoxLabels, 4, n, t.box_offsets, t.boxes, t.box_labels);
  read_ragged(file, kLandmarkOffsets, kLandmarks, kLandmarkLabels, 2, n, t.landmark_offsets, t.landmarks,
              t.landmark_labels);
  t.boxes_dropped = read_dropped(file, kBoxDropped, n);
  t.landmarks_dropped = read_dropped(file, kLandmarkDropped, n);
  check_targets(t, n, height, width, has_masks, [&](const std::string& what) { file.fail(what); });
  return t;
}

void write_targets(hid_t file, const detail::TargetColumns& given, std::size_t n, int height, int width,
                   bool has_masks) {
  detail::TargetColumns none;
  const detail::TargetColumns* t = &given;
  if (given.rows() == 0 && given.box_offsets.empty() && given.landmark_offsets.empty()) {
    for (std::size_t i = 0; i < n; ++i) detail::append_targets(none, FrameTargets{});
    if (n == 0) none.box_offsets = none.landmark_offsets = {0};
    none.classes = given.classes;
    t = &none;
  }
  check_targets(*t, n, height, width, has_masks, [&](const std::string& what) {
    throw FormatError("cannot write " + h5::file_name(file) + ": " + what);
  });
  h5::write_strings(file, kTargetClasses, t->classes);
  h5::write_vector(file, kMaskState, t->mask_states);
  h5::write_vector(file, kBoxState, t->box_states);
  h5::write_vector(file, kLandmarkState, t->landmark_states);
  h5::write_vector(file, kBoxOffsets, t->box_offsets);
  h5::write_vector(file, kBoxes, t->boxes, {static_cast<hsize_t>(t->box_labels.size()), 4});
  h5::write_vector(file, kBoxLabels, t->box_labels);
  h5::write_vector(file, kLandmarkOffsets, t->landmark_offsets);
  h5::write_vector(file, kLandmarks, t->landmarks, {static_cast<hsize_t>(t->landmark_labels.size()), 2});
  h5::write_vector(file, kLandmarkLabels, t->landmark_labels);
  write_counts(file, kBoxDropped, t->boxes_dropped);
  write_counts(file, kLandmarkDropped, t->landmarks_dropped);
}

}  // namespace medload::loader::schema
