// Caches that were damaged or crafted after they were built (as with h5py): every reader (the
// CacheReader, merge, inspect, an incremental build's reuse of the previous cache) refuses them
// with a FormatError naming the file and the dataset or attribute, never crashes, never
// allocates what an unchecked header claims, and merge never writes an output.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload_test/command.h"
#include "target_cache.h"
#include "test_util.h"

namespace {

namespace detail = medload::loader::detail;
namespace fs = std::filesystem;
namespace h5 = medload::loader::h5;
using medload::FormatError;
using medload::loader::CacheReader;
using medload::loader::MergeOptions;
using medload::loader::PixelType;
using medload::loader::test::TempDir;

constexpr std::size_t kImages = 12;
constexpr int kSide = 16;

// A valid cache of kImages 16x16 uint8 images with a numeric (/meta/age) and a text (/meta/sex)
// metadata column and three rejected files.
void write_valid_cache(const std::string& path) {
  detail::CacheHeader header;
  header.count = kImages;
  header.height = kSide;
  header.width = kSide;
  detail::CacheWriter writer(path, header);
  detail::CacheColumns columns;
  medload::loader::MetaColumn age, sex;
  age.name = "age";
  age.numeric = true;
  sex.name = "sex";
  for (std::size_t i = 0; i < kImages; ++i) {
    std::vector<std::uint8_t> image(kSide * kSide);
    for (std::size_t p = 0; p < image.size(); ++p) image[p] = static_cast<std::uint8_t>(i * 17 + p);
    writer.write_image(i, image.data(), image.size());
    columns.labels.push_back(static_cast<std::int64_t>(i % 2));
    columns.patient_ids.push_back("p" + std::to_string(i));
    columns.source_paths.push_back("img" + std::to_string(i) + ".png");
    columns.source_hashes.push_back(medload::hash_hex(i));
    columns.sites.push_back("north");
    columns.frame_indices.push_back(0);
    columns.source_indices.push_back(static_cast<std::int64_t>(i));
    columns.pixel_hashes.push_back(1000 + i);
    columns.checksums.push_back(medload::hash64(image.data(), image.size()));
    columns.geometry.push_back({});
    age.values.push_back(30.0 + static_cast<double>(i));
    age.imputed.push_back(0);
    sex.text.push_back(i % 2 ? "F" : "M");
    sex.imputed.push_back(0);
  }
  columns.meta = {age, sex};
  const std::vector<detail::RejectedRecord> rejected{
      {12, "blank.png", "blank", "constant", "aa", "{}"},
      {13, "junk.png", "undecodable", "not an image", "bb", "{}"},
      {14, "empty.png", "empty_file", "0 bytes", "cc", "{}"}};
  writer.finish(columns, rejected, {"normal", "effusion"}, R"({"x":1})", "0123456789abcdef",
                {{"shard_index", 0}, {"shard_count", 1}, {"count_sources", 15}, {"count_ok_files", 12}});
}

// A valid cache at dir/name: the original that merges are tried against.
std::string valid_cache(const TempDir& dir) {
  const std::string path = dir.path("valid.h5");
  if (!fs::exists(path)) write_valid_cache(path);
  return path;
}

// A copy of the valid cache at dir/name, changed by `damage` through the HDF5 C API.
std::string damaged_copy(const TempDir& dir, const std::string& name,
                         const std::function<void(hid_t)>& damage) {
  const std::string path = dir.path(name);
  fs::copy_file(valid_cache(dir), path, fs::copy_options::overwrite_existing);
  h5::File file = h5::File::open(path, /*read_write=*/true);
  damage(file.id());
  file.close();
  return path;
}

void replace_strings(hid_t file, const std::string& name, const std::vector<std::string>& values) {
  h5::remove(file, name);
  h5::write_strings(file, name, values);
}

template <class T>
void replace_vector(hid_t file, const std::string& name, const std::vector<T>& values) {
  h5::remove(file, name);
  h5::write_vector(file, name, values);
}

// Runs `action`; expects a FormatError whose message names `file` and every one of `names`.
void expect_format_error(const std::function<void()>& action, const std::string& file,
                         const std::vector<std::string>& names, const std::string& context) {
  try {
    action();
    ADD_FAILURE() << context << ": no error";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(fs::path(file).filename().string()), std::string::npos)
        << context << ": " << message;
    for (const std::string& name : names) {
      EXPECT_NE(message.find(name), std::string::npos) << context << ": " << message;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << context << ": not a FormatError: " << e.what();
  }
}

MergeOptions merge_of(const TempDir& dir, const std::string& damaged) {
  MergeOptions options;
  options.inputs = {valid_cache(dir), damaged};
  options.output = dir.path("merged.h5");
  options.progress = medload::ProgressStyle::kQuiet;
  return options;
}

// CacheReader (with `use`), inspect (with --verify) and merge each refuse `path` naming `names`;
// merge leaves no output.
void expect_every_reader_refuses(const TempDir& dir, const std::string& path,
                                 const std::vector<std::string>& names,
                                 const std::function<void(const CacheReader&)>& use = {}) {
  expect_format_error(
      [&] {
        const CacheReader reader(path);
        if (use) use(reader);
      },
      path, names, "CacheReader");
  medload::loader::InspectOptions inspect;
  inspect.verify = true;
  expect_format_error([&] { medload::loader::inspect_cache(path, inspect); }, path, names, "inspect");
  const MergeOptions merge = merge_of(dir, path);
  expect_format_error([&] { medload::loader::merge_caches(merge); }, path, names, "merge");
  EXPECT_FALSE(fs::exists(merge.output)) << "merge wrote " << merge.output;
  EXPECT_FALSE(fs::exists(merge.output + ".tmp"));
}

// Runs `action` in a child process whose address space is limited to what it has now plus
// 1 GiB, so an allocation sized by an unchecked header fails there instead of taking the
// machine. Returns the FormatError message the child caught, or "no error" / "bad_alloc" /
// "other: ...".
std::string run_with_address_limit(const std::function<void()>& action) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string result = "no error";
    {
      std::ifstream status("/proc/self/status");
      std::string key;
      std::uint64_t vm_kib = 0;
      while (status >> key) {
        if (key == "VmSize:") {
          status >> vm_kib;
          break;
        }
      }
      const rlim_t limit = static_cast<rlim_t>(vm_kib * 1024 + (std::uint64_t{1} << 30));
      const rlimit bounded{limit, limit};
      ::setrlimit(RLIMIT_AS, &bounded);
    }
    try {
      action();
    } catch (const FormatError& e) {
      result = e.what();
    } catch (const std::bad_alloc&) {
      result = "bad_alloc";
    } catch (const std::exception& e) {
      result = std::string("other: ") + e.what();
    }
    const ssize_t written = ::write(pipe_fds[1], result.data(), result.size());
    ::_exit(written == static_cast<ssize_t>(result.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[4096];
  for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, got);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status)) return "the child died of signal " + std::to_string(WTERMSIG(status));
  return message;
}

