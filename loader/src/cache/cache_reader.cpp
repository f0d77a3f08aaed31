#include "medload/loader/cache/cache_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"

namespace medload::loader {

namespace {

// How image bytes are found: one chunk per image at a file offset, read with pread.
enum class Storage {
  kContiguous,    // a contiguous dataset (medload's default): image i is a byte range, read with pread
  kChunkRaw,      // one image per chunk, no filter: the raw chunk read under the lock is the image
  kChunkDeflate,  // one image per chunk, deflate: the raw chunk is read under the lock, inflated outside
  kHdf5,          // anything else (other filters, other chunk shapes): H5Dread under the lock
};

}  // namespace

struct CacheReader::Impl {
  std::string path;
  int fd = -1;
  h5::File file;
  h5::Dataset images;  // kept open for the H5Dread fallback
  mutable std::mutex hdf5_mutex;

  std::size_t count = 0;
  int height = 0, width = 0, channels = 1;
  PixelType dtype = PixelType::kUInt8;
  std::size_t image_bytes = 0;
  Storage storage = Storage::kContiguous;
  std::uint64_t base = 0;  // file offset of image 0 (contiguous); kNotWritten when never written
  int rank = 3;

  std::vector<std::int64_t> labels;
  bool multi_label = false;
  std::vector<std::uint8_t> label_matrix;
  std::vector<std::string> class_names, patient_ids, source_paths, source_hashes, sites;
  std::vector<std::int32_t> frame_indices;
  std::vector<std::uint64_t> checksums;
  std::vector<std::int32_t> geometry_int[10];
  std::vector<double> geometry_scale;
  std::string config_json, config_hash, library_version;
  std::int64_t schema_version = 0;

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] void format_error(const std::string& what) const {
    throw FormatError(path + " is not a usable medload cache: " + what);
  }

  void open();
  void choose_storage(hid_t dataset, std::uint64_t file_size);
  void read_chunk(std::size_t index, void* out) const;
};

namespace {
constexpr const char* kGeometryInt[10] = {"original_height", "original_width", "crop_x",  "crop_y",
                                          "crop_w",          "crop_h",         "pad_top", "pad_left",
                                          "pad_bottom",      "pad_right"};
constexpr std::uint64_t kNotWritten = std::numeric_limits<std::uint64_t>::max();
}  // namespace

