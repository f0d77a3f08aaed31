#include "medload/loader/cache/cache_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"
#include "medload/core/hash.h"
#include "medload/core/process_limits.h"
#include "medload/core/regular_file.h"
#include "schema.h"

namespace medload::loader {

namespace {

// True in the child that check_cache_in_child forks: it reads what its parent must not.
bool g_checking_child = false;

// A file as check_cache_in_child saw it: device, inode, size, modification time (ns).
using FileIdentity = std::tuple<dev_t, ino_t, off_t, std::int64_t>;
FileIdentity identity_from(const struct stat& st) {
  return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                      std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}
std::optional<FileIdentity> identity_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return identity_from(st);
}
// The file HDF5 has open (its descriptor, so a file renamed over `path` since is not mistaken
// for it); by `path` when the driver keeps no descriptor.
std::optional<FileIdentity> identity_of(const h5::File& file) {
  void* handle = nullptr;
  struct stat st {};
  if (H5Fget_vfd_handle(file.id(), H5P_DEFAULT, &handle) >= 0 && handle != nullptr &&
      ::fstat(*static_cast<int*>(handle), &st) == 0) {
    return identity_from(st);
  }
  H5Eclear2(H5E_DEFAULT);
  return identity_of(file.path());
}

// The files check_cache_in_child passed in this process, each with the values its child read of
// the file's variable-length strings, which the reader uses instead of reading them itself (a
// changed file is checked again).
std::mutex g_checked_mutex;
std::map<FileIdentity, std::shared_ptr<const h5::VariableLengthValues>> g_checked;

std::shared_ptr<const h5::VariableLengthValues> checked_values(const std::optional<FileIdentity>& identity) {
  if (!identity) return nullptr;
  const std::lock_guard<std::mutex> lock(g_checked_mutex);
  const auto found = g_checked.find(*identity);
  return found == g_checked.end() ? nullptr : found->second;
}

// How image bytes are found: one chunk per image at a file offset, read with pread.
enum class Storage {
  kContiguous,    // a contiguous dataset (medload's default): image i is a byte range, read with pread
  kChunkRaw,      // one image per chunk, no filter: the raw chunk read under the lock is the image
  kChunkDeflate,  // one image per chunk, deflate: the raw chunk is read under the lock, inflated outside
  kHdf5,          // anything else (other filters, other chunk shapes): H5Dread under the lock
};

// One dataset of per-image items (/images, /targets/masks) and where each item's bytes are.
struct ItemStore {
  h5::Dataset dataset;  // kept open for the chunk reads and the H5Dread fallback
  std::string name;     // the dataset, for messages
  const char* item = "image";
  std::size_t bytes = 0;  // one item
  int rank = 3;
  std::vector<hsize_t> chunk;            // one item's chunk: {1, [C,] H, W}
  hid_t memory_type = H5T_NATIVE_UINT8;  // predefined, not owned: for the H5Dread fallback
  Storage storage = Storage::kContiguous;
  std::uint64_t base = 0;  // file offset of item 0 (contiguous); schema::kNotWritten when never written
};

std::string item_text(const ItemStore& store, std::size_t index) {
  return std::string(store.item) + " " + std::to_string(index);
}

}  // namespace

struct CacheReader::Impl {
  std::string path;
  core::FileDescriptor fd;
  std::unique_ptr<schema::CacheFile> file;
  ItemStore images;
  ItemStore masks;  // no dataset when the cache has no masks
  mutable std::mutex hdf5_mutex;

  std::size_t count = 0;
  int height = 0, width = 0, channels = 1;
  PixelType dtype = PixelType::kUInt8;
  std::size_t image_bytes = 0;

  bool has_targets = false;
  detail::TargetColumns targets;  // validated by the schema; no rows without targets
  std::vector<TargetState> mask_states, box_states, landmark_states;
  std::vector<std::uint32_t> boxes_dropped, landmarks_dropped;
  TargetClasses target_classes;