// `action` refuses `path` with a FormatError naming `name` within the address limit.
void expect_refused_within_limit(const std::function<void()>& action, const std::string& path,
                                 const std::string& name, const std::string& context) {
  const std::string message = run_with_address_limit(action);
  EXPECT_NE(message.find("is not a usable medload cache"), std::string::npos) << context << ": " << message;
  EXPECT_NE(message.find(fs::path(path).filename().string()), std::string::npos)
      << context << ": " << message;
  EXPECT_NE(message.find(name), std::string::npos) << context << ": " << message;
}

}  // namespace

TEST(CraftedCache, TheUndamagedCacheIsReadByEveryReader) {
  TempDir dir;
  const std::string path = valid_cache(dir);
  const CacheReader reader(path);
  EXPECT_EQ(reader.size(), kImages);
  EXPECT_EQ(reader.rejected().size(), 3u);
  EXPECT_EQ(reader.meta("sex").text[3], "F");
  medload::loader::InspectOptions inspect;
  inspect.verify = true;
  EXPECT_EQ(medload::loader::inspect_cache(path, inspect)["verify"]["failed"], 0);
  MergeOptions merge = merge_of(dir, path);
  merge.inputs = {path};
  EXPECT_EQ(medload::loader::merge_caches(merge).images, kImages);
}

TEST(CraftedCache, RejectedColumnsOfDifferentLengthsAreAFormatError) {
  TempDir dir;
  const std::string path = damaged_copy(dir, "rejected.h5", [](hid_t f) {
    replace_strings(f, "rejected/reason", {"blank"});  // /rejected/path keeps its 3 entries
  });
  expect_every_reader_refuses(dir, path, {"/rejected/reason", "3 entries"},
                              [](const CacheReader& reader) { reader.rejected(); });
}

TEST(CraftedCache, AnIncrementalBuildRefusesAPreviousCacheWithRejectedColumnsOfDifferentLengths) {
  TempDir dir;
  const std::string root = dir.path("in");
  medload::loader::test::write_tree(root, {"a", "b"}, 2);
  medload::loader::test::write_bytes(root + "/b/junk.png", "not an image at all");
  medload::loader::BuildOptions options;
  options.root = root;
  options.output = dir.path("cache.h5");
  options.threads = 1;
  options.progress = medload::ProgressStyle::kQuiet;
  options.config.preprocess.letterbox.size = 32;
  options.config.validate.isolation = medload::loader::Isolation::kInProcess;
  medload::loader::build_cache(options);
  {
    h5::File file = h5::File::open(options.output, /*read_write=*/true);
    ASSERT_EQ(h5::read_strings(file.id(), "rejected/path").size(), 1u);
    replace_strings(file.id(), "rejected/reason", {});
    replace_strings(file.id(), "rejected/detail", {});
  }
  expect_format_error([&] { medload::loader::build_cache(options); }, options.output,
                      {"refusing to replace", "/rejected/reason"}, "build");
  EXPECT_EQ(h5::read_strings(h5::File::open(options.output).id(), "rejected/reason").size(), 0u)
      << "the previous cache was replaced";
}

