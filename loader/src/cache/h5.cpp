#include "h5.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>

#include "medload/core/regular_file.h"
#include "medload/core/text.h"

namespace medload::loader::h5 {

namespace {

// HDF5 closes what is still open when the process exits. A file whose close failed (a full disk)
// stays in HDF5 1.10.8's tables, and closing it again at exit crashes (H5F__close_cb: a segfault
// after medload has reported the error and chosen its exit code). Without that pass the process
// ends as it meant to: the system closes the descriptors, and medload removes its temporaries
// itself. Set when the library is loaded, before any HDF5 call (it has no effect after one).
const bool kNoCloseAtExit = [] {
  H5dont_atexit();
  return true;
}();

}  // namespace

void silence_errors() noexcept {
  // The thread-safe library keeps the automatic-printing setting per thread.
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

namespace {

herr_t collect_message(unsigned n, const H5E_error2_t* entry, void* data) {
  auto* messages = static_cast<std::vector<std::string>*>(data);
  if (entry->desc != nullptr && entry->desc[0] != '\0') messages->emplace_back(entry->desc);
  return 0;
}

std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string last_error_message() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &messages);
  H5Eclear2(H5E_DEFAULT);
  // The outermost message says what failed at the API, the innermost why; keep both, once each.
  if (messages.empty()) return "";
  std::string text = messages.front();
  if (messages.size() > 1 && messages.back() != messages.front()) text += ": " + messages.back();
  return text;
}

std::string file_name(hid_t id) {
  if (id < 0) return "";
  const ssize_t size = H5Fget_name(id, nullptr, 0);
  if (size <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return "";
  }
  std::string name(static_cast<std::size_t>(size) + 1, '\0');
  H5Fget_name(id, name.data(), name.size());
  name.resize(static_cast<std::size_t>(size));
  return name;
}

std::string object_name(hid_t id) {
  if (id < 0) return "";
  const ssize_t size = H5Iget_name(id, nullptr, 0);
  if (size <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return "";
  }
  std::string name(static_cast<std::size_t>(size) + 1, '\0');
  H5Iget_name(id, name.data(), name.size());
  name.resize(static_cast<std::size_t>(size));
  return name;
}

void fail(const std::string& action, const std::string& object, hid_t loc, const std::string& file) {
  const std::string reason = last_error_message();  // read before other calls reset the stack
  std::string where = file.empty() ? file_name(loc) : file;
  std::string message = "Unable to " + action + " " + object;
  if (!where.empty()) message += " in " + where;
  if (!reason.empty()) message += " (" + reason + ")";
  throw HdfError(message);
}

// ---- distrusted files --------------------------------------------------------------------------

namespace {

// The open files File::distrust marked, by file id, with what their checking child read. An
// object's H5Iget_file_id is the id its file was opened as, so any loc finds its file here.
std::mutex g_distrusted_mutex;
std::map<hid_t, std::shared_ptr<const VariableLengthValues>> g_distrusted;

std::atomic<std::uint64_t> g_conversions{0};

// Whether libhdf5 may convert variable-length strings of the file of `loc`, and if not, what
// was read of them instead.
struct Trust {
  bool distrusted = false;
  std::shared_ptr<const VariableLengthValues> checked;  // null: nothing was read
};

Trust trust_of(hid_t loc) {
  {
    const std::lock_guard<std::mutex> lock(g_distrusted_mutex);
    if (g_distrusted.empty()) return {};
  }
  const Handle<H5Fclose> file(H5Iget_file_id(loc));
  if (!file.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return {true, nullptr};  // a file that cannot be named cannot be shown to be trusted
  }
  const std::lock_guard<std::mutex> lock(g_distrusted_mutex);
  const auto found = g_distrusted.find(file.id());
  if (found == g_distrusted.end()) return {};
  return {true, found->second};
}

// The values a distrusted file's checking child read for `where`, `count` of them.
std::vector<std::string> checked_strings(const Trust& trust, const VariableLengthString& where,
                                         std::size_t count, const std::string& object, hid_t loc) {
  const std::string prefix = file_name(loc) + " is not a usable medload cache: " + object;
  const auto found = trust.checked ? trust.checked->find(where) : VariableLengthValues::const_iterator{};
  if (!trust.checked || found == trust.checked->end()) {
    throw FormatError(prefix +
                      " holds variable-length strings its checking child did not read (this process "
                      "converts none of a file it did not write)");
  }
  if (found->second.size() != count) {
    throw FormatError(prefix + " holds " + std::to_string(count) + " strings, its checking child read " +
                      std::to_string(found->second.size()));
  }
  return found->second;
}

}  // namespace

std::uint64_t variable_length_conversions() noexcept { return g_conversions.load(); }

// ---- File --------------------------------------------------------------------------------------

File::~File() { forget_distrust(); }

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    forget_distrust();
    handle_ = std::move(other.handle_);
    path_ = std::move(other.path_);
  }
  return *this;
}

void File::distrust(std::shared_ptr<const VariableLengthValues> checked) {
  if (!handle_.valid()) return;
  const std::lock_guard<std::mutex> lock(g_distrusted_mutex);
  g_distrusted[handle_.id()] = checked ? std::move(checked) : std::make_shared<const VariableLengthValues>();
}