void CacheReader::Impl::open() {
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open the cache " + path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  try {
    file = h5::File::open(path);
  } catch (const HdfError& e) {
    // HDF5 refuses truncated files at open ("truncated file: eof = ..."); say so in our terms.
    format_error(std::string("HDF5 cannot open it (truncated or not HDF5): ") + e.what());
  }
  const hid_t f = file.id();
  if (!h5::has_attribute(f, "schema_version")) format_error("it has no schema_version attribute");
  schema_version = h5::read_int_attribute(f, "schema_version");
  if (schema_version > kCacheSchemaVersion) {
    format_error("its schema_version is " + std::to_string(schema_version) + ", newer than " +
                 std::to_string(kCacheSchemaVersion) +
                 ", the newest this medload reads; use a newer medload");
  }
  if (schema_version < 1) format_error("its schema_version is " + std::to_string(schema_version));
  if (!h5::exists(f, "images")) format_error("it has no /images dataset");

  images = h5::open_dataset(f, "images");
  const std::vector<hsize_t> dims = h5::shape(images);
  if (dims.size() != 3 && dims.size() != 4) {
    format_error("/images has " + std::to_string(dims.size()) + " dimensions (3 or 4 expected)");
  }
  count = static_cast<std::size_t>(dims[0]);
  channels = dims.size() == 4 ? static_cast<int>(dims[1]) : 1;
  height = static_cast<int>(dims[dims.size() - 2]);
  width = static_cast<int>(dims[dims.size() - 1]);
  {
    h5::Datatype type = h5::dataset_type(images);
    const std::size_t size = H5Tget_size(type.id());
    if (H5Tget_class(type.id()) != H5T_INTEGER || H5Tget_sign(type.id()) != H5T_SGN_NONE ||
        (size != 1 && size != 2) || (size == 2 && H5Tget_order(type.id()) != H5T_ORDER_LE)) {
      format_error("/images is not uint8 or little-endian uint16");
    }
    dtype = size == 1 ? PixelType::kUInt8 : PixelType::kUInt16;
  }
  image_bytes = static_cast<std::size_t>(channels) * height * width * bytes_per_element(dtype);
  choose_storage(images.id(), file_size);

  auto require = [&](const char* name) {
    if (!h5::exists(f, name)) format_error(std::string("it has no /") + name + " dataset");
  };
  auto check_count = [&](std::size_t size, const char* name) {
    if (size != count) {
      format_error(std::string("/") + name + " has " + std::to_string(size) + " entries for " +
                   std::to_string(count) + " images");
    }
  };
  for (const char* name :
       {"labels", "patient_id", "source_path", "source_hash", "site", "frame_index", "checksum"}) {
    require(name);
  }
  labels = h5::read_vector<std::int64_t>(f, "labels");
  check_count(labels.size(), "labels");
  patient_ids = h5::read_strings(f, "patient_id");
  check_count(patient_ids.size(), "patient_id");
  source_paths = h5::read_strings(f, "source_path");
  check_count(source_paths.size(), "source_path");
  source_hashes = h5::read_strings(f, "source_hash");
  check_count(source_hashes.size(), "source_hash");
  sites = h5::read_strings(f, "site");
  check_count(sites.size(), "site");
  frame_indices = h5::read_vector<std::int32_t>(f, "frame_index");
  check_count(frame_indices.size(), "frame_index");
  checksums = h5::read_vector<std::uint64_t>(f, "checksum");
  check_count(checksums.size(), "checksum");
  for (int k = 0; k < 10; ++k) {
    const std::string name = std::string("geometry/") + kGeometryInt[k];
    if (h5::exists(f, name)) {
      geometry_int[k] = h5::read_vector<std::int32_t>(f, name);
      check_count(geometry_int[k].size(), name.c_str());
    }
  }
  if (h5::exists(f, "geometry/scale")) {
    geometry_scale = h5::read_vector<double>(f, "geometry/scale");
    check_count(geometry_scale.size(), "geometry/scale");
  }

  if (h5::has_attribute(f, "class_names")) {
    try {
      class_names =
          nlohmann::json::parse(h5::read_string_attribute(f, "class_names")).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      format_error(std::string("its class_names attribute is not a JSON array of strings: ") + e.what());
    }
  }
  multi_label = h5::exists(f, "label_matrix");
  if (multi_label) {
    label_matrix = h5::read_vector<std::uint8_t>(f, "label_matrix");
    if (label_matrix.size() != count * class_names.size()) {
      format_error("/label_matrix has " + std::to_string(label_matrix.size()) + " entries, not N x K = " +
                   std::to_string(count) + " x " + std::to_string(class_names.size()));
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (labels[i] < -1 || labels[i] >= static_cast<std::int64_t>(class_names.size())) {
      format_error("label " + std::to_string(labels[i]) + " of image " + std::to_string(i) +
                   " is outside -1.." + std::to_string(static_cast<std::int64_t>(class_names.size()) - 1));
    }
  }
  if (h5::has_attribute(f, "config")) config_json = h5::read_string_attribute(f, "config");
  if (h5::has_attribute(f, "config_hash")) config_hash = h5::read_string_attribute(f, "config_hash");
  if (h5::has_attribute(f, "library_version"))
    library_version = h5::read_string_attribute(f, "library_version");
}