TEST(CraftedCache, AMetaColumnShorterThanTheImagesIsAFormatErrorAndMergeWritesNothing) {
  TempDir dir;
  const std::string numeric = damaged_copy(dir, "age.h5", [](hid_t f) {
    replace_vector<double>(f, "meta/age", {30, 31, 32});
  });
  expect_every_reader_refuses(dir, numeric, {"/meta/age has 3 entries for 12 images"},
                              [](const CacheReader& reader) { reader.meta("age"); });
  const std::string text =
      damaged_copy(dir, "sex.h5", [](hid_t f) { replace_strings(f, "meta/sex", {"F"}); });
  expect_every_reader_refuses(dir, text, {"/meta/sex has 1 entries for 12 images"},
                              [](const CacheReader& reader) { reader.meta("sex"); });
  const std::string flags = damaged_copy(dir, "flags.h5", [](hid_t f) {
    replace_vector<std::uint8_t>(f, "meta/age_imputed", {0, 0});
  });
  expect_every_reader_refuses(dir, flags, {"/meta/age_imputed has 2 entries for 12 images"},
                              [](const CacheReader& reader) { reader.meta("age"); });
}

TEST(CraftedCache, ImageDimensionsBeyondTheLimitsAreRefusedNotTruncated) {
  TempDir dir;
  // 2^32 + 32 rows: an int cast would read 32.
  const std::string tall = damaged_copy(dir, "tall.h5", [](hid_t f) {
    h5::remove(f, "images");
    h5::DatasetLayout layout;
    layout.chunk = {1, 32, 32};
    h5::create_dataset(f, "images", H5T_STD_U8LE, {kImages, (hsize_t{1} << 32) + 32, 32}, layout);
  });
  expect_every_reader_refuses(dir, tall, {"/images has shape (12, 4294967328, 32)"});
  const std::string channels = damaged_copy(dir, "channels.h5", [](hid_t f) {
    h5::remove(f, "images");
    h5::create_dataset(f, "images", H5T_STD_U8LE, {kImages, 5, kSide, kSide});
  });
  expect_every_reader_refuses(dir, channels, {"/images has shape (12, 5, 16, 16)", "1 or 3 channels"});
}

TEST(CraftedCache, HugeDeclaredImagesAndTablesAreRefusedBeforeAnythingIsAllocated) {
  TempDir dir;
  // 12 images of 2^20 x 2^20, never written (no storage): 12 TiB if believed.
  const std::string huge = damaged_copy(dir, "huge.h5", [](hid_t f) {
    h5::remove(f, "images");
    h5::create_dataset(f, "images", H5T_STD_U8LE, {kImages, 1, hsize_t{1} << 20, hsize_t{1} << 20});
  });
  expect_refused_within_limit(
      [&] {
        const CacheReader reader(huge);
        reader.verify(0);
      },
      huge, "/images", "verify");
  expect_refused_within_limit([&] { medload::loader::inspect_cache(huge, {}); }, huge, "/images", "inspect");
  // 2^31 images within the side limits, never written, with the 12-entry tables: refused by the
  // tables' lengths, not by allocating 2^31 checksums.
  const std::string many = damaged_copy(dir, "many.h5", [](hid_t f) {
    h5::remove(f, "images");
    h5::create_dataset(f, "images", H5T_STD_U8LE, {hsize_t{1} << 31, kSide, kSide});
  });
  expect_refused_within_limit([&] { CacheReader reader(many); }, many, "for 2147483648 images", "many");
  // A table that declares its 12 entries but has no storage behind them (a contiguous dataset
  // never written) is refused rather than read as zeros.
  const std::string empty_table = damaged_copy(dir, "table.h5", [](hid_t f) {
    h5::remove(f, "checksum");
    h5::create_dataset(f, "checksum", H5T_NATIVE_UINT64, {kImages});
  });
  expect_every_reader_refuses(dir, empty_table, {"/checksum declares 12 entries", "stores 0 bytes"});
}

TEST(CraftedCache, ShardAttributesOutOfRangeAreRefusedBeforeMergeAllocates) {
  TempDir dir;
  const std::string count = damaged_copy(
      dir, "count.h5", [](hid_t f) { h5::write_attribute(f, "shard_count", std::int64_t{1} << 40); });
  MergeOptions merge = merge_of(dir, count);
  merge.inputs = {count};  // alone: a count of 2^40 shards is not compared with another's
  expect_refused_within_limit([&] { medload::loader::merge_caches(merge); }, count,
                              "shard_count is 1099511627776", "merge");
  EXPECT_FALSE(fs::exists(merge.output));
  const std::string index =
      damaged_copy(dir, "index.h5", [](hid_t f) { h5::write_attribute(f, "shard_index", std::int64_t{5}); });
  expect_format_error([&] { medload::loader::merge_caches(merge_of(dir, index)); }, index,
                      {"shard_index is 5 (0..0 expected)"}, "merge");
  const std::string version = damaged_copy(
      dir, "version.h5", [](hid_t f) { h5::write_attribute(f, "schema_version", std::string("1")); });
  expect_every_reader_refuses(dir, version, {"schema_version holds strings, not integers"});
}