void File::forget_distrust() noexcept {
  if (!handle_.valid()) return;
  const std::lock_guard<std::mutex> lock(g_distrusted_mutex);
  g_distrusted.erase(handle_.id());
}

File File::open(const std::string& path, bool read_write) {
  silence_errors();
  // libhdf5 opens without O_NONBLOCK: a FIFO or a device given as a cache would block it forever.
  try {
    core::open_regular_file(path, "the HDF5 file");
  } catch (const IoError& e) {
    throw HdfError(e.what());
  }
  File file;
  file.path_ = path;
  file.handle_ =
      Handle<H5Fclose>(check(H5Fopen(path.c_str(), read_write ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT),
                             "open", "the file", H5I_INVALID_HID, path));
  return file;
}

File File::create(const std::string& path, bool latest_format) {
  silence_errors();
  PropList access(
      check(H5Pcreate(H5P_FILE_ACCESS), "create", "a file access property list", H5I_INVALID_HID, path));
  if (latest_format) {
    check_status(H5Pset_libver_bounds(access.id(), H5F_LIBVER_V110, H5F_LIBVER_V110),
                 "set the format version of", "the file", H5I_INVALID_HID, path);
  }
  // A new file of our own: what has the name (a file to replace, or a link put there to have a
  // file truncated elsewhere) is removed, and H5F_ACC_EXCL (O_EXCL) creates the file or fails,
  // never following a link.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) ::unlink(path.c_str());
  File file;
  file.path_ = path;
  file.handle_ = Handle<H5Fclose>(check(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, access.id()),
                                        "create", "the file", H5I_INVALID_HID, path));
  return file;
}

void File::flush() const {
  silence_errors();
  check_status(H5Fflush(handle_.id(), H5F_SCOPE_GLOBAL), "flush", "the file", H5I_INVALID_HID, path_);
}

void File::close() {
  silence_errors();
  if (!handle_.valid()) return;
  // With an object of the file still open, H5Fclose only marks the file: the real flush happens
  // when that object closes, in a destructor, where a full disk goes unnoticed (write_split once
  // published a cache HDF5 could not open this way). close() is where errors are reported, so it
  // insists on being the real close.
  const ssize_t open_objects = H5Fget_obj_count(handle_.id(), H5F_OBJ_DATASET | H5F_OBJ_GROUP |
                                                                  H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
  if (open_objects > 0) {
    throw HdfError("Unable to close the file " + path_ + ": " + std::to_string(open_objects) +
                   " of its objects are still open (a medload bug: close them first)");
  }
  forget_distrust();
  const hid_t id = handle_.release();
  check_status(H5Fclose(id), "close", "the file", H5I_INVALID_HID, path_);
}

// ---- types -------------------------------------------------------------------------------------

Datatype string_type() {
  silence_errors();
  Datatype type(check(H5Tcopy(H5T_C_S1), "copy", "the string type", H5I_INVALID_HID));
  check_status(H5Tset_size(type.id(), H5T_VARIABLE), "size", "the string type", H5I_INVALID_HID);
  check_status(H5Tset_cset(type.id(), H5T_CSET_UTF8), "set the character set of", "the string type",
               H5I_INVALID_HID);
  return type;
}

// ---- links, groups, datasets -------------------------------------------------------------------

bool exists(hid_t loc, const std::string& path) {
  silence_errors();
  std::string prefix = path.rfind('/', 0) == 0 ? "/" : "";
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    prefix += part;
    const htri_t found = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
    if (found <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    prefix += "/";
  }
  return true;
}

Group open_group(hid_t loc, const std::string& name) {
  silence_errors();
  return Group(check(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), "open", "the group \"" + name + "\"", loc));
}

Group create_group(hid_t loc, const std::string& name) {
  silence_errors();
  PropList links(check(H5Pcreate(H5P_LINK_CREATE), "create", "a link property list", loc));
  H5Pset_create_intermediate_group(links.id(), 1);
  return Group(check(H5Gcreate2(loc, name.c_str(), links.id(), H5P_DEFAULT, H5P_DEFAULT), "create",
                     "the group \"" + name + "\"", loc));
}

Group require_group(hid_t loc, const std::string& name) {
  return exists(loc, name) ? open_group(loc, name) : create_group(loc, name);
}

namespace {
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> list_children(hid_t group) {
  silence_errors();
  std::vector<std::string> names;
  hsize_t index = 0;
  check_status(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, collect_link, &names), "list",
               "the children of \"" + object_name(group) + "\"", group);
  return names;
}

void remove(hid_t loc, const std::string& name) {
  silence_errors();
  check_status(H5Ldelete(loc, name.c_str(), H5P_DEFAULT), "remove", "\"" + name + "\"", loc);
}

Dataset open_dataset(hid_t loc, const std::string& name) {
  silence_errors();
  return Dataset(
      check(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), "open", "the dataset \"" + name + "\"", loc));
}

