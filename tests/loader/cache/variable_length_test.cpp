// Caches holding variable-length strings (older medload, h5py): libhdf5 crashes converting them
// when the file's global heap is damaged, in ways that depend on the process's memory, so only a
// checking child converts them; every reader of the cache in this process (CacheReader, the split
// table, inspect, merge) uses the values the child sent back, and converts none itself.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cache_writer.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload/loader/cache/split_table.h"
#include "test_util.h"

namespace {

namespace detail = medload::loader::detail;
namespace fs = std::filesystem;
namespace h5 = medload::loader::h5;
using medload::FormatError;
using medload::loader::CacheReader;
using medload::loader::test::TempDir;

constexpr std::size_t kImages = 6;
constexpr int kSide = 8;

// A cache of kImages 8x8 images with a text metadata column (/meta/sex), a rejected file and a
// split, as medload writes it now (fixed-length strings only).
void write_cache(const std::string& path) {
  detail::CacheHeader header;
  header.count = kImages;
  header.height = kSide;
  header.width = kSide;
  detail::CacheWriter writer(path, header);
  detail::CacheColumns columns;
  medload::loader::MetaColumn sex;
  sex.name = "sex";
  for (std::size_t i = 0; i < kImages; ++i) {
    std::vector<std::uint8_t> image(kSide * kSide, static_cast<std::uint8_t>(i * 40));
    writer.write_image(i, image.data(), image.size());
    columns.labels.push_back(static_cast<std::int64_t>(i % 2));
    columns.patient_ids.push_back("patient-" + std::to_string(i) + (i == 3 ? " ünï" : ""));
    columns.source_paths.push_back("dir/img" + std::to_string(i) + ".png");
    columns.source_hashes.push_back(medload::hash_hex(i));
    columns.sites.push_back(i < 3 ? "north" : "");
    columns.frame_indices.push_back(0);
    columns.source_indices.push_back(static_cast<std::int64_t>(i));
    columns.pixel_hashes.push_back(1000 + i);
    columns.checksums.push_back(medload::hash64(image.data(), image.size()));
    columns.geometry.push_back({});
    sex.text.push_back(i % 2 ? "F" : "M");
    sex.imputed.push_back(0);
  }
  columns.meta = {sex};
  writer.finish(columns, {{6, "blank.png", "blank", "constant", "aa", "{}"}}, {"normal", "effusion"},
                R"({"x":1})", "0123456789abcdef",
                {{"shard_index", 0}, {"shard_count", 1}, {"count_sources", 7}, {"count_ok_files", 6}});
  medload::loader::SplitTable split;
  split.name = "default";
  split.parts = 3;
  split.seed = 42;
  split.ratios = {0.5, 0.25, 0.25};
  split.patient_set_hash = "0011223344556677";
  split.patients = kImages;
  split.class_counts = {{1, 1, 0}, {1, 1, 0}, {1, 1, 0}};
  split.sample_counts = {2, 2, 2};
  split.patient_counts = {2, 2, 2};
  split.mean = {0.4};
  split.std = {0.2};
  for (std::size_t i = 0; i < kImages; ++i) split.part.push_back(static_cast<std::int8_t>(i % 3));
  medload::loader::write_split_table(path, split);
  h5::File file = h5::File::open(path, /*read_write=*/true);
  h5::write_attribute(file.id(), "note", "added by another tool");
  file.close();
}

// Every string dataset and attribute of `file`, by path (attributes as object path + name).
struct StringObjects {
  std::vector<std::string> datasets;
  std::vector<std::pair<std::string, std::string>> attributes;
};

herr_t find_string_attribute(hid_t object, const char* name, const H5A_info_t*, void* data) {
  h5::Attribute attribute(H5Aopen(object, name, H5P_DEFAULT));
  h5::Datatype type(H5Aget_type(attribute.id()));
  if (H5Tget_class(type.id()) == H5T_STRING) {
    static_cast<StringObjects*>(data)->attributes.emplace_back(h5::object_name(object), name);
  }
  return 0;
}

herr_t find_strings(hid_t file, const char* name, const H5O_info_t* info, void* data) {
  h5::Handle<H5Oclose> object(H5Oopen(file, name, H5P_DEFAULT));
  if (info->type == H5O_TYPE_DATASET) {
    h5::Datatype type(H5Dget_type(object.id()));
    if (H5Tget_class(type.id()) == H5T_STRING) {
      static_cast<StringObjects*>(data)->datasets.push_back(h5::object_name(object.id()));
    }
  }
  hsize_t index = 0;
  return H5Aiterate2(object.id(), H5_INDEX_NAME, H5_ITER_NATIVE, &index, find_string_attribute, data);
}

// Rewrites every string dataset and attribute of the cache at `path` as variable-length strings,
// as medload wrote text before (and h5py writes it). Returns how many it rewrote.
std::size_t make_variable_length(const std::string& path) {
  h5::File file = h5::File::open(path, /*read_write=*/true);
  StringObjects found;
  EXPECT_GE(H5Ovisit2(file.id(), H5_INDEX_NAME, H5_ITER_NATIVE, find_strings, &found, H5O_INFO_BASIC), 0);
  const h5::Datatype type = h5::string_type();
  const auto pointers_of = [](const std::vector<std::string>& values) {
    std::vector<const char*> pointers;
    for (const std::string& v : values) pointers.push_back(v.c_str());
    return pointers;
  };
  for (const std::string& name : found.datasets) {
    const std::vector<std::string> values = h5::read_strings(file.id(), name);
    h5::remove(file.id(), name);
    h5::Dataset dataset = h5::create_dataset(file.id(), name, type.id(), {values.size()});
    if (!values.empty()) {
      EXPECT_GE(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers_of(values).data()),
                0);
    }
  }
  for (const auto& [object_path, name] : found.attributes) {
    h5::Handle<H5Oclose> object(H5Oopen(file.id(), object_path.c_str(), H5P_DEFAULT));
    const std::vector<std::string> text{h5::read_string_attribute(object.id(), name)};
    const std::vector<const char*> value = pointers_of(text);
    EXPECT_GE(H5Adelete(object.id(), name.c_str()), 0);
    h5::Dataspace scalar(H5Screate(H5S_SCALAR));
    h5::Attribute attribute(
        H5Acreate2(object.id(), name.c_str(), type.id(), scalar.id(), H5P_DEFAULT, H5P_DEFAULT));
    EXPECT_GE(H5Awrite(attribute.id(), type.id(), value.data()), 0);
  }
  file.close();
  return found.datasets.size() + found.attributes.size();
}