  std::vector<std::int64_t> labels;
  bool multi_label = false;
  std::vector<std::int8_t> label_matrix;
  std::vector<std::string> class_names, patient_ids, source_paths, source_hashes, sites;
  std::vector<std::int32_t> frame_indices;
  std::vector<std::uint64_t> checksums;
  schema::GeometryColumns geometry;
  std::string config_json, config_hash, library_version;
  std::int64_t schema_version = 0;

  void open();
  void read_images_header();
  void read_tables();
  void read_targets();
  void choose_storage(ItemStore& store, const schema::ImageShape& shape) const;
  void read_item(const ItemStore& store, std::size_t index, void* out) const;
  void read_chunk(const ItemStore& store, std::size_t index, void* out) const;
  [[noreturn]] void no_targets(const char* what, const char* column) const;
};

// Everything is read through the schema (schema.h), which validates shapes, types, lengths and
// ranges before anything is allocated or indexed.
void CacheReader::Impl::open() {
  fd = core::open_regular_file(path, "the cache");  // a FIFO would block a plain open forever
  file = std::make_unique<schema::CacheFile>(path);
  schema_version = schema::read_schema_version(*file);
  class_names = schema::read_class_names(*file);
  read_images_header();
  read_tables();
  read_targets();
  // Splits are validated here too, so no reader of this cache indexes by a damaged part value.
  for (const std::string& name : schema::split_names(*file)) schema::read_split_core(*file, name, count);
  config_json = schema::read_text_attribute(*file, schema::kConfig, "");
  config_hash = schema::read_text_attribute(*file, schema::kConfigHash, "");
  library_version = schema::read_text_attribute(*file, schema::kLibraryVersion, "");
}

void CacheReader::Impl::read_images_header() {
  if (!schema::has_dataset(*file, schema::kImages)) file->fail("it has no /images dataset");
  images.dataset = h5::open_dataset(file->id(), schema::kImages);
  images.name = schema::kImages;
  images.item = "image";
  const schema::ImageShape shape = schema::read_image_shape(*file, images.dataset);
  count = shape.count;
  channels = shape.channels;
  height = shape.height;
  width = shape.width;
  dtype = shape.dtype;
  image_bytes = shape.image_bytes;
  images.memory_type = dtype == PixelType::kUInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16;
  choose_storage(images, shape);
}

// A schema version 1 cache has no targets, whatever it holds under /targets.
void CacheReader::Impl::read_targets() {
  has_targets =
      schema_version >= schema::kTargetsSchemaVersion && schema::has_dataset(*file, schema::kTargets);
  const bool has_masks = has_targets && schema::has_dataset(*file, schema::kMasks);
  if (has_masks) {
    masks.dataset = h5::open_dataset(file->id(), schema::kMasks);
    masks.name = schema::kMasks;
    masks.item = "mask";
    masks.memory_type = H5T_NATIVE_UINT16;
    schema::ImageShape image_shape;
    image_shape.count = count;
    image_shape.height = height;
    image_shape.width = width;
    choose_storage(masks, schema::read_mask_shape(*file, masks.dataset, image_shape));
  }
  if (has_targets) targets = schema::read_targets(*file, count, height, width, has_masks);
  const auto states = [&](const std::vector<std::uint8_t>& stored, std::vector<TargetState>& out) {
    out.assign(count, TargetState::kNone);
    for (std::size_t i = 0; i < stored.size(); ++i) out[i] = static_cast<TargetState>(stored[i]);
  };
  states(targets.mask_states, mask_states);
  states(targets.box_states, box_states);
  states(targets.landmark_states, landmark_states);
  boxes_dropped = has_targets ? targets.boxes_dropped : std::vector<std::uint32_t>(count, 0);
  landmarks_dropped = has_targets ? targets.landmarks_dropped : std::vector<std::uint32_t>(count, 0);
  target_classes.names = targets.classes;
  if (!has_targets) targets.box_offsets = targets.landmark_offsets = std::vector<std::uint64_t>(count + 1, 0);
}