Dataset create_dataset(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
                       const DatasetLayout& layout) {
  silence_errors();
  const std::string object = "the dataset \"" + name + "\"";
  const std::vector<hsize_t>& max_dims = layout.max_dims.empty() ? dims : layout.max_dims;
  if (max_dims.size() != dims.size()) {
    throw HdfError("Unable to create " + object + " in " + file_name(loc) + " (max_dims has " +
                   std::to_string(max_dims.size()) + " dimensions, dims " + std::to_string(dims.size()) +
                   ")");
  }
  Dataspace space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()),
                        "create", "the dataspace of " + object, loc));
  PropList create(
      check(H5Pcreate(H5P_DATASET_CREATE), "create", "the creation properties of " + object, loc));
  if (!layout.chunk.empty()) {
    if (layout.chunk.size() != dims.size()) {
      throw HdfError("Unable to create " + object + " in " + file_name(loc) + " (chunk has " +
                     std::to_string(layout.chunk.size()) + " dimensions, dims " +
                     std::to_string(dims.size()) + ")");
    }
    check_status(H5Pset_chunk(create.id(), static_cast<int>(layout.chunk.size()), layout.chunk.data()),
                 "chunk", object, loc);
    if (layout.deflate > 0) {
      check_status(H5Pset_deflate(create.id(), static_cast<unsigned>(layout.deflate)), "compress", object,
                   loc);
    }
  } else if (layout.deflate > 0) {
    throw HdfError("Unable to create " + object + " in " + file_name(loc) + " (deflate needs a chunk shape)");
  }
  // Links to datasets in nested groups ("meta/age") create their parents.
  PropList links(check(H5Pcreate(H5P_LINK_CREATE), "create", "a link property list", loc));
  H5Pset_create_intermediate_group(links.id(), 1);
  return Dataset(check(H5Dcreate2(loc, name.c_str(), type, space.id(), links.id(), create.id(), H5P_DEFAULT),
                       "create", object, loc));
}