// What a reader sees of a cache's text.
struct CacheText {
  std::vector<std::string> patient_ids, source_paths, source_hashes, sites, class_names, sex;
  std::string config_json, config_hash, library_version, note, split_kind;
  std::vector<std::string> rejected;

  bool operator==(const CacheText& o) const {
    return patient_ids == o.patient_ids && source_paths == o.source_paths &&
           source_hashes == o.source_hashes && sites == o.sites && class_names == o.class_names &&
           sex == o.sex && config_json == o.config_json && config_hash == o.config_hash &&
           library_version == o.library_version && note == o.note && split_kind == o.split_kind &&
           rejected == o.rejected;
  }
};

CacheText read_text(const std::string& path) {
  const CacheReader reader(path);
  CacheText text;
  text.patient_ids = reader.patient_ids();
  text.source_paths = reader.source_paths();
  text.source_hashes = reader.source_hashes();
  text.sites = reader.sites();
  text.class_names = reader.class_names();
  text.sex = reader.meta("sex").text;
  text.config_json = reader.config_json();
  text.config_hash = reader.config_hash();
  text.library_version = reader.library_version();
  text.note = reader.attribute("note");
  for (const auto& r : reader.rejected()) text.rejected.push_back(r.path + "|" + r.reason + "|" + r.detail);
  text.split_kind = medload::loader::read_split_table(path, "default").kind;
  return text;
}

// A cache with every string variable-length, next to the original it was made from.
struct LegacyCaches {
  std::string original, legacy;
};

LegacyCaches legacy_caches(const TempDir& dir) {
  LegacyCaches caches{dir.path("original.h5"), dir.path("legacy.h5")};
  write_cache(caches.original);
  fs::copy_file(caches.original, caches.legacy);
  EXPECT_GE(make_variable_length(caches.legacy), 15u);
  return caches;
}

}  // namespace