void CacheReader::Impl::read_tables() {
  const schema::CacheFile& f = *file;
  labels = schema::read_labels(f, count, class_names.size());
  patient_ids = schema::read_text_column(f, schema::kPatientId, count);
  source_paths = schema::read_text_column(f, schema::kSourcePath, count);
  source_hashes = schema::read_text_column(f, schema::kSourceHash, count);
  sites = schema::read_text_column(f, schema::kSite, count);
  frame_indices = schema::read_column<std::int32_t>(f, schema::kFrameIndex, count);
  checksums = schema::read_column<std::uint64_t>(f, schema::kChecksum, count);
  geometry = schema::read_geometry(f, count);
  multi_label = schema::has_dataset(f, schema::kLabelMatrix);
  if (multi_label) label_matrix = schema::read_label_matrix(f, count, class_names.size());
}

// Locating chunks one by one (H5Dget_chunk_info / _by_coord) walks the whole chunk index in HDF5
// 1.10.8: about 300 us per call at 4096 chunks, so O(N^2) for a cache. medload therefore stores
// uncompressed images contiguously (one offset for all) and reads compressed chunks with
// H5Dread_chunk, whose lookup is O(1).
void CacheReader::Impl::choose_storage(ItemStore& store, const schema::ImageShape& shape) const {
  store.bytes = shape.image_bytes;
  store.rank = shape.rank;
  store.chunk = {1, static_cast<hsize_t>(shape.height), static_cast<hsize_t>(shape.width)};
  if (shape.rank == 4) store.chunk.insert(store.chunk.begin() + 1, static_cast<hsize_t>(shape.channels));
  if (shape.contiguous) {
    store.storage = Storage::kContiguous;
    store.base = shape.contiguous_offset;  // the schema checked that every item lies inside the file
    return;
  }
  store.storage = Storage::kHdf5;
  h5::PropList create(h5::check(H5Dget_create_plist(store.dataset.id()), "read the layout of",
                                "the dataset \"" + store.name + "\"", H5I_INVALID_HID, path));
  if (H5Pget_layout(create.id()) != H5D_CHUNKED) return;
  std::vector<hsize_t> chunk(static_cast<std::size_t>(store.rank));
  H5Pget_chunk(create.id(), store.rank, chunk.data());
  const int filters = H5Pget_nfilters(create.id());
  if (chunk != store.chunk || filters > 1) return;
  if (filters == 0) {
    store.storage = Storage::kChunkRaw;
    return;
  }
  unsigned flags = 0;
  std::size_t nelements = 0;
  if (H5Pget_filter2(create.id(), 0, &flags, &nelements, nullptr, 0, nullptr, nullptr) ==
      H5Z_FILTER_DEFLATE) {
    store.storage = Storage::kChunkDeflate;
  }
}