std::vector<hsize_t> space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail("read", "the shape of a dataspace", space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

std::vector<hsize_t> shape(const Dataset& dataset) {
  silence_errors();
  Dataspace space(check(H5Dget_space(dataset.id()), "read",
                        "the shape of \"" + object_name(dataset.id()) + "\"", dataset.id()));
  return space_shape(space.id());
}

Datatype dataset_type(const Dataset& dataset) {
  silence_errors();
  return Datatype(check(H5Dget_type(dataset.id()), "read",
                        "the type of \"" + object_name(dataset.id()) + "\"", dataset.id()));
}

Datatype fixed_string_type(std::size_t size) {
  silence_errors();
  Datatype type(check(H5Tcopy(H5T_C_S1), "copy", "the string type", H5I_INVALID_HID));
  check_status(H5Tset_size(type.id(), std::max<std::size_t>(1, size)), "size", "the string type", H5I_INVALID_HID);
  check_status(H5Tset_strpad(type.id(), H5T_STR_NULLPAD), "pad", "the string type", H5I_INVALID_HID);
  check_status(H5Tset_cset(type.id(), H5T_CSET_UTF8), "set the character set of", "the string type",
               H5I_INVALID_HID);
  return type;
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  std::size_t width = 1;
  for (const std::string& v : values) width = std::max(width, v.size());
  Datatype type = fixed_string_type(width);
  const auto n = static_cast<hsize_t>(values.size());
  // Rows go out a block at a time, so one long value does not make an N x width buffer.
  constexpr hsize_t kBlock = 4096;
  DatasetLayout layout;
  if (n > 0) {
    layout.chunk = {std::min(n, kBlock)};
    layout.deflate = 4;
  }
  Dataset dataset = create_dataset(loc, name, type.id(), {n}, layout);
  std::vector<char> buffer;
  for (hsize_t start = 0; start < n; start += kBlock) {
    const hsize_t count = std::min(kBlock, n - start);
    buffer.assign(static_cast<std::size_t>(count) * width, '\0');
    for (hsize_t i = 0; i < count; ++i) {
      const std::string& v = values[static_cast<std::size_t>(start + i)];
      std::copy(v.begin(), v.end(), buffer.begin() + static_cast<std::ptrdiff_t>(i * width));
    }
    write_rows(dataset, start, count, type.id(), buffer.data());
  }
}

namespace {

// Most bytes of fixed-length strings read at once (one text column or attribute).
constexpr std::size_t kMaxStringBytes = std::size_t{1} << 31;

// Reads strings of either kind from a dataset or attribute through `read(memtype, buffer)`.
// Variable-length ones of a distrusted file come from what its checking child read at `where`,
// and `read` is not called.
template <class ReadFn>
std::vector<std::string> read_string_values(hid_t file_type, std::size_t count, const ReadFn& read,
                                            const std::string& object, hid_t loc,
                                            const VariableLengthString& where) {
  std::vector<std::string> values(count);
  if (count == 0) return values;
  if (H5Tget_class(file_type) != H5T_STRING) {
    throw HdfError("Unable to read " + object + " in " + file_name(loc) + " as text (it is not a string)");
  }
  if (H5Tis_variable_str(file_type) > 0) {
    const Trust trust = trust_of(loc);
    if (trust.distrusted) return checked_strings(trust, where, count, object, loc);
    ++g_conversions;
    Datatype mem = string_type();
    std::vector<char*> pointers(count, nullptr);
    // Frees what HDF5 allocated for each string, also when a read failed half-way.
    const auto reclaim = [&] {
      hsize_t dims[1] = {static_cast<hsize_t>(count)};
      Dataspace space(H5Screate_simple(1, dims, nullptr));
      H5Dvlen_reclaim(mem.id(), space.id(), H5P_DEFAULT, pointers.data());
    };
    try {
      read(mem.id(), pointers.data());
    } catch (...) {
      reclaim();
      throw;
    }
    for (std::size_t i = 0; i < count; ++i) values[i] = pointers[i] != nullptr ? pointers[i] : "";
    reclaim();
  } else {
    const std::size_t size = H5Tget_size(file_type);
    std::size_t bytes = 0;
    // What the header claims is checked before it is allocated (schema.cpp also checks it
    // against the storage in the file).
    if (size == 0 || __builtin_mul_overflow(size, count, &bytes) || bytes > kMaxStringBytes) {
      throw HdfError("Unable to read " + object + " in " + file_name(loc) + " (it declares " +
                     std::to_string(count) + " strings of " + std::to_string(size) + " bytes)");
    }
    // The file's own character set: HDF5 converts neither way between ASCII (h5py's `S` strings)
    // and UTF-8 (what medload writes). NUL-padded, so a value filling its whole width keeps its
    // last byte.
    Datatype mem = fixed_string_type(size);
    check_status(H5Tset_cset(mem.id(), H5Tget_cset(file_type)), "set the character set of", object, loc);
    std::vector<char> buffer(bytes);
    read(mem.id(), buffer.data());
    for (std::size_t i = 0; i < count; ++i) {
      const char* begin = buffer.data() + i * size;
      values[i] = std::string(begin, strnlen(begin, size));
    }
  }
  return values;
}

// What HDF5 may allocate for the variable-length strings of one read. The global heap holds each
// string once, uncompressed, inside the file, so a read can never need more than the file's size
// (plus a NUL a string): a heap entry claiming more is damage, and is refused before anything is
// allocated for it, where HDF5's own allocator would take what it claims (4 GB for a 28 KB file).
struct VlenBudget {
  std::uint64_t left = 0;
  bool exceeded = false;
};

void* budgeted_allocate(std::size_t size, void* info) {
  auto* budget = static_cast<VlenBudget*>(info);
  if (size > budget->left) {
    budget->exceeded = true;
    return nullptr;
  }
  budget->left -= size;
  return std::malloc(size);
}

void budgeted_free(void* memory, void*) { std::free(memory); }

}  // namespace

std::vector<std::string> read_strings(hid_t loc, const std::string& name) {
  Dataset dataset = open_dataset(loc, name);
  Datatype type = dataset_type(dataset);
  hsize_t total = 1;
  for (hsize_t d : shape(dataset)) total *= d;
  const std::string object = "the dataset \"" + name + "\"";
  // Variable-length strings are read within the file's size (VlenBudget); fixed-length ones
  // declare their size in the header, which read_string_values checks, and need no budget.
  const auto read = [&](hid_t mem, void* buffer) {
    if (H5Tis_variable_str(mem) <= 0) {
      check_status(H5Dread(dataset.id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer), "read", object, loc);
      return;
    }
    hsize_t file_bytes = 0;
    {
      Handle<H5Fclose> file(check(H5Iget_file_id(dataset.id()), "find the file of", object, loc));
      check_status(H5Fget_filesize(file.id(), &file_bytes), "measure the file of", object, loc);
    }
    VlenBudget budget{file_bytes + total, false};
    PropList transfer(check(H5Pcreate(H5P_DATASET_XFER), "read", object, loc));
    check_status(H5Pset_vlen_mem_manager(transfer.id(), budgeted_allocate, &budget, budgeted_free, nullptr),
                 "read", object, loc);
    if (H5Dread(dataset.id(), mem, H5S_ALL, H5S_ALL, transfer.id(), buffer) >= 0) return;
    if (budget.exceeded) {
      throw HdfError("Unable to read " + object + " in " + file_name(loc) +
                     ": its variable-length strings claim more bytes than the whole file holds (" +
                     std::to_string(file_bytes) + ")");
    }
    check_status(-1, "read", object, loc);
  };
  return read_string_values(type.id(), static_cast<std::size_t>(total), read, object, loc,
                            {object_name(dataset.id()), ""});
}

namespace {
// Selects rows [start, start + count) of `dataset` and returns (file space, memory space).
std::pair<Dataspace, Dataspace> select_rows(const Dataset& dataset, hsize_t start, hsize_t count) {
  const std::string object = "the dataset \"" + object_name(dataset.id()) + "\"";
  Dataspace file_space(check(H5Dget_space(dataset.id()), "select rows of", object, dataset.id()));
  std::vector<hsize_t> dims = space_shape(file_space.id());
  if (dims.empty() || start + count > dims[0]) {
    throw HdfError("Unable to select rows " + std::to_string(start) + ".." + std::to_string(start + count) +
                   " of " + object + " in " + file_name(dataset.id()) + " (it has " +
                   std::to_string(dims.empty() ? 0 : dims[0]) + " rows)");
  }
  std::vector<hsize_t> offset(dims.size(), 0);
  offset[0] = start;
  dims[0] = count;
  check_status(
      H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, offset.data(), nullptr, dims.data(), nullptr),
      "select rows of", object, dataset.id());
  Dataspace memory(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         "select rows of", object, dataset.id()));
  return {std::move(file_space), std::move(memory)};
}
}  // namespace