TEST(VariableLengthStrings, ACheckedCacheReadsAsBeforeWithoutTheReaderConvertingAny) {
  TempDir dir;
  const LegacyCaches caches = legacy_caches(dir);
  const CacheText expected = read_text(caches.original);
  ASSERT_EQ(expected.patient_ids[3], "patient-3 ünï");
  {
    const h5::File file = h5::File::open(caches.legacy);
    ASSERT_GE(h5::variable_length_strings(file.id()).size(), 15u);
  }

  const std::uint64_t before = h5::variable_length_conversions();
  EXPECT_EQ(read_text(caches.legacy), expected);
  EXPECT_NO_THROW(medload::loader::inspect_cache(caches.legacy, {}));
  medload::loader::MergeOptions merge;
  merge.inputs = {caches.legacy};
  merge.output = dir.path("merged.h5");
  merge.progress = medload::ProgressStyle::kQuiet;
  EXPECT_EQ(medload::loader::merge_caches(merge).images, kImages);
  // The checking child converted them; this process converted none.
  EXPECT_EQ(h5::variable_length_conversions(), before);
  EXPECT_EQ(CacheReader(merge.output).patient_ids(), expected.patient_ids);

  // The hook does count: a file this process writes (trusted) is converted here.
  {
    const h5::File file = h5::File::open(caches.legacy);
    EXPECT_EQ(h5::read_strings(file.id(), "patient_id"), expected.patient_ids);
  }
  EXPECT_EQ(h5::variable_length_conversions(), before + 1);
}

TEST(VariableLengthStrings, ADistrustedFileGivesTheCheckedValuesAndRefusesTheRest) {
  TempDir dir;
  const LegacyCaches caches = legacy_caches(dir);
  h5::File file = h5::File::open(caches.legacy);
  auto checked = std::make_shared<h5::VariableLengthValues>();
  (*checked)[{"/patient_id", ""}] = {"a", "b", "c", "d", "e", "f"};
  (*checked)[{"/", "config"}] = {"{}"};
  (*checked)[{"/site", ""}] = {"only one"};
  file.distrust(checked);
  const std::uint64_t before = h5::variable_length_conversions();

  // What the child read is what is returned: the file's own values are not converted.
  EXPECT_EQ(h5::read_strings(file.id(), "patient_id"),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ(h5::read_string_attribute(file.id(), "config"), "{}");
  EXPECT_EQ(h5::attribute_as_text(file.id(), "config"), "{}");
  const auto expect_refused = [&](const std::function<void()>& read, const std::string& object) {
    try {
      read();
      ADD_FAILURE() << object << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("legacy.h5"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(object), std::string::npos) << e.what();
    }
  };
  expect_refused([&] { h5::read_strings(file.id(), "source_path"); }, "\"source_path\"");
  expect_refused([&] { h5::read_strings(file.id(), "site"); }, "holds 6 strings, its checking child read 1");
  expect_refused([&] { h5::read_string_attribute(file.id(), "note"); }, "\"note\"");
  {
    const h5::Group split = h5::open_group(file.id(), "splits/default");
    expect_refused([&] { h5::read_string_attribute(split.id(), "kind"); }, "\"kind\"");
    const h5::Dataset dataset = h5::open_dataset(file.id(), "source_path");
    std::vector<char*> rows(2, nullptr);
    const h5::Datatype type = h5::string_type();
    expect_refused([&] { h5::read_rows(dataset, 0, 2, type.id(), rows.data()); }, "/source_path");
  }
  // Fixed-length strings and numbers are read as always.
  EXPECT_EQ(h5::read_vector<std::int64_t>(file.id(), "labels").size(), kImages);
  EXPECT_EQ(h5::variable_length_conversions(), before);

  // Trust ends with the file: opened again by this process, it is converted as before.
  file.close();
  const h5::File again = h5::File::open(caches.legacy);
  EXPECT_EQ(h5::read_strings(again.id(), "patient_id").size(), kImages);
  EXPECT_EQ(h5::variable_length_conversions(), before + 1);
}

TEST(VariableLengthStrings, AFileChangedAfterItsCheckIsCheckedAgain) {
  TempDir dir;
  const LegacyCaches caches = legacy_caches(dir);
  EXPECT_EQ(CacheReader(caches.legacy).source_paths()[0], "dir/img0.png");
  {
    h5::File file = h5::File::open(caches.legacy, /*read_write=*/true);
    const h5::Dataset dataset = h5::open_dataset(file.id(), "source_path");
    const h5::Datatype type = h5::string_type();
    const std::vector<const char*> renamed{"moved/0.png", "moved/1.png", "moved/2.png",
                                           "moved/3.png", "moved/4.png", "moved/5.png"};
    ASSERT_GE(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, renamed.data()), 0);
  }
  // A new modification time even on a file system with coarse timestamps.
  fs::last_write_time(caches.legacy, fs::last_write_time(caches.legacy) + std::chrono::seconds(2));
  const std::uint64_t before = h5::variable_length_conversions();
  EXPECT_EQ(CacheReader(caches.legacy).source_paths()[5], "moved/5.png");
  EXPECT_EQ(h5::variable_length_conversions(), before);
}