void CacheReader::Impl::read_chunk(const ItemStore& store, std::size_t index, void* out) const {
  std::vector<hsize_t> offset(static_cast<std::size_t>(store.rank), 0);
  offset[0] = static_cast<hsize_t>(index);
  std::vector<std::uint8_t> stored;
  std::uint32_t mask = 0;
  {
    // The library lock is taken anyway; this mutex keeps the raw read and its size together.
    std::lock_guard<std::mutex> lock(hdf5_mutex);
    h5::silence_errors();
    hsize_t size = 0;
    if (H5Dget_chunk_storage_size(store.dataset.id(), offset.data(), &size) < 0 || size == 0) {
      H5Eclear2(H5E_DEFAULT);
      std::memset(out, 0, store.bytes);  // a chunk never written reads as HDF5's fill value
      return;
    }
    if (store.storage == Storage::kChunkRaw && size != store.bytes) {
      throw FormatError(item_text(store, index) + " of " + path + " is stored in " + std::to_string(size) +
                        " bytes, not " + std::to_string(store.bytes));
    }
    void* target = out;
    if (store.storage == Storage::kChunkDeflate) {
      // No deflate stream of an item is longer than zlib's bound: a larger size is damage, and
      // is not allocated.
      if (size > compressBound(static_cast<uLong>(store.bytes))) {
        throw FormatError(item_text(store, index) + " of " + path + " is stored in " + std::to_string(size) +
                          " bytes, more than any deflate stream of " + std::to_string(store.bytes) +
                          " bytes");
      }
      stored.resize(static_cast<std::size_t>(size));
      target = stored.data();
    }
    h5::check_status(H5Dread_chunk(store.dataset.id(), H5P_DEFAULT, offset.data(), &mask, target), "read",
                     item_text(store, index) + " of the dataset \"" + store.name + "\"", H5I_INVALID_HID,
                     path);
  }
  if (store.storage == Storage::kChunkRaw) return;
  if ((mask & 1u) != 0) {  // the deflate filter was skipped for this chunk: stored as is
    if (stored.size() != store.bytes) {
      throw FormatError(item_text(store, index) + " of " + path + " is stored unfiltered in " +
                        std::to_string(stored.size()) + " bytes, not " + std::to_string(store.bytes));
    }
    std::memcpy(out, stored.data(), store.bytes);
    return;
  }
  uLongf size = static_cast<uLongf>(store.bytes);
  const int status =
      uncompress(static_cast<Bytef*>(out), &size, stored.data(), static_cast<uLong>(stored.size()));
  if (status != Z_OK || size != store.bytes) {
    throw FormatError(item_text(store, index) + " of " + path + " does not inflate to " +
                      std::to_string(store.bytes) + " bytes (zlib status " + std::to_string(status) + ")");
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
               const std::string& item) {
  auto* bytes = static_cast<char*>(out);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot read " + item + " from " + path + ": " + std::strerror(errno));
    }
    if (got == 0) {
      throw IoError("cannot read " + item + " from " + path + ": the file ends at byte " +
                    std::to_string(offset + done) + " (truncated)");
    }
    done += static_cast<std::size_t>(got);
  }
}
}  // namespace

void CacheReader::Impl::read_item(const ItemStore& store, std::size_t index, void* out) const {
  if (index >= count) {
    throw std::out_of_range(item_text(store, index) + " of " + path + ", which has " + std::to_string(count));
  }
  switch (store.storage) {
    case Storage::kContiguous:
      if (store.base == schema::kNotWritten) {
        std::memset(out, 0, store.bytes);
      } else {
        pread_all(fd.get(), out, store.bytes, store.base + static_cast<std::uint64_t>(index) * store.bytes,
                  path, item_text(store, index));
      }
      return;
    case Storage::kChunkRaw:
    case Storage::kChunkDeflate:
      read_chunk(store, index, out);
      return;
    case Storage::kHdf5: {
      std::lock_guard<std::mutex> lock(hdf5_mutex);
      h5::read_rows(store.dataset, index, 1, store.memory_type, out);
      return;
    }
  }
}