// Locating chunks one by one (H5Dget_chunk_info / _by_coord) walks the whole chunk index in HDF5
// 1.10.8: about 300 us per call at 4096 chunks, so O(N^2) for a cache. medload therefore stores
// uncompressed images contiguously (one offset for all) and reads compressed chunks with
// H5Dread_chunk, whose lookup is O(1).
void CacheReader::Impl::choose_storage(hid_t dataset, std::uint64_t file_size) {
  rank = channels == 1 ? 3 : 4;
  h5::PropList create(h5::check(H5Dget_create_plist(dataset), "read the layout of", "the dataset \"images\"",
                                H5I_INVALID_HID, path));
  const H5D_layout_t layout = H5Pget_layout(create.id());
  if (layout == H5D_CONTIGUOUS) {
    storage = Storage::kContiguous;
    const haddr_t address = H5Dget_offset(dataset);
    if (address == HADDR_UNDEF) {
      H5Eclear2(H5E_DEFAULT);
      base = kNotWritten;  // never written: every image reads as zeros (HDF5's fill value)
      return;
    }
    base = address;
    const std::uint64_t end = base + static_cast<std::uint64_t>(count) * image_bytes;
    if (end > file_size) {
      const std::uint64_t whole = file_size > base ? (file_size - base) / image_bytes : 0;
      format_error("it is truncated: the images end at byte " + std::to_string(end) + " of a file of " +
                   std::to_string(file_size) + " (image " + std::to_string(whole) + " onwards is missing)");
    }
    return;
  }
  storage = Storage::kHdf5;
  if (layout != H5D_CHUNKED) return;
  std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
  H5Pget_chunk(create.id(), rank, chunk.data());
  const std::vector<hsize_t> image{1, static_cast<hsize_t>(channels), static_cast<hsize_t>(height),
                                   static_cast<hsize_t>(width)};
  const bool one_image = rank == 3 ? chunk == std::vector<hsize_t>{1, image[2], image[3]} : chunk == image;
  const int filters = H5Pget_nfilters(create.id());
  if (!one_image || filters > 1) return;
  if (filters == 0) {
    storage = Storage::kChunkRaw;
    return;
  }
  unsigned flags = 0;
  std::size_t nelements = 0;
  if (H5Pget_filter2(create.id(), 0, &flags, &nelements, nullptr, 0, nullptr, nullptr) ==
      H5Z_FILTER_DEFLATE) {
    storage = Storage::kChunkDeflate;
  }
}

void CacheReader::Impl::read_chunk(std::size_t index, void* out) const {
  std::vector<hsize_t> offset(static_cast<std::size_t>(rank), 0);
  offset[0] = static_cast<hsize_t>(index);
  std::vector<std::uint8_t> stored;
  std::uint32_t mask = 0;
  {
    // The library lock is taken anyway; this mutex keeps the raw read and its size together.
    std::lock_guard<std::mutex> lock(hdf5_mutex);
    h5::silence_errors();
    hsize_t size = 0;
    if (H5Dget_chunk_storage_size(images.id(), offset.data(), &size) < 0 || size == 0) {
      H5Eclear2(H5E_DEFAULT);
      std::memset(out, 0, image_bytes);  // a chunk never written reads as HDF5's fill value
      return;
    }
    if (storage == Storage::kChunkRaw && size != image_bytes) {
      throw FormatError("image " + std::to_string(index) + " of " + path + " is stored in " +
                        std::to_string(size) + " bytes, not " + std::to_string(image_bytes));
    }
    void* target = out;
    if (storage == Storage::kChunkDeflate) {
      stored.resize(static_cast<std::size_t>(size));
      target = stored.data();
    }
    h5::check_status(H5Dread_chunk(images.id(), H5P_DEFAULT, offset.data(), &mask, target), "read",
                     "image " + std::to_string(index) + " of the dataset \"images\"", H5I_INVALID_HID, path);
  }
  if (storage == Storage::kChunkRaw) return;
  if ((mask & 1u) != 0) {  // the deflate filter was skipped for this chunk: stored as is
    if (stored.size() != image_bytes) {
      throw FormatError("image " + std::to_string(index) + " of " + path + " is stored unfiltered in " +
                        std::to_string(stored.size()) + " bytes, not " + std::to_string(image_bytes));
    }
    std::memcpy(out, stored.data(), image_bytes);
    return;
  }
  uLongf size = static_cast<uLongf>(image_bytes);
  const int status =
      uncompress(static_cast<Bytef*>(out), &size, stored.data(), static_cast<uLong>(stored.size()));
  if (status != Z_OK || size != image_bytes) {
    throw FormatError("image " + std::to_string(index) + " of " + path + " does not inflate to " +
                      std::to_string(image_bytes) + " bytes (zlib status " + std::to_string(status) + ")");
  }
}