TEST(CraftedCache, TablesOfTheWrongTypeOrRangeAreRefused) {
  TempDir dir;
  const std::string labels = damaged_copy(dir, "labels.h5", [](hid_t f) {
    std::vector<std::string> text(kImages, "normal");
    replace_strings(f, "labels", text);
  });
  expect_every_reader_refuses(dir, labels, {"/labels holds strings, not integers"});
  const std::string sources = damaged_copy(dir, "sources.h5", [](hid_t f) {
    std::vector<std::int64_t> indices(kImages, -4);
    replace_vector(f, "source_index", indices);
  });
  expect_format_error([&] { medload::loader::merge_caches(merge_of(dir, sources)); }, sources,
                      {"/source_index holds -4"}, "merge");
}

namespace {

// Writes /label_matrix [kImages, 2] of `type` (an HDF5 native type matching T) holding `values`,
// row-major: the valid cache becomes a multi-label one.
template <class T>
void write_label_matrix(hid_t f, hid_t type, const std::vector<T>& values) {
  h5::Dataset dataset = h5::create_dataset(f, "label_matrix", type, {kImages, 2});
  H5Dwrite(dataset.id(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
}

// A [kImages, 2] label matrix of 0/1 (of T) with `value` at image 5, class 1.
template <class T>
std::vector<T> label_values_with(T value) {
  std::vector<T> values(kImages * 2);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<T>(i % 3 == 0);
  values[5 * 2 + 1] = value;
  return values;
}

}  // namespace

TEST(CraftedCache, ALabelMatrixOfMinusOneZeroAndOneIsReadAsStored) {
  TempDir dir;
  const auto values = label_values_with<std::int8_t>(-1);
  const std::string path =
      damaged_copy(dir, "int8.h5", [&](hid_t f) { write_label_matrix(f, H5T_NATIVE_INT8, values); });
  const CacheReader reader(path);
  ASSERT_TRUE(reader.multi_label());
  EXPECT_EQ(reader.label_matrix(), values);
  EXPECT_EQ(medload::loader::inspect_cache(path)["multi_label_unknown"]["effusion"], 1);
  // The same values as int64 (h5py's default for a Python list) read the same.
  const std::string wide = damaged_copy(dir, "int64.h5", [&](hid_t f) {
    write_label_matrix(f, H5T_NATIVE_INT64, std::vector<std::int64_t>(values.begin(), values.end()));
  });
  EXPECT_EQ(CacheReader(wide).label_matrix(), values);
}

TEST(CraftedCache, LabelMatrixValuesOutsideTheirTypesRangeAreRefusedNamingTheImage) {
  TempDir dir;
  const auto check = [&](const std::string& name, const std::function<void(hid_t)>& damage,
                         const std::string& holds) {
    const std::string path = damaged_copy(dir, name, damage);
    expect_every_reader_refuses(dir, path, {"/label_matrix holds " + holds, "image 5, class 1"});
  };
  check(
      "int8_2.h5", [](hid_t f) { write_label_matrix(f, H5T_NATIVE_INT8, label_values_with<std::int8_t>(2)); },
      "2 ");
  check(
      "int8_-2.h5",
      [](hid_t f) { write_label_matrix(f, H5T_NATIVE_INT8, label_values_with<std::int8_t>(-2)); }, "-2 ");
  check(
      "uint8_255.h5",
      [](hid_t f) { write_label_matrix(f, H5T_NATIVE_UINT8, label_values_with<std::uint8_t>(255)); }, "255 ");
  // Wider integers (another tool's) are checked as they are, not wrapped into range first (257
  // would wrap to 1 in a byte, 256 to 0).
  check(
      "int16_257.h5",
      [](hid_t f) { write_label_matrix(f, H5T_NATIVE_INT16, label_values_with<std::int16_t>(257)); }, "257 ");
  check(
      "uint16_256.h5",
      [](hid_t f) { write_label_matrix(f, H5T_NATIVE_UINT16, label_values_with<std::uint16_t>(256)); },
      "256 ");
  const std::string floats = damaged_copy(dir, "float.h5", [](hid_t f) {
    write_label_matrix(f, H5T_NATIVE_DOUBLE, label_values_with<double>(0.5));
  });
  expect_every_reader_refuses(dir, floats, {"/label_matrix holds floats, not integers"});
}

namespace {

// Adds a valid train/val/test split (kind "parts", 3 parts) to the cache file `f`, then lets
// `damage` change it.
void add_split(hid_t f, const std::function<void(hid_t group, std::vector<std::int8_t>& part)>& damage) {
  h5::Group group = h5::create_group(f, "splits/default");
  std::vector<std::int8_t> part(kImages);
  for (std::size_t i = 0; i < kImages; ++i) part[i] = static_cast<std::int8_t>(i % 3);
  h5::write_attribute(group.id(), "kind", "parts");
  h5::write_attribute(group.id(), "parts", std::int64_t{3});
  h5::write_attribute(group.id(), "mean", std::vector<double>{0.4});
  h5::write_attribute(group.id(), "std", std::vector<double>{0.2});
  damage(group.id(), part);
  h5::Dataset dataset = h5::create_dataset(group.id(), "part", H5T_NATIVE_INT8, {kImages});
  H5Dwrite(dataset.id(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, part.data());
}

}  // namespace

TEST(CraftedCache, SplitPartsOutOfRangeAndUnusableStatisticsAreRefused) {
  TempDir dir;
  const std::string valid = damaged_copy(dir, "split.h5", [](hid_t f) { add_split(f, [](hid_t, auto&) {}); });
  EXPECT_NO_THROW(CacheReader{valid});
  const std::string part = damaged_copy(
      dir, "part.h5", [](hid_t f) { add_split(f, [](hid_t, std::vector<std::int8_t>& p) { p[5] = 7; }); });
  expect_every_reader_refuses(dir, part, {"/splits/default/part holds 7 for image 5 (0..2 expected)"});
  const std::string parts = damaged_copy(dir, "parts.h5", [](hid_t f) {
    add_split(f, [](hid_t g, std::vector<std::int8_t>& p) {
      h5::write_attribute(g, "parts", std::int64_t{8});
      p[5] = 7;
    });
  });
  expect_every_reader_refuses(dir, parts, {"/splits/default/parts is 8 (1..3 expected)"});
  const std::string mean = damaged_copy(dir, "mean.h5", [](hid_t f) {
    add_split(f, [](hid_t g, auto&) {
      h5::write_attribute(g, "mean", std::vector<double>{std::numeric_limits<double>::quiet_NaN()});
    });
  });
  expect_every_reader_refuses(dir, mean, {"/splits/default/mean holds nan"});
  const std::string infinite = damaged_copy(dir, "std.h5", [](hid_t f) {
    add_split(f, [](hid_t g, auto&) {
      h5::write_attribute(g, "std", std::vector<double>{std::numeric_limits<double>::infinity()});
    });
  });
  expect_every_reader_refuses(dir, infinite, {"/splits/default/std holds inf", "> 0"});
  const std::string zero = damaged_copy(dir, "zero.h5", [](hid_t f) {
    add_split(f, [](hid_t g, auto&) { h5::write_attribute(g, "std", std::vector<double>{0.0}); });
  });
  expect_every_reader_refuses(dir, zero, {"/splits/default/std holds 0"});
}

TEST(CraftedCache, JsonAttributesNestedTooDeepAreRefusedOrShownAsTextNeverWalked) {
  // Nested 100,000 deep, a JSON attribute parsed but crashed what walked it (inspect printing the
  // config, an error message dumping the value): the stack overflowed.
  TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string names =
      damaged_copy(dir, "names.h5", [&](hid_t f) { h5::write_attribute(f, "class_names", deep); });
  expect_every_reader_refuses(dir, names, {"class_names attribute", "nested deeper than 64 levels"});
  // The build config only describes the cache: one nested too deep is kept as text, not walked.
  const std::string config =
      damaged_copy(dir, "config.h5", [&](hid_t f) { h5::write_attribute(f, "config", deep); });
  const auto inspect = medload::test::run_medload("inspect " + config);
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output.substr(0, 2000);
  EXPECT_EQ(medload::loader::inspect_cache(config).at("config"), deep);
}

TEST(CraftedCache, CommandsExitOneWithTheMessageNamingTheFileAndDataset) {
  TempDir dir;
  const std::string path = damaged_copy(dir, "age.h5", [](hid_t f) {
    replace_vector<double>(f, "meta/age", {30, 31, 32});
  });
  const std::string expected = path + " is not a usable medload cache: /meta/age has 3 entries for 12 images";
  const auto inspect = medload::test::run_medload("inspect " + path + " --verify");
  EXPECT_EQ(inspect.exit_code, 1) << inspect.output;
  EXPECT_NE(inspect.output.find(expected), std::string::npos) << inspect.output;
  const std::string merged = dir.path("merged.h5");
  const auto merge =
      medload::test::run_medload("merge -q -o " + merged + " " + valid_cache(dir) + " " + path);
  EXPECT_EQ(merge.exit_code, 1) << merge.output;
  EXPECT_NE(merge.output.find(expected), std::string::npos) << merge.output;
  EXPECT_FALSE(fs::exists(merged));
}

namespace medload::loader {
namespace {

// Caches damaged inside HDF5's own structures (its global heap of variable-length strings), found
// by fuzz_cache: libhdf5 itself segfaults, overflows a buffer, loops or asks for 4 GiB on them.
std::vector<std::string> files_libhdf5_breaks_on() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MEDLOAD_SOURCE_DIR) + "/fuzz/regressions/fuzz_cache")) {
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(CraftedCache, DamageInsideHdf5sOwnStructuresCostsACheckingChildNotTheCaller) {
  TempDir dir;
  EXPECT_NO_THROW(check_cache_in_child(valid_cache(dir), 60));
  const auto files = files_libhdf5_breaks_on();
  ASSERT_GE(files.size(), 4u);
  for (const std::string& file : files) {
    try {
      check_cache_in_child(file, 15);
      ADD_FAILURE() << file << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

TEST(CraftedCache, TheReaderItselfChecksACacheWithVariableLengthStringsInAChild) {
  // The library path, not only the command: CacheReader finds the variable-length strings from
  // the object headers and reads them in a child first, so the damage costs a FormatError. (The
  // two inputs that hang libhdf5 take the check's full time limit; the check itself is shown on
  // them above.)
  std::size_t tried = 0;
  for (const std::string& file : files_libhdf5_breaks_on()) {
    if (file.find("hang") != std::string::npos) continue;
    ++tried;
    try {
      const CacheReader reader(file);
      ADD_FAILURE() << file << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(tried, 2u);
}

TEST(CraftedCache, ACacheMedloadWritesHasNoVariableLengthStrings) {
  TempDir dir;
  const h5::File file = h5::File::open(valid_cache(dir));
  const auto found = h5::variable_length_strings(file.id());
  EXPECT_TRUE(found.empty()) << found.front().object << " " << found.front().attribute;
}

TEST(CraftedCache, AnOlderCacheWithVariableLengthStringsReadsTheSameAfterItsCheck) {
  // Caches written before text went fixed-length hold variable-length strings: after the check
  // in a child they read as before.
  TempDir dir;
  const std::string legacy = dir.path("legacy.h5");
  fs::copy_file(valid_cache(dir), legacy);
  std::vector<std::string> paths;
  {
    h5::File file = h5::File::open(legacy, /*read_write=*/true);
    paths = h5::read_strings(file.id(), "source_path");
    h5::remove(file.id(), "source_path");
    h5::Datatype type = h5::string_type();
    h5::Dataset dataset = h5::create_dataset(file.id(), "source_path", type.id(), {paths.size()});
    std::vector<const char*> pointers;
    for (const std::string& p : paths) pointers.push_back(p.c_str());
    ASSERT_GE(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), 0);
    h5::write_attribute(file.id(), "note", "fixed");
  }
  {
    const h5::File file = h5::File::open(legacy);
    const auto found = h5::variable_length_strings(file.id());
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].object, "/source_path");
    EXPECT_EQ(found[0].attribute, "");
  }
  const CacheReader reader(legacy);
  EXPECT_EQ(reader.source_paths(), paths);
  EXPECT_EQ(reader.size(), kImages);
}

TEST(CraftedCache, TheCommandsExitOneOnACacheThatCrashesLibhdf5) {
  const std::string file = std::string(MEDLOAD_SOURCE_DIR) + "/fuzz/regressions/fuzz_cache/hdf5_H5HG_read_vlen_overlap.h5";
  const auto r = medload::test::run_medload("inspect " + file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not a usable medload cache"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace medload::loader

// ---- targets (schema version 2) ------------------------------------------------------------------

namespace {

// The valid cache with targets (target_cache.h: 6 images of 12x16; box_offsets [0,2,2,2,2,3,4],
// landmark_offsets [0,1,1,1,3,3,3]) that the damage below is done to.
std::string valid_targets_cache(const TempDir& dir) {
  const std::string path = dir.path("targets.h5");
  if (!fs::exists(path)) medload::loader::test::write_target_cache(path);
  return path;
}

std::string damaged_targets_copy(const TempDir& dir, const std::string& name,
                                 const std::function<void(hid_t)>& damage) {
  const std::string path = dir.path(name);
  fs::copy_file(valid_targets_cache(dir), path, fs::copy_options::overwrite_existing);
  h5::File file = h5::File::open(path, /*read_write=*/true);
  damage(file.id());
  file.close();
  return path;
}

template <class T>
void replace_array(hid_t file, const std::string& name, const std::vector<T>& values,
                   std::vector<hsize_t> dims) {
  h5::remove(file, name);
  h5::write_vector(file, name, values, std::move(dims));
}

// The boxes of the valid targets cache, row-major [4,4].
std::vector<double> valid_boxes() { return {1, 2, 5, 6.5, 8.5, 0, 16, 12, 0, 0, 16, 12, 2, 3, 4, 5}; }

}  // namespace

TEST(CraftedCache, TheUndamagedTargetsCacheIsReadByEveryReader) {
  TempDir dir;
  const std::string path = valid_targets_cache(dir);
  const CacheReader reader(path);
  EXPECT_EQ(reader.box_count(), 4u);
  medload::loader::InspectOptions inspect;
  inspect.verify = true;
  EXPECT_EQ(medload::loader::inspect_cache(path, inspect)["verify"]["masks"]["failed"], 0);
  MergeOptions merge = merge_of(dir, path);
  merge.inputs = {path};
  EXPECT_EQ(medload::loader::merge_caches(merge).images, medload::loader::test::kTargetImages);
  // The boxes the damage below starts from.
  EXPECT_EQ(h5::read_vector<double>(h5::File::open(path).id(), "targets/boxes"), valid_boxes());
}

TEST(CraftedCache, TargetOffsetsThatDecreaseStartLateOrEndElsewhereAreRefused) {
  TempDir dir;
  const std::string decreasing = damaged_targets_copy(dir, "decreasing.h5", [](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/box_offsets", {0, 2, 1, 2, 2, 3, 4});
  });
  expect_every_reader_refuses(dir, decreasing, {"/targets/box_offsets decreases at image 1 (2, then 1)"});
  const std::string late = damaged_targets_copy(dir, "late.h5", [](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/landmark_offsets", {1, 1, 1, 1, 3, 3, 3});
  });
  expect_every_reader_refuses(dir, late, {"/targets/landmark_offsets starts at 1 (0 expected)"});
  const std::string elsewhere = damaged_targets_copy(dir, "elsewhere.h5", [](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/box_offsets", {0, 2, 2, 2, 2, 3, 5});
  });
  expect_every_reader_refuses(dir, elsewhere,
                              {"/targets/box_offsets ends at 5 but /targets/boxes has 4 rows"});
  const std::string short_offsets = damaged_targets_copy(dir, "short.h5", [](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/box_offsets", {0, 2, 4});
  });
  expect_every_reader_refuses(dir, short_offsets, {"/targets/box_offsets has shape (3,), not (7,)"});
  const std::string labels = damaged_targets_copy(dir, "labels.h5", [](hid_t f) {
    replace_vector<std::int32_t>(f, "targets/box_labels", {1, 2, 3});
  });
  expect_every_reader_refuses(dir, labels, {"/targets/box_labels has shape (3,), not (4,)"});
}

TEST(CraftedCache, TargetTablesClaiming2To40RowsAreRefusedBeforeAnythingIsAllocated) {
  TempDir dir;
  constexpr std::uint64_t kHuge = std::uint64_t{1} << 40;
  const std::string offsets = damaged_targets_copy(dir, "offsets.h5", [&](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/box_offsets", {0, 2, 2, 2, 2, 3, kHuge});
  });
  expect_refused_within_limit([&] { CacheReader reader(offsets); }, offsets,
                              "/targets/box_offsets ends at 1099511627776 but /targets/boxes has 4 rows",
                              "offsets");
  // The rows dataset agrees with the offsets but has no storage behind its 2^40 rows.
  const std::string rows = damaged_targets_copy(dir, "rows.h5", [&](hid_t f) {
    replace_vector<std::uint64_t>(f, "targets/box_offsets", {0, 2, 2, 2, 2, 3, kHuge});
    h5::remove(f, "targets/boxes");
    h5::create_dataset(f, "targets/boxes", H5T_NATIVE_DOUBLE, {kHuge, 4});
  });
  expect_refused_within_limit([&] { CacheReader reader(rows); }, rows,
                              "/targets/boxes declares 4398046511104 entries", "rows");
  expect_refused_within_limit([&] { medload::loader::inspect_cache(rows, {}); }, rows, "/targets/boxes",
                              "inspect");
}

TEST(CraftedCache, TargetStatesOutOfRangeAreRefused) {
  TempDir dir;
  const std::string states = damaged_targets_copy(dir, "states.h5", [](hid_t f) {
    replace_vector<std::uint8_t>(f, "targets/mask_state", {1, 2, 0, 7, 0, 1});
  });
  expect_every_reader_refuses(dir, states, {"/targets/mask_state holds 7 for image 3"});
  const std::string length = damaged_targets_copy(dir, "length.h5", [](hid_t f) {
    replace_vector<std::uint8_t>(f, "targets/landmark_state", {1, 0, 0});
  });
  expect_every_reader_refuses(dir, length, {"/targets/landmark_state has 3 entries for 6 images"});
  const std::string rows = damaged_targets_copy(dir, "rows_of_none.h5", [](hid_t f) {
    replace_vector<std::uint8_t>(f, "targets/box_state", {1, 1, 0, 2, 1, 0});  // image 5 has a box
  });
  expect_every_reader_refuses(
      dir, rows,
      {"/targets/box_offsets gives image 5 1 rows of /targets/boxes but /targets/box_state marks it none"});
}

TEST(CraftedCache, ANonFiniteBoxAPointOffTheGridAndALabelOutOfRangeAreRefused) {
  TempDir dir;
  const std::string nan = damaged_targets_copy(dir, "nan.h5", [](hid_t f) {
    std::vector<double> boxes = valid_boxes();
    boxes[0] = std::numeric_limits<double>::quiet_NaN();
    replace_array(f, "targets/boxes", boxes, {4, 4});
  });
  expect_every_reader_refuses(
      dir, nan, {"/targets/boxes row 0 (image 0) is (nan, 2, 5, 6.5): a value that is not finite"});
  const std::string empty = damaged_targets_copy(dir, "empty.h5", [](hid_t f) {
    std::vector<double> boxes = valid_boxes();
    boxes[14] = 2;  // row 3: x1 = x0
    replace_array(f, "targets/boxes", boxes, {4, 4});
  });
  expect_every_reader_refuses(dir, empty, {"/targets/boxes row 3 (image 5) is (2, 3, 2, 5): no area"});
  const std::string off_grid = damaged_targets_copy(dir, "off_grid.h5", [](hid_t f) {
    replace_array<double>(f, "targets/landmarks", {3.25, 4.75, 0, 0, 16, 12.5}, {3, 2});
  });
  expect_every_reader_refuses(
      dir, off_grid, {"/targets/landmarks row 2 (image 3) is (16, 12.5): outside the 16x12 output grid"});
  const std::string label = damaged_targets_copy(dir, "label.h5", [](hid_t f) {
    replace_vector<std::int32_t>(f, "targets/box_labels", {1, 2, 9, 1});
  });
  expect_every_reader_refuses(dir, label, {"/targets/box_labels holds 9 for row 2 (1..3 expected"});
  const std::string background = damaged_targets_copy(dir, "background.h5", [](hid_t f) {
    replace_vector<std::int32_t>(f, "targets/landmark_labels", {3, 0, 2});
  });
  expect_every_reader_refuses(dir, background, {"/targets/landmark_labels holds 0 for row 1"});
  const std::string columns = damaged_targets_copy(dir, "columns.h5", [](hid_t f) {
    replace_array<double>(f, "targets/boxes", std::vector<double>(12, 1.0), {4, 3});
  });
  expect_every_reader_refuses(dir, columns, {"/targets/boxes has shape (4, 3), not (rows, 4)"});
}

TEST(CraftedCache, MasksOfTheWrongShapeOrTypeOrMissingAreRefused) {
  TempDir dir;
  const std::string wide = damaged_targets_copy(dir, "wide.h5", [](hid_t f) {
    h5::remove(f, "targets/masks");
    h5::create_dataset(f, "targets/masks", H5T_STD_U16LE, {6, 12, 17});
  });
  expect_every_reader_refuses(dir, wide, {"/targets/masks has shape (6, 12, 17), not (6, 12, 16)"});
  const std::string bytes = damaged_targets_copy(dir, "bytes.h5", [](hid_t f) {
    h5::remove(f, "targets/masks");
    h5::create_dataset(f, "targets/masks", H5T_STD_U8LE, {6, 12, 16});
  });
  expect_every_reader_refuses(dir, bytes, {"/targets/masks is not little-endian uint16"});
  const std::string missing =
      damaged_targets_copy(dir, "missing.h5", [](hid_t f) { h5::remove(f, "targets/masks"); });
  expect_every_reader_refuses(
      dir, missing, {"/targets/mask_state marks the mask of image 0 valid but there is no /targets/masks"});
  const std::string dropped =
      damaged_targets_copy(dir, "dropped.h5", [](hid_t f) { h5::remove(f, "targets/box_dropped"); });
  expect_every_reader_refuses(dir, dropped, {"it has no /targets/box_dropped dataset"});
  const std::string classes = damaged_targets_copy(dir, "classes.h5", [](hid_t f) {
    replace_vector<std::int32_t>(f, "targets/classes", {0, 1, 2, 3});
  });
  expect_every_reader_refuses(dir, classes, {"/targets/classes holds integers, not strings"});
}

TEST(CraftedCache, ADamagedMaskChunkFailsItsReadAndVerifyButNotTheOpen) {
  TempDir dir;
  const std::string path = damaged_targets_copy(dir, "chunk.h5", [](hid_t) {});
  haddr_t address = 0;
  hsize_t size = 0;
  {
    const h5::File file = h5::File::open(path);
    const h5::Dataset masks = h5::open_dataset(file.id(), "targets/masks");
    const hsize_t offset[3] = {3, 0, 0};
    unsigned filter_mask = 0;
    ASSERT_GE(H5Dget_chunk_info_by_coord(masks.id(), offset, &filter_mask, &address, &size), 0);
    ASSERT_GT(size, 4u);
  }
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(address));
    const std::string garbage(static_cast<std::size_t>(size), '\xA5');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  const CacheReader reader(path);
  std::vector<std::uint16_t> mask(reader.image_bytes());
  EXPECT_NO_THROW(reader.read_mask(0, mask.data()));
  expect_format_error([&] { reader.read_mask(3, mask.data()); }, path, {"mask 3 of", "does not inflate"},
                      "read_mask");
  medload::loader::InspectOptions inspect;
  inspect.verify = true;
  const auto verified = medload::loader::inspect_cache(path, inspect)["verify"];
  EXPECT_EQ(verified["failed"], 0);
  EXPECT_EQ(verified["masks"]["failed"], 1);
  EXPECT_EQ(verified["masks"]["failures"][0]["index"], 3);
}

TEST(CraftedCache, MaskValuesBeyondTheClassesAreReadAsStored) {
  // Mask values are not checked at open (every mask would be read): they read as stored.
  TempDir dir;
  const std::string path = damaged_targets_copy(dir, "values.h5", [](hid_t f) {
    const h5::Dataset masks = h5::open_dataset(f, "targets/masks");
    const std::vector<std::uint16_t> full(12 * 16, 65535);
    h5::write_rows(masks, 0, 1, H5T_NATIVE_UINT16, full.data());
  });
  const CacheReader reader(path);
  std::vector<std::uint16_t> mask(12 * 16);
  reader.read_mask(0, mask.data());
  EXPECT_EQ(mask, std::vector<std::uint16_t>(12 * 16, 65535));
}