void CacheReader::read_image(std::size_t index, void* out) const {
  impl_->read_item(impl_->images, index, out);
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

void CacheReader::Impl::no_targets(const char* what, const char* column) const {
  if (schema_version < schema::kTargetsSchemaVersion) {
    throw FormatError(path + " has no " + what + " (schema version " + std::to_string(schema_version) +
                      ", built before targets; rebuild it with " + column + ")");
  }
  throw FormatError(path + " has no " + what + " (built without " + column + "; rebuild it with one)");
}

namespace {

void check_index(std::size_t index, std::size_t count, const std::string& path) {
  if (index >= count) {
    throw std::out_of_range("image " + std::to_string(index) + " of " + path + ", which has " +
                            std::to_string(count));
  }
}

}  // namespace

bool CacheReader::has_targets() const noexcept { return impl_->has_targets; }
bool CacheReader::has_masks() const noexcept { return impl_->masks.dataset.valid(); }

void CacheReader::read_mask(std::size_t index, std::uint16_t* out) const {
  const Impl& d = *impl_;
  if (!d.masks.dataset.valid()) d.no_targets("masks", "a mask column");
  d.read_item(d.masks, index, out);
}

TargetState CacheReader::mask_state(std::size_t index) const {
  check_index(index, impl_->count, impl_->path);
  return impl_->mask_states[index];
}

const std::vector<TargetState>& CacheReader::mask_states() const noexcept { return impl_->mask_states; }
const std::vector<TargetState>& CacheReader::box_states() const noexcept { return impl_->box_states; }
const std::vector<TargetState>& CacheReader::landmark_states() const noexcept {
  return impl_->landmark_states;
}

std::vector<Box> CacheReader::boxes(std::size_t index) const {
  const Impl& d = *impl_;
  if (!d.has_targets) d.no_targets("boxes", "a boxes column");
  check_index(index, d.count, d.path);
  const detail::TargetColumns& t = d.targets;
  std::vector<Box> boxes;
  for (std::uint64_t r = t.box_offsets[index]; r < t.box_offsets[index + 1]; ++r) {
    const double* b = &t.boxes[4 * r];
    boxes.push_back({b[0], b[1], b[2], b[3], t.box_labels[r]});
  }
  return boxes;
}

std::vector<Landmark> CacheReader::landmarks(std::size_t index) const {
  const Impl& d = *impl_;
  if (!d.has_targets) d.no_targets("landmarks", "a landmarks column");
  check_index(index, d.count, d.path);
  const detail::TargetColumns& t = d.targets;
  std::vector<Landmark> points;
  for (std::uint64_t r = t.landmark_offsets[index]; r < t.landmark_offsets[index + 1]; ++r) {
    points.push_back({t.landmarks[2 * r], t.landmarks[2 * r + 1], t.landmark_labels[r]});
  }
  return points;
}

std::size_t CacheReader::box_count() const noexcept { return impl_->targets.box_labels.size(); }
std::size_t CacheReader::landmark_count() const noexcept { return impl_->targets.landmark_labels.size(); }
const std::vector<std::uint32_t>& CacheReader::boxes_dropped() const noexcept { return impl_->boxes_dropped; }
const std::vector<std::uint32_t>& CacheReader::landmarks_dropped() const noexcept {
  return impl_->landmarks_dropped;
}
const TargetClasses& CacheReader::target_classes() const noexcept { return impl_->target_classes; }

const std::vector<std::int64_t>& CacheReader::labels() const noexcept { return impl_->labels; }
bool CacheReader::multi_label() const noexcept { return impl_->multi_label; }
const std::vector<std::int8_t>& CacheReader::label_matrix() const noexcept { return impl_->label_matrix; }
const std::vector<std::string>& CacheReader::class_names() const noexcept { return impl_->class_names; }
const std::vector<std::string>& CacheReader::patient_ids() const noexcept { return impl_->patient_ids; }
const std::vector<std::string>& CacheReader::source_paths() const noexcept { return impl_->source_paths; }
const std::vector<std::string>& CacheReader::source_hashes() const noexcept { return impl_->source_hashes; }
const std::vector<std::string>& CacheReader::sites() const noexcept { return impl_->sites; }
const std::vector<std::int32_t>& CacheReader::frame_indices() const noexcept { return impl_->frame_indices; }
const std::vector<std::uint64_t>& CacheReader::checksums() const noexcept { return impl_->checksums; }

std::vector<std::string> CacheReader::meta_names() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return schema::meta_names(*impl_->file);
}

MetaColumn CacheReader::meta(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return schema::read_meta(*impl_->file, name, impl_->count);
}

Geometry CacheReader::geometry(std::size_t index) const {
  const Impl& d = *impl_;
  if (index >= d.count) {
    throw std::out_of_range("image " + std::to_string(index) + " of " + d.path + ", which has " +
                            std::to_string(d.count));
  }
  return d.geometry.at(index);
}

std::vector<RejectedFile> CacheReader::rejected() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  std::vector<RejectedFile> files;
  for (auto& record : schema::read_rejected(*impl_->file)) {
    files.push_back({std::move(record.path), std::move(record.reason), std::move(record.detail)});
  }
  return files;
}