CacheReader::CacheReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open();
}

CacheReader::~CacheReader() = default;
CacheReader::CacheReader(CacheReader&&) noexcept = default;
CacheReader& CacheReader::operator=(CacheReader&&) noexcept = default;

const std::string& CacheReader::path() const noexcept { return impl_->path; }
std::size_t CacheReader::size() const noexcept { return impl_->count; }
int CacheReader::height() const noexcept { return impl_->height; }
int CacheReader::width() const noexcept { return impl_->width; }
int CacheReader::channels() const noexcept { return impl_->channels; }
PixelType CacheReader::dtype() const noexcept { return impl_->dtype; }
std::size_t CacheReader::image_bytes() const noexcept { return impl_->image_bytes; }

namespace {
void pread_all(int fd, void* out, std::size_t size, std::uint64_t offset, const std::string& path,
               std::size_t index) {
  auto* bytes = static_cast<char*>(out);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot read image " + std::to_string(index) + " from " + path + ": " +
                    std::strerror(errno));
    }
    if (got == 0) {
      throw IoError("cannot read image " + std::to_string(index) + " from " + path +
                    ": the file ends at byte " + std::to_string(offset + done) + " (truncated)");
    }
    done += static_cast<std::size_t>(got);
  }
}
}  // namespace

void CacheReader::read_image(std::size_t index, void* out) const {
  const Impl& d = *impl_;
  if (index >= d.count) {
    throw std::out_of_range("image " + std::to_string(index) + " of " + d.path + ", which has " +
                            std::to_string(d.count));
  }
  switch (d.storage) {
    case Storage::kContiguous:
      if (d.base == kNotWritten) {
        std::memset(out, 0, d.image_bytes);
      } else {
        pread_all(d.fd, out, d.image_bytes, d.base + static_cast<std::uint64_t>(index) * d.image_bytes,
                  d.path, index);
      }
      return;
    case Storage::kChunkRaw:
    case Storage::kChunkDeflate:
      d.read_chunk(index, out);
      return;
    case Storage::kHdf5: {
      std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
      h5::read_rows(d.images, index, 1, d.dtype == PixelType::kUInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16,
                    out);
      return;
    }
  }
}

void CacheReader::read_images(const std::vector<std::size_t>& indices, void* out) const {
  auto* bytes = static_cast<std::uint8_t*>(out);
  for (std::size_t k = 0; k < indices.size(); ++k) read_image(indices[k], bytes + k * impl_->image_bytes);
}

bool CacheReader::verify(std::size_t index) const {
  if (index >= impl_->count) {
    throw std::out_of_range("image " + std::to_string(index) + " of " + impl_->path + ", which has " +
                            std::to_string(impl_->count));
  }
  std::vector<std::uint8_t> buffer(impl_->image_bytes);
  try {
    read_image(index, buffer.data());
  } catch (const IoError&) {
    return false;
  } catch (const FormatError&) {
    return false;
  }
  return hash64(buffer.data(), buffer.size()) == impl_->checksums[index];
}

const std::vector<std::int64_t>& CacheReader::labels() const noexcept { return impl_->labels; }
bool CacheReader::multi_label() const noexcept { return impl_->multi_label; }
const std::vector<std::uint8_t>& CacheReader::label_matrix() const noexcept { return impl_->label_matrix; }
const std::vector<std::string>& CacheReader::class_names() const noexcept { return impl_->class_names; }
const std::vector<std::string>& CacheReader::patient_ids() const noexcept { return impl_->patient_ids; }
const std::vector<std::string>& CacheReader::source_paths() const noexcept { return impl_->source_paths; }
const std::vector<std::string>& CacheReader::source_hashes() const noexcept { return impl_->source_hashes; }
const std::vector<std::string>& CacheReader::sites() const noexcept { return impl_->sites; }
const std::vector<std::int32_t>& CacheReader::frame_indices() const noexcept { return impl_->frame_indices; }
const std::vector<std::uint64_t>& CacheReader::checksums() const noexcept { return impl_->checksums; }