void write_rows(const Dataset& dataset, hsize_t start, hsize_t count, hid_t type, const void* data) {
  silence_errors();
  if (count == 0) return;
  auto [file_space, memory] = select_rows(dataset, start, count);
  check_status(H5Dwrite(dataset.id(), type, memory.id(), file_space.id(), H5P_DEFAULT, data), "write",
               "rows " + std::to_string(start) + ".." + std::to_string(start + count) + " of \"" +
                   object_name(dataset.id()) + "\"",
               dataset.id());
}

void read_rows(const Dataset& dataset, hsize_t start, hsize_t count, hid_t type, void* data) {
  silence_errors();
  if (count == 0) return;
  if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
    if (trust_of(dataset.id()).distrusted) {
      throw FormatError(file_name(dataset.id()) + " is not a usable medload cache: rows of \"" +
                        object_name(dataset.id()) +
                        "\" read as variable-length strings (this process converts none of a file it did "
                        "not write)");
    }
    ++g_conversions;
  }
  auto [file_space, memory] = select_rows(dataset, start, count);
  check_status(H5Dread(dataset.id(), type, memory.id(), file_space.id(), H5P_DEFAULT, data), "read",
               "rows " + std::to_string(start) + ".." + std::to_string(start + count) + " of \"" +
                   object_name(dataset.id()) + "\"",
               dataset.id());
}

void resize(const Dataset& dataset, const std::vector<hsize_t>& dims) {
  silence_errors();
  check_status(H5Dset_extent(dataset.id(), dims.data()), "resize", "\"" + object_name(dataset.id()) + "\"",
               dataset.id());
}

// ---- attributes --------------------------------------------------------------------------------

bool has_attribute(hid_t loc, const std::string& name) {
  silence_errors();
  const htri_t found = H5Aexists(loc, name.c_str());
  if (found < 0) fail("look for", "the attribute \"" + name + "\"", loc);
  return found > 0;
}

std::vector<std::string> list_attributes(hid_t loc) {
  silence_errors();
  std::vector<std::string> names;
  hsize_t index = 0;
  check_status(H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &index, collect_attribute, &names), "list",
               "the attributes of \"" + object_name(loc) + "\"", loc);
  return names;
}