const std::string& CacheReader::config_json() const noexcept { return impl_->config_json; }
const std::string& CacheReader::config_hash() const noexcept { return impl_->config_hash; }
const std::string& CacheReader::library_version() const noexcept { return impl_->library_version; }
std::int64_t CacheReader::schema_version() const noexcept { return impl_->schema_version; }

bool CacheReader::has_attribute(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::has_attribute(impl_->file->id(), name);
}

std::string CacheReader::attribute(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::attribute_as_text(impl_->file->id(), name);
}

std::vector<std::string> CacheReader::attribute_names() const {
  std::lock_guard<std::mutex> lock(impl_->hdf5_mutex);
  return h5::list_attributes(impl_->file->id());
}

namespace {

// The checking child's answer on its pipe: one of these bytes, then the encoded values of the
// file's variable-length strings (h5::encode_variable_length_values) or the error message.
constexpr char kAnswerValues = 'V';
constexpr char kAnswerError = 'E';

// Most bytes the parent takes from a checking child for a file of `file_bytes`: the strings sit
// once each in the file's global heap (16 bytes of header each, more than the 4 of their encoded
// length), so an honest answer is smaller than the file plus its paths.
std::size_t answer_limit(std::uint64_t file_bytes) { return 2 * file_bytes + (std::size_t{1} << 20); }

void write_all(int fd, const std::string& bytes) {
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// The child: reads the whole cache as CacheReader does, then every variable-length string
// (splits, attributes other tools added: what a damaged global heap crashes on), and sends the
// strings' values, or what went wrong, to `answer_fd`.
[[noreturn]] void run_check(const std::string& path, int answer_fd) {
  std::string message;
  try {
    { const CacheReader reader(path); }
    const h5::File file = h5::File::open(path);
    const h5::VariableLengthValues values =
        h5::read_variable_length_strings(file.id(), h5::variable_length_strings(file.id()));
    write_all(answer_fd, kAnswerValues + h5::encode_variable_length_values(values));
    ::_exit(0);
  } catch (const std::bad_alloc&) {
    message = path +
              " is not a usable medload cache: reading it needed more than 4 GiB of memory "
              "(a damaged size inside the file)";
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "an unknown error";
  }
  write_all(answer_fd, kAnswerError + message);
  ::_exit(1);
}

// How a checking child ended, and what it answered.
struct CheckOutcome {
  int status = 0;
  bool timed_out = false;
  bool too_long = false;  // it sent more than the parent takes: killed
  std::string answer;
};

enum class Pipe { kEmpty, kRead, kEnd };

// Appends what `fd` holds now (waiting at most `wait_ms` for it) to `answer`.
Pipe read_available(int fd, int wait_ms, std::string& answer) {
  pollfd ready{fd, POLLIN, 0};
  if (::poll(&ready, 1, wait_ms) <= 0) return Pipe::kEmpty;
  char buffer[1 << 16];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? Pipe::kEmpty : Pipe::kEnd;
  answer.append(buffer, static_cast<std::size_t>(n));
  return n > 0 ? Pipe::kRead : Pipe::kEnd;
}

// Reads the child's answer while it runs (a long one would fill the pipe and stall it) and waits
// for it, within `limit_seconds` and `max_bytes`: past either it is killed.
CheckOutcome await_check(pid_t pid, int fd, int limit_seconds, std::size_t max_bytes) {
  CheckOutcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limit_seconds);
  const auto stop = [&](bool& why) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &outcome.status, 0);
    why = true;
    return outcome;
  };
  bool open = true;
  while (::waitpid(pid, &outcome.status, WNOHANG) == 0) {
    if (open) {
      open = read_available(fd, 5, outcome.answer) != Pipe::kEnd;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (outcome.answer.size() > max_bytes) return stop(outcome.too_long);
    if (std::chrono::steady_clock::now() > deadline) return stop(outcome.timed_out);
  }
  // What is left in the pipe, without blocking (a process forked meanwhile may hold its end).
  while (open && outcome.answer.size() <= max_bytes && read_available(fd, 0, outcome.answer) == Pipe::kRead) {
  }
  outcome.too_long = outcome.answer.size() > max_bytes;
  return outcome;
}

