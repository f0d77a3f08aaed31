// The RAII layer over the HDF5 C API: round trips and error messages that name file and object.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "h5.h"
#include "test_util.h"

namespace h5 = medload::loader::h5;
using medload::loader::test::TempDir;

TEST(H5Layer, RoundTripsDatasetsStringsAndAttributes) {
  TempDir dir;
  const std::string path = dir.path("a.h5");
  {
    h5::File file = h5::File::create(path);
    h5::write_vector<std::int64_t>(file.id(), "labels", {3, -1, 7});
    h5::write_vector<double>(file.id(), "meta/age", {1.5, 2.5});
    h5::write_strings(file.id(), "names", {"a", "", "ünï"});
    h5::write_attribute(file.id(), "text", "hello");
    h5::write_attribute(file.id(), "count", std::int64_t{42});
    h5::write_attribute(file.id(), "mean", std::vector<double>{0.25, 0.5});
    h5::write_attribute(file.id(), "text", "replaced");
    file.close();
  }
  h5::File file = h5::File::open(path);
  EXPECT_EQ(h5::read_vector<std::int64_t>(file.id(), "labels"), (std::vector<std::int64_t>{3, -1, 7}));
  EXPECT_EQ(h5::read_vector<double>(file.id(), "/meta/age"), (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(h5::read_strings(file.id(), "names"), (std::vector<std::string>{"a", "", "ünï"}));
  EXPECT_EQ(h5::read_string_attribute(file.id(), "text"), "replaced");
  EXPECT_EQ(h5::read_int_attribute(file.id(), "count"), 42);
  EXPECT_EQ(h5::read_double_attribute(file.id(), "mean"), (std::vector<double>{0.25, 0.5}));
  EXPECT_EQ(h5::attribute_as_text(file.id(), "mean"), "[0.25, 0.5]");
  EXPECT_TRUE(h5::exists(file.id(), "meta/age"));
  EXPECT_FALSE(h5::exists(file.id(), "nothing/age"));
  EXPECT_EQ(h5::list_children(file.id()), (std::vector<std::string>{"labels", "meta", "names"}));
  EXPECT_EQ(h5::list_attributes(file.id()), (std::vector<std::string>{"count", "mean", "text"}));
}

TEST(H5Layer, ReadsFixedLengthStringsInEitherCharacterSet) {
  // Caches other tools rewrote hold ASCII fixed-length strings (h5py's `S` dtype); medload writes
  // UTF-8 ones. HDF5 converts between the two in neither direction, so each is read as it is.
  TempDir dir;
  const std::string path = dir.path("a.h5");
  {
    h5::File file = h5::File::create(path);
    h5::Datatype ascii(H5Tcopy(H5T_C_S1));
    ASSERT_GE(H5Tset_size(ascii.id(), 4), 0);
    ASSERT_GE(H5Tset_strpad(ascii.id(), H5T_STR_NULLPAD), 0);
    {
      h5::Dataset dataset = h5::create_dataset(file.id(), "ascii", ascii.id(), {2});
      const char values[] = {'a', 'b', 'c', 'd', 'e', 'f', '\0', '\0'};
      ASSERT_GE(H5Dwrite(dataset.id(), ascii.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
      h5::Dataspace scalar(H5Screate(H5S_SCALAR));
      h5::Attribute attribute(H5Acreate2(file.id(), "ascii", ascii.id(), scalar.id(), H5P_DEFAULT, H5P_DEFAULT));
      ASSERT_GE(H5Awrite(attribute.id(), ascii.id(), "wxyz"), 0);
    }
    h5::write_strings(file.id(), "utf8", {"ünï", "four"});
    file.close();
  }
  h5::File file = h5::File::open(path);
  EXPECT_EQ(h5::read_strings(file.id(), "ascii"), (std::vector<std::string>{"abcd", "ef"}));
  EXPECT_EQ(h5::read_string_attribute(file.id(), "ascii"), "wxyz");
  EXPECT_EQ(h5::read_strings(file.id(), "utf8"), (std::vector<std::string>{"ünï", "four"}));
}

TEST(H5Layer, ErrorsNameTheObjectAndTheFile) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  h5::File::create(path).close();
  h5::File file = h5::File::open(path);
  try {
    h5::open_dataset(file.id(), "images");
    FAIL() << "no exception";
  } catch (const medload::HdfError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("Unable to open the dataset \"images\" in "), std::string::npos) << message;
    EXPECT_NE(message.find("cache.h5"), std::string::npos) << message;
  }
  EXPECT_THROW(h5::File::open(dir.path("missing.h5")), medload::HdfError);
  try {
    h5::File::open(dir.path("missing.h5"));
  } catch (const medload::HdfError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos);
  }
}

TEST(H5Layer, HandlesAreMoveOnlyAndCloseOnce) {
  TempDir dir;
  h5::File file = h5::File::create(dir.path("m.h5"));
  h5::Group group = h5::create_group(file.id(), "g/h");
  const hid_t id = group.id();
  h5::Group moved = std::move(group);
  EXPECT_FALSE(group.valid());
  EXPECT_EQ(moved.id(), id);
  EXPECT_GT(H5Iis_valid(id), 0);
  moved.reset();
  EXPECT_LE(H5Iis_valid(id), 0);
  static_assert(!std::is_copy_constructible_v<h5::Dataset>);
}

TEST(H5Layer, CloseRefusesWhileAnObjectOfTheFileIsOpen) {
  // Otherwise H5Fclose only marks the file and the real flush (and its errors) happens later,
  // unseen, when the object closes.
  TempDir dir;
  h5::File file = h5::File::create(dir.path("open.h5"));
  h5::Group group = h5::create_group(file.id(), "g");
  try {
    file.close();
    FAIL() << "close() with a group open";
  } catch (const medload::HdfError& e) {
    EXPECT_NE(std::string(e.what()).find("still open"), std::string::npos) << e.what();
  }
  group.reset();
  EXPECT_NO_THROW(file.close());
}

TEST(H5Layer, WritesAndReadsRowsOfAResizableChunkedDataset) {
  TempDir dir;
  h5::File file = h5::File::create(dir.path("r.h5"));
  h5::DatasetLayout layout;
  layout.chunk = {1, 2, 3};
  layout.max_dims = {H5S_UNLIMITED, 2, 3};
  layout.deflate = 4;
  h5::Dataset data = h5::create_dataset(file.id(), "images", H5T_NATIVE_UINT16, {0, 2, 3}, layout);
  h5::resize(data, {2, 2, 3});
  std::vector<std::uint16_t> rows(12);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::uint16_t>(i * 1000);
  h5::write_rows(data, 0, 2, H5T_NATIVE_UINT16, rows.data());
  std::vector<std::uint16_t> second(6);
  h5::read_rows(data, 1, 1, H5T_NATIVE_UINT16, second.data());
  EXPECT_EQ(second, std::vector<std::uint16_t>(rows.begin() + 6, rows.end()));
  EXPECT_THROW(h5::read_rows(data, 2, 1, H5T_NATIVE_UINT16, second.data()), medload::HdfError);
}

TEST(H5Layer, CreateReplacesALinkAtItsNameAndNeverTruncatesWhatItPointsTo) {
  // build and merge create their caches as OUTPUT.tmp: a link put there had libhdf5 truncate
  // and overwrite the file it pointed to (as root, any file).
  TempDir dir;
  const std::string victim = dir.path("victim.txt");
  medload::loader::test::write_bytes(victim, "precious");
  std::filesystem::create_symlink(victim, dir.path("out.h5.tmp"));
  h5::File file = h5::File::create(dir.path("out.h5.tmp"));
  h5::write_vector<std::int64_t>(file.id(), "x", {1});
  file.close();
  EXPECT_EQ(std::filesystem::file_size(victim), 8u);
  EXPECT_FALSE(std::filesystem::is_symlink(dir.path("out.h5.tmp")));
  EXPECT_EQ(h5::read_vector<std::int64_t>(h5::File::open(dir.path("out.h5.tmp")).id(), "x"),
            (std::vector<std::int64_t>{1}));
}