std::vector<std::string> CacheReader::meta_names() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  std::vector<std::string> names;
  if (!h5::exists(impl_->file.id(), "meta")) return names;
  h5::Group group = h5::open_group(impl_->file.id(), "meta");
  for (const std::string& name : h5::list_children(group.id())) {
    const std::string suffix = "_imputed";
    const bool flag =
        name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!flag) names.push_back(name);
  }
  return names;
}

MetaColumn CacheReader::meta(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  const hid_t f = impl_->file.id();
  if (!h5::exists(f, "meta/" + name)) {
    throw FormatError("the cache " + impl_->path + " has no metadata column \"" + name + "\" (/meta/" + name +
                      ")");
  }
  MetaColumn column;
  column.name = name;
  {
    h5::Dataset dataset = h5::open_dataset(f, "meta/" + name);
    h5::Datatype type = h5::dataset_type(dataset);
    column.numeric = H5Tget_class(type.id()) != H5T_STRING;
  }
  if (column.numeric) {
    column.values = h5::read_vector<double>(f, "meta/" + name);
  } else {
    column.text = h5::read_strings(f, "meta/" + name);
  }
  if (h5::exists(f, "meta/" + name + "_imputed")) {
    column.imputed = h5::read_vector<std::uint8_t>(f, "meta/" + name + "_imputed");
  } else {
    column.imputed.assign(impl_->count, 0);
  }
  return column;
}

Geometry CacheReader::geometry(std::size_t index) const {
  const Impl& d = *impl_;
  if (index >= d.count) {
    throw std::out_of_range("image " + std::to_string(index) + " of " + d.path + ", which has " +
                            std::to_string(d.count));
  }
  auto at = [&](int k) { return d.geometry_int[k].empty() ? 0 : d.geometry_int[k][index]; };
  Geometry g;
  g.original_height = at(0);
  g.original_width = at(1);
  g.crop_x = at(2);
  g.crop_y = at(3);
  g.crop_w = at(4);
  g.crop_h = at(5);
  g.pad_top = at(6);
  g.pad_left = at(7);
  g.pad_bottom = at(8);
  g.pad_right = at(9);
  g.scale = d.geometry_scale.empty() ? 1.0 : d.geometry_scale[index];
  return g;
}

std::vector<RejectedFile> CacheReader::rejected() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  const hid_t f = impl_->file.id();
  std::vector<RejectedFile> files;
  if (!h5::exists(f, "rejected/path")) return files;
  const auto paths = h5::read_strings(f, "rejected/path");
  const auto reasons = h5::read_strings(f, "rejected/reason");
  const auto details = h5::read_strings(f, "rejected/detail");
  for (std::size_t i = 0; i < paths.size(); ++i) {
    files.push_back({paths[i], i < reasons.size() ? reasons[i] : "", i < details.size() ? details[i] : ""});
  }
  return files;
}

const std::string& CacheReader::config_json() const noexcept { return impl_->config_json; }
const std::string& CacheReader::config_hash() const noexcept { return impl_->config_hash; }
const std::string& CacheReader::library_version() const noexcept { return impl_->library_version; }
std::int64_t CacheReader::schema_version() const noexcept { return impl_->schema_version; }

bool CacheReader::has_attribute(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::has_attribute(impl_->file.id(), name);
}

std::string CacheReader::attribute(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::attribute_as_text(impl_->file.id(), name);
}

std::vector<std::string> CacheReader::attribute_names() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::list_attributes(impl_->file.id());
}

}  // namespace medload::loader