// The values the child read, or FormatError naming the file and what happened.
h5::VariableLengthValues checked_answer(const std::string& path, const CheckOutcome& outcome,
                                        int limit_seconds, std::size_t max_bytes) {
  const std::string unusable = path + " is not a usable medload cache: ";
  if (outcome.timed_out) {
    throw FormatError(unusable + "reading it did not finish within " + std::to_string(limit_seconds) +
                      " s (libhdf5 loops on some damaged files)");
  }
  if (outcome.too_long) {
    throw FormatError(unusable + "its checking child's answer is longer than " + std::to_string(max_bytes) +
                      " bytes, more than its variable-length strings can hold");
  }
  if (WIFSIGNALED(outcome.status)) {
    throw FormatError(unusable + "libhdf5 crashed reading it (signal " +
                      std::to_string(WTERMSIG(outcome.status)) +
                      ", in a separate process): the file is damaged");
  }
  const std::string& answer = outcome.answer;
  if (WEXITSTATUS(outcome.status) != 0) {
    // The validation's own message (it names the file), or what libhdf5 reported.
    const std::string message = !answer.empty() && answer[0] == kAnswerError ? answer.substr(1) : "";
    throw FormatError(message.empty() ? path + " is not a usable medload cache" : message);
  }
  if (answer.empty() || answer[0] != kAnswerValues) {
    throw FormatError(unusable + "its checking child passed it but answered " +
                      (answer.empty() ? std::string("nothing") : "something else than its strings"));
  }
  return h5::decode_variable_length_values(std::string_view(answer).substr(1), path);
}

}  // namespace

void check_cache_in_child(const std::string& path, int limit_seconds) {
  core::open_regular_file(path, "the cache");  // a FIFO or a device: refused here, not in the child
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw IoError(std::string("cannot check ") + path + ": " + std::strerror(errno));
  core::FileDescriptor read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  // The file as it is before the child reads it: if it changes meanwhile, the next open checks
  // the new one.
  const auto identity = identity_of(path);
  const std::size_t max_bytes =
      answer_limit(identity ? static_cast<std::uint64_t>(std::get<2>(*identity)) : 0);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    throw IoError("cannot check " + path + " in a child process: " + std::strerror(error));
  }
  if (pid == 0) {
    read_end.reset();
    g_checking_child = true;
    core::end_with_parent(parent);
    core::default_crash_signals();
    core::cap_cpu_seconds(static_cast<unsigned>(std::max(1, limit_seconds)));
    core::cap_address_space_growth(std::uint64_t{4} << 30);
    core::disable_core_files();
    run_check(path, write_end.get());
  }
  write_end.reset();
  const CheckOutcome outcome = await_check(pid, read_end.get(), limit_seconds, max_bytes);
  read_end.reset();
  auto values = std::make_shared<const h5::VariableLengthValues>(
      checked_answer(path, outcome, limit_seconds, max_bytes));
  if (identity) {
    const std::lock_guard<std::mutex> lock(g_checked_mutex);
    g_checked[*identity] = std::move(values);
  }
}

namespace schema {

void contain_variable_length_strings(const std::string& path, h5::File& file) {
  if (g_checking_child) return;  // the child converts them itself: that is its job
  if (h5::variable_length_strings(file.id()).empty()) {
    file.distrust(nullptr);  // none to read, and any read of one is refused
    return;
  }
  // The values are looked up for the file that is open, so a file replaced between the check
  // and the open is checked again.
  for (int checks = 0;; ++checks) {
    if (auto checked = checked_values(identity_of(file))) {
      file.distrust(std::move(checked));
      return;
    }
    if (checks == 2) {
      throw FormatError(path + " is not a usable medload cache: it changed while it was being checked");
    }
    file.close();
    check_cache_in_child(path);
    file = h5::File::open(path);
  }
}

}  // namespace schema

}  // namespace medload::loader