TEST(VariableLengthStrings, AnAnswerLongerThanThePipeHoldsArrivesWhole) {
  // The parent reads the answer while the child writes it: 1.2 MB would not fit a pipe's buffer.
  TempDir dir;
  const LegacyCaches caches = legacy_caches(dir);
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < kImages; ++i) paths.push_back(std::string(200000, static_cast<char>('a' + i)));
  {
    h5::File file = h5::File::open(caches.legacy, /*read_write=*/true);
    h5::remove(file.id(), "source_path");
    const h5::Datatype type = h5::string_type();
    const h5::Dataset dataset = h5::create_dataset(file.id(), "source_path", type.id(), {kImages});
    std::vector<const char*> pointers;
    for (const std::string& p : paths) pointers.push_back(p.c_str());
    ASSERT_GE(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), 0);
  }
  const std::uint64_t before = h5::variable_length_conversions();
  EXPECT_EQ(CacheReader(caches.legacy).source_paths(), paths);
  EXPECT_EQ(h5::variable_length_conversions(), before);
}

TEST(VariableLengthStrings, TheCheckingChildsAnswerRoundTrips) {
  h5::VariableLengthValues values;
  values[{"/patient_id", ""}] = {"a", "", std::string("nul\0inside", 10), "ünï"};
  values[{"/", "config"}] = {"{}"};
  values[{"/splits/default", "kind"}] = {};
  EXPECT_EQ(h5::decode_variable_length_values(h5::encode_variable_length_values(values), "c.h5"), values);
  EXPECT_TRUE(h5::decode_variable_length_values(h5::encode_variable_length_values({}), "c.h5").empty());
}

TEST(VariableLengthStrings, AMalformedAnswerIsAFormatErrorNamingTheFileNeverACrash) {
  h5::VariableLengthValues values;
  values[{"/patient_id", ""}] = {"a", "bc", "def"};
  values[{"/", "config"}] = {"{}"};
  const std::string good = h5::encode_variable_length_values(values);
  const auto refused = [](const std::string& bytes, const std::string& why) {
    try {
      h5::decode_variable_length_values(bytes, "c.h5");
      ADD_FAILURE() << why << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("c.h5 is not a usable medload cache: its checking child's answer"),
                std::string::npos)
          << why << ": " << e.what();
    }
  };
  for (std::size_t size = 0; size < good.size(); ++size) refused(good.substr(0, size), "truncated");
  refused(good + '\0', "a byte after the last string");
  // Counts and lengths far beyond the bytes there: refused before anything is allocated for them.
  std::string huge_count = h5::encode_variable_length_values({{{"/x", ""}, {}}});
  for (std::size_t i = huge_count.size() - 8; i < huge_count.size(); ++i) huge_count[i] = '\xff';
  refused(huge_count, "2^64 strings");
  std::string huge_length = good;
  for (std::size_t i = 4; i < 8; ++i) huge_length[i] = '\xff';  // the first object path's length
  refused(huge_length, "a 4 GiB path");
  refused(std::string("\xff\xff\xff\x7f", 4), "2^31 locations");
  // The same location twice.
  const std::string one = h5::encode_variable_length_values({{{"/x", ""}, {"v"}}});
  std::string twice = one.substr(4) + one.substr(4);
  twice.insert(0, std::string("\x02\0\0\0", 4));
  refused(twice, "a repeated location");
  // Random bytes and random damage to a good answer: an error or a value, never a crash.
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = good;
    if (round % 2 == 0) {
      bytes.assign(random() % 64, '\0');
      for (char& c : bytes) c = static_cast<char>(random() % 4 == 0 ? random() : random() % 3);
    } else {
      bytes[random() % bytes.size()] = static_cast<char>(random());
    }
    try {
      h5::decode_variable_length_values(bytes, "c.h5");
    } catch (const FormatError&) {
    }
  }
}