namespace {

Attribute recreate_attribute(hid_t loc, const std::string& name, hid_t type, hid_t space) {
  if (has_attribute(loc, name)) {
    check_status(H5Adelete(loc, name.c_str()), "replace", "the attribute \"" + name + "\"", loc);
  }
  return Attribute(check(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "create",
                         "the attribute \"" + name + "\"", loc));
}

Attribute open_attribute(hid_t loc, const std::string& name) {
  silence_errors();
  return Attribute(
      check(H5Aopen(loc, name.c_str(), H5P_DEFAULT), "open", "the attribute \"" + name + "\"", loc));
}

bool attribute_is_scalar(const Attribute& attribute) {
  Dataspace space(H5Aget_space(attribute.id()));
  return H5Sget_simple_extent_type(space.id()) == H5S_SCALAR;
}

std::size_t attribute_size(const Attribute& attribute) {
  Dataspace space(H5Aget_space(attribute.id()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

template <class T>
void write_scalar_attribute(hid_t loc, const std::string& name, T value) {
  silence_errors();
  Dataspace space(check(H5Screate(H5S_SCALAR), "create", "the dataspace of \"" + name + "\"", loc));
  Attribute attribute = recreate_attribute(loc, name, native_type<T>(), space.id());
  check_status(H5Awrite(attribute.id(), native_type<T>(), &value), "write", "the attribute \"" + name + "\"",
               loc);
}

}  // namespace

void write_attribute(hid_t loc, const std::string& name, const std::string& value) {
  silence_errors();
  Datatype type = fixed_string_type(value.size());
  Dataspace space(check(H5Screate(H5S_SCALAR), "create", "the dataspace of \"" + name + "\"", loc));
  Attribute attribute = recreate_attribute(loc, name, type.id(), space.id());
  std::vector<char> buffer(std::max<std::size_t>(1, value.size()), '\0');
  std::copy(value.begin(), value.end(), buffer.begin());
  check_status(H5Awrite(attribute.id(), type.id(), buffer.data()), "write", "the attribute \"" + name + "\"", loc);
}

void write_attribute(hid_t loc, const std::string& name, std::int64_t value) {
  write_scalar_attribute(loc, name, value);
}

void write_attribute(hid_t loc, const std::string& name, double value) {
  write_scalar_attribute(loc, name, value);
}

void write_attribute(hid_t loc, const std::string& name, const std::vector<double>& values) {
  silence_errors();
  const hsize_t dims[1] = {static_cast<hsize_t>(values.size())};
  Dataspace space(
      check(H5Screate_simple(1, dims, nullptr), "create", "the dataspace of \"" + name + "\"", loc));
  Attribute attribute = recreate_attribute(loc, name, H5T_NATIVE_DOUBLE, space.id());
  check_status(H5Awrite(attribute.id(), H5T_NATIVE_DOUBLE, values.data()), "write",
               "the attribute \"" + name + "\"", loc);
}

namespace {

// Every string of attribute `name` of `loc` (at least one; a distrusted file's variable-length
// ones from its checked values, see read_string_values).
std::vector<std::string> read_attribute_strings(hid_t loc, const std::string& name) {
  Attribute attribute = open_attribute(loc, name);
  Datatype type(
      check(H5Aget_type(attribute.id()), "read the type of", "the attribute \"" + name + "\"", loc));
  const std::string object = "the attribute \"" + name + "\"";
  return read_string_values(type.id(), std::max<std::size_t>(1, attribute_size(attribute)),
                            [&](hid_t mem, void* buffer) {
                              check_status(H5Aread(attribute.id(), mem, buffer), "read", object, loc);
                            },
                            object, loc, {object_name(loc), name});
}

}  // namespace

std::string read_string_attribute(hid_t loc, const std::string& name) {
  return read_attribute_strings(loc, name).front();
}

std::int64_t read_int_attribute(hid_t loc, const std::string& name) {
  Attribute attribute = open_attribute(loc, name);
  if (attribute_size(attribute) != 1) {
    throw HdfError("Unable to read the attribute \"" + name + "\" in " + file_name(loc) + " as one integer");
  }
  std::int64_t value = 0;
  check_status(H5Aread(attribute.id(), H5T_NATIVE_INT64, &value), "read", "the attribute \"" + name + "\"",
               loc);
  return value;
}

std::vector<double> read_double_attribute(hid_t loc, const std::string& name) {
  Attribute attribute = open_attribute(loc, name);
  std::vector<double> values(attribute_size(attribute));
  if (!values.empty()) {
    check_status(H5Aread(attribute.id(), H5T_NATIVE_DOUBLE, values.data()), "read",
                 "the attribute \"" + name + "\"", loc);
  }
  return values;
}

bool attribute_is_string(hid_t loc, const std::string& name) {
  Attribute attribute = open_attribute(loc, name);
  Datatype type(
      check(H5Aget_type(attribute.id()), "read the type of", "the attribute \"" + name + "\"", loc));
  return H5Tget_class(type.id()) == H5T_STRING;
}

std::string attribute_as_text(hid_t loc, const std::string& name) {
  if (attribute_is_string(loc, name)) return read_string_attribute(loc, name);
  Attribute attribute = open_attribute(loc, name);
  Datatype type(
      check(H5Aget_type(attribute.id()), "read the type of", "the attribute \"" + name + "\"", loc));
  const H5T_class_t type_class = H5Tget_class(type.id());
  const bool scalar = attribute_is_scalar(attribute);
  std::ostringstream out;
  if (type_class == H5T_INTEGER) {
    std::vector<std::int64_t> values(attribute_size(attribute));
    if (!values.empty()) {
      check_status(H5Aread(attribute.id(), H5T_NATIVE_INT64, values.data()), "read",
                   "the attribute \"" + name + "\"", loc);
    }
    if (!scalar) out << '[';
    for (std::size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    if (!scalar) out << ']';
  } else if (type_class == H5T_FLOAT) {
    const std::vector<double> values = read_double_attribute(loc, name);
    if (!scalar) out << '[';
    for (std::size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    if (!scalar) out << ']';
  } else {
    out << "<" << base_name(object_name(loc)) << " attribute of an unsupported type>";
  }
  return out.str();
}

// ---- variable-length strings -----------------------------------------------------------------

namespace {

bool is_variable_length_string(hid_t type) {
  return type >= 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0;
}

struct VisitState {
  std::vector<VariableLengthString> found;
};

herr_t visit_attribute(hid_t object, const char* name, const H5A_info_t*, void* data) {
  Attribute attribute(H5Aopen(object, name, H5P_DEFAULT));
  if (!attribute.valid()) return -1;
  Datatype type(H5Aget_type(attribute.id()));
  if (is_variable_length_string(type.id())) {
    static_cast<VisitState*>(data)->found.push_back({object_name(object), name});
  }
  return 0;
}

herr_t visit_object(hid_t file, const char* name, const H5O_info_t* info, void* data) {
  Handle<H5Oclose> object(H5Oopen(file, name, H5P_DEFAULT));
  if (!object.valid()) return -1;
  if (info->type == H5O_TYPE_DATASET) {
    Datatype type(H5Dget_type(object.id()));
    if (is_variable_length_string(type.id())) {
      static_cast<VisitState*>(data)->found.push_back({object_name(object.id()), ""});
    }
  }
  hsize_t index = 0;
  return H5Aiterate2(object.id(), H5_INDEX_NAME, H5_ITER_NATIVE, &index, visit_attribute, data) < 0 ? -1 : 0;
}

}  // namespace

std::vector<VariableLengthString> variable_length_strings(hid_t file) {
  silence_errors();
  VisitState state;
  if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, visit_object, &state, H5O_INFO_BASIC) < 0) {
    fail("list the objects of", "the file", file);
  }
  return state.found;
}

VariableLengthValues read_variable_length_strings(hid_t file,
                                                  const std::vector<VariableLengthString>& found) {
  VariableLengthValues values;
  for (const VariableLengthString& where : found) {
    if (where.attribute.empty()) {
      values[where] = read_strings(file, where.object);
    } else {
      Handle<H5Oclose> object(check(H5Oopen(file, where.object.c_str(), H5P_DEFAULT), "open",
                                    "\"" + where.object + "\"", file));
      values[where] = read_attribute_strings(object.id(), where.attribute);
    }
  }
  return values;
}

// The checking child's answer: a u32 count of locations, then for each the object path and the
// attribute name (a u32 length and the bytes each), a u64 count of strings and the strings (a
// u32 length and the bytes each). All integers little-endian; nothing after the last string.

namespace {

void put_uint(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_text(std::string& out, const std::string& text) {
  put_uint(out, text.size(), 4);
  out += text;
}

// Reads encode_variable_length_values's bytes front to back; every read is bounded by what is left.
class AnswerParser {
 public:
  AnswerParser(std::string_view bytes, const std::string& file) : rest_(bytes), file_(file) {}

  std::uint64_t uint(int bytes) {
    need(static_cast<std::size_t>(bytes));
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= std::uint64_t{static_cast<unsigned char>(rest_[i])} << (8 * i);
    rest_.remove_prefix(static_cast<std::size_t>(bytes));
    return value;
  }
  std::string text() {
    const std::uint64_t size = uint(4);
    need(size);
    std::string value(rest_.substr(0, static_cast<std::size_t>(size)));
    rest_.remove_prefix(static_cast<std::size_t>(size));
    return value;
  }
  std::size_t left() const noexcept { return rest_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file_ + " is not a usable medload cache: its checking child's answer " + what);
  }

 private:
  void need(std::uint64_t bytes) const {
    if (bytes > rest_.size()) {
      fail("is truncated (" + std::to_string(rest_.size()) + " bytes left, " + std::to_string(bytes) +
           " needed)");
    }
  }
  std::string_view rest_;
  const std::string& file_;
};

}  // namespace

std::string encode_variable_length_values(const VariableLengthValues& values) {
  std::string out;
  put_uint(out, values.size(), 4);
  for (const auto& [where, strings] : values) {
    put_text(out, where.object);
    put_text(out, where.attribute);
    put_uint(out, strings.size(), 8);
    for (const std::string& value : strings) put_text(out, value);
  }
  return out;
}

VariableLengthValues decode_variable_length_values(std::string_view bytes, const std::string& file) {
  AnswerParser in(bytes, file);
  const std::uint64_t locations = in.uint(4);
  if (locations > kMaxVariableLengthLocations) {
    in.fail("names " + std::to_string(locations) + " variable-length string locations (at most " +
            std::to_string(kMaxVariableLengthLocations) + ")");
  }
  VariableLengthValues values;
  for (std::uint64_t l = 0; l < locations; ++l) {
    VariableLengthString where;
    where.object = in.text();
    where.attribute = in.text();
    const std::uint64_t count = in.uint(8);
    if (count > in.left() / 4) {  // every string takes at least its 4-byte length
      in.fail("claims " + std::to_string(count) + " strings for \"" + where.object + "\" in " +
              std::to_string(in.left()) + " bytes");
    }
    std::vector<std::string> strings;
    strings.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i) strings.push_back(in.text());
    if (!values.emplace(std::move(where), std::move(strings)).second) in.fail("names a location twice");
  }
  if (in.left() != 0) in.fail("has " + std::to_string(in.left()) + " bytes after its last string");
  return values;
}

// ---- self-containment --------------------------------------------------------------------------

namespace {

// At most this many bytes of one name from the file go into a message.
constexpr std::size_t kShownBytes = 200;

// Text from the file, fit for a message: at most kShownBytes bytes (cut at a character boundary,
// then "..."), valid UTF-8, control characters (C0, DEL, C1) as '?'.
std::string shown(std::string_view text) {
  const bool cut = text.size() > kShownBytes;
  if (cut) {
    std::size_t end = kShownBytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
  }
  const std::string valid = to_valid_utf8(text);
  std::string out;
  out.reserve(valid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if (c < 0x20 || c == 0x7F) {
      out += '?';
    } else if (c == 0xC2 && i + 1 < valid.size() && static_cast<unsigned char>(valid[i + 1]) < 0xA0) {
      out += '?';  // U+0080..U+009F
      ++i;
    } else {
      out += valid[i];
    }
  }
  return cut ? out + "..." : out;
}

// A NUL-terminated string in `bytes` (up to its first NUL).
std::string_view c_text(const std::string& bytes) { return std::string_view(bytes.c_str()); }

// What a link that is not a hard link points at, from its value alone (nothing is traversed).
std::string describe_link(hid_t root, const char* name, const H5L_info_t& info) {
  const std::string where = "/" + shown(name);
  std::string value(info.u.val_size, '\0');
  const bool have_value =
      info.u.val_size > 0 && H5Lget_val(root, name, value.data(), value.size(), H5P_DEFAULT) >= 0;
  if (!have_value) H5Eclear2(H5E_DEFAULT);
  if (info.type == H5L_TYPE_SOFT) {
    return where + " is a soft link" + (have_value ? " (to " + shown(c_text(value)) + ")" : "");
  }
  if (info.type == H5L_TYPE_EXTERNAL) {
    unsigned flags = 0;
    const char* target_file = nullptr;
    const char* target_object = nullptr;
    if (have_value &&
        H5Lunpack_elink_val(value.data(), value.size(), &flags, &target_file, &target_object) >= 0) {
      return where + " is an external link (to " + shown(target_file) + ":" + shown(target_object) + ")";
    }
    H5Eclear2(H5E_DEFAULT);
    return where + " is an external link";
  }
  return where + " is a user-defined link (type " + std::to_string(static_cast<int>(info.type)) + ")";
}

// Why the dataset `dataset` (at `where`) keeps data outside its file, or nullopt.
std::optional<std::string> foreign_storage(hid_t dataset, const std::string& where) {
  const PropList create(H5Dget_create_plist(dataset));
  if (!create.valid()) fail("read the layout of", "the dataset \"" + where + "\"", dataset);
  const int external = H5Pget_external_count(create.id());
  if (external < 0) fail("read the external storage of", "the dataset \"" + where + "\"", dataset);
  if (external > 0) {
    std::string first(1024, '\0');
    off_t offset = 0;
    hsize_t size = 0;
    if (H5Pget_external(create.id(), 0, first.size() - 1, first.data(), &offset, &size) < 0) {
      H5Eclear2(H5E_DEFAULT);
      first.clear();
    }
    const std::string named = shown(c_text(first));
    return where + " keeps its data in " +
           (external == 1 ? "an external file (" + named + ")"
                          : std::to_string(external) + " external files (" + named + ", ...)");
  }
  const H5D_layout_t layout = H5Pget_layout(create.id());
  if (layout == H5D_LAYOUT_ERROR) fail("read the layout of", "the dataset \"" + where + "\"", dataset);
  if (layout == H5D_VIRTUAL) {
    size_t sources = 0;
    std::string first;
    if (H5Pget_virtual_count(create.id(), &sources) >= 0 && sources > 0) {
      const ssize_t length = H5Pget_virtual_filename(create.id(), 0, nullptr, 0);
      if (length > 0) {
        first.assign(static_cast<std::size_t>(length) + 1, '\0');
        if (H5Pget_virtual_filename(create.id(), 0, first.data(), first.size()) < 0) first.clear();
      }
    }
    H5Eclear2(H5E_DEFAULT);
    const std::string named = shown(c_text(first));
    return where + " is a virtual dataset (its data is mapped from " +
           (named.empty() ? std::string("other files") : named + (sources > 1 ? ", ..." : "")) + ")";
  }
  if (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED && layout != H5D_COMPACT) {
    return where + " has a storage layout medload does not know (" +
           std::to_string(static_cast<int>(layout)) + ")";
  }
  return std::nullopt;
}

struct ForeignSearch {
  std::optional<std::string> found;
  std::exception_ptr error;  // thrown inside the callback: rethrown once libhdf5 has returned
};

// H5Lvisit's callback: stops (1) at the first foreign link or dataset. H5Lvisit itself recurses
// only through hard links, so nothing a soft or external link names is ever opened.
herr_t find_foreign(hid_t root, const char* name, const H5L_info_t* info, void* data) {
  auto* search = static_cast<ForeignSearch*>(data);
  try {
    if (info->type != H5L_TYPE_HARD) {
      search->found = describe_link(root, name, *info);
      return 1;
    }
    const Handle<H5Oclose> object(H5Oopen(root, name, H5P_DEFAULT));
    if (!object.valid()) fail("open", "\"/" + shown(name) + "\"", root);
    if (H5Iget_type(object.id()) != H5I_DATASET) return 0;
    search->found = foreign_storage(object.id(), "/" + shown(name));
    return search->found ? 1 : 0;
  } catch (...) {
    search->error = std::current_exception();
    return -1;
  }
}

}  // namespace

std::optional<std::string> first_foreign_object(hid_t file) {
  silence_errors();
  ForeignSearch search;
  const herr_t visited = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, find_foreign, &search);
  if (search.error) {
    H5Eclear2(H5E_DEFAULT);
    std::rethrow_exception(search.error);
  }
  if (visited < 0) fail("list the links of", "the file", file);
  return search.found;
}

}  // namespace medload::loader::h5
