// CacheReader over caches written by the writer: shapes, tables, lock-free reads from many
// threads, deflate, checksums, and clear errors for newer schemas and truncated files.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cache_writer.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/cache_reader.h"
#include "test_util.h"

namespace {

using medload::hash64;
using medload::loader::CacheReader;
using medload::loader::PixelType;
using medload::loader::test::TempDir;
namespace detail = medload::loader::detail;

// Image i: every element is (i * 31 + position * 7) mod 65521, truncated to the element type.
std::vector<std::uint8_t> make_image(std::size_t i, int c, int h, int w, PixelType type) {
  const std::size_t n = static_cast<std::size_t>(c) * h * w;
  std::vector<std::uint8_t> bytes(n * (type == PixelType::kUInt8 ? 1 : 2));
  for (std::size_t p = 0; p < n; ++p) {
    const std::uint32_t v = static_cast<std::uint32_t>((i * 31 + p * 7) % 65521);
    if (type == PixelType::kUInt8) {
      bytes[p] = static_cast<std::uint8_t>(v);
    } else {
      const auto v16 = static_cast<std::uint16_t>(v);
      std::memcpy(bytes.data() + 2 * p, &v16, 2);
    }
  }
  return bytes;
}

// Writes a cache of n images; returns the images.
std::vector<std::vector<std::uint8_t>> write_cache(const std::string& path, std::size_t n, int c, int h,
                                                   int w, PixelType type, int deflate = 0) {
  detail::CacheHeader header;
  header.count = n;
  header.channels = c;
  header.height = h;
  header.width = w;
  header.dtype = type;
  header.deflate = deflate;
  detail::CacheWriter writer(path, header);
  detail::CacheColumns columns;
  std::vector<std::vector<std::uint8_t>> images;
  for (std::size_t i = 0; i < n; ++i) {
    images.push_back(make_image(i, c, h, w, type));
    if (deflate > 0) {
      const auto packed = detail::deflate_chunk(images.back().data(), images.back().size(), deflate);
      writer.write_image(i, packed.data(), packed.size());
    } else {
      writer.write_image(i, images.back().data(), images.back().size());
    }
    columns.labels.push_back(i % 4 == 3 ? -1 : static_cast<std::int64_t>(i % 3));
    columns.patient_ids.push_back("p" + std::to_string(i / 2));
    columns.source_paths.push_back("cls/img" + std::to_string(i) + ".png");
    columns.source_hashes.push_back(medload::hash_hex(i));
    columns.sites.push_back(i % 2 ? "north" : "south");
    columns.frame_indices.push_back(0);
    columns.source_indices.push_back(static_cast<std::int64_t>(i));
    columns.pixel_hashes.push_back(i);
    columns.checksums.push_back(hash64(images.back().data(), images.back().size()));
    medload::loader::Geometry g;
    g.original_height = 100 + static_cast<int>(i);
    g.scale = 0.5;
    g.pad_left = 3;
    columns.geometry.push_back(g);
  }
  medload::loader::MetaColumn age;
  age.name = "age";
  age.numeric = true;
  for (std::size_t i = 0; i < n; ++i) {
    age.values.push_back(40.0 + static_cast<double>(i));
    age.imputed.push_back(i == 1 ? 1 : 0);
  }
  columns.meta.push_back(age);
  std::vector<detail::RejectedRecord> rejected{{0, "cls/blank.png", "blank", "constant image", "00", "{}"}};
  writer.finish(columns, rejected, {"a", "b", "c"}, R"({"x":1})", "0123456789abcdef", {{"extra", 7}});
  return images;
}

}  // namespace

TEST(CacheReader, ReadsWhatTheWriterWrote) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  const auto images = write_cache(path, 9, 1, 24, 20, PixelType::kUInt8);
  const CacheReader reader(path);
  ASSERT_EQ(reader.size(), 9u);
  EXPECT_EQ(reader.height(), 24);
  EXPECT_EQ(reader.width(), 20);
  EXPECT_EQ(reader.channels(), 1);
  EXPECT_EQ(reader.dtype(), PixelType::kUInt8);
  EXPECT_EQ(reader.image_bytes(), 24u * 20u);
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(reader.labels()[3], -1);
  EXPECT_EQ(reader.labels()[4], 1);
  EXPECT_FALSE(reader.multi_label());
  EXPECT_EQ(reader.patient_ids()[5], "p2");
  EXPECT_EQ(reader.source_paths()[8], "cls/img8.png");
  EXPECT_EQ(reader.sites()[1], "north");
  EXPECT_EQ(reader.config_json(), R"({"x":1})");
  EXPECT_EQ(reader.config_hash(), "0123456789abcdef");
  EXPECT_EQ(reader.schema_version(),
            2);  // no unknown labels: version 2, readable by medload before version 3
  EXPECT_EQ(reader.attribute("extra"), "7");
  EXPECT_EQ(reader.attribute("count_images"), "9");
  EXPECT_EQ(reader.geometry(2).original_height, 102);
  EXPECT_EQ(reader.geometry(2).pad_left, 3);
  EXPECT_DOUBLE_EQ(reader.geometry(2).scale, 0.5);
  EXPECT_EQ(reader.meta_names(), (std::vector<std::string>{"age"}));
  const auto age = reader.meta("age");
  EXPECT_TRUE(age.numeric);
  EXPECT_DOUBLE_EQ(age.values[3], 43.0);
  EXPECT_EQ(age.imputed[1], 1);
  EXPECT_THROW(reader.meta("weight"), medload::FormatError);
  ASSERT_EQ(reader.rejected().size(), 1u);
  EXPECT_EQ(reader.rejected()[0].reason, "blank");
  std::vector<std::uint8_t> out(reader.image_bytes());
  for (std::size_t i = 0; i < reader.size(); ++i) {
    reader.read_image(i, out.data());
    EXPECT_EQ(out, images[i]) << "image " << i;
    EXPECT_TRUE(reader.verify(i));
  }
  EXPECT_THROW(reader.read_image(9, out.data()), std::out_of_range);
}

TEST(CacheReader, ReadsColourSixteenBitAndDeflateImages) {
  TempDir dir;
  for (int deflate : {0, 6}) {
    const std::string path = dir.path("c" + std::to_string(deflate) + ".h5");
    const auto images = write_cache(path, 5, 3, 16, 12, PixelType::kUInt16, deflate);
    const CacheReader reader(path);
    EXPECT_EQ(reader.channels(), 3);
    EXPECT_EQ(reader.dtype(), PixelType::kUInt16);
    std::vector<std::uint8_t> batch(reader.image_bytes() * 3);
    reader.read_images({4, 0, 2}, batch.data());
    EXPECT_TRUE(std::equal(images[4].begin(), images[4].end(), batch.begin()));
    EXPECT_TRUE(std::equal(images[0].begin(), images[0].end(), batch.begin() + reader.image_bytes()));
    EXPECT_TRUE(std::equal(images[2].begin(), images[2].end(), batch.begin() + 2 * reader.image_bytes()));
    for (std::size_t i = 0; i < reader.size(); ++i) EXPECT_TRUE(reader.verify(i));
  }
}

TEST(CacheReader, ReadsChunkedImagesWrittenByOtherTools) {
  // h5py and other writers store one image per chunk without a filter: read through H5Dread_chunk.
  TempDir dir;
  const std::string path = dir.path("chunked.h5");
  const auto images = write_cache(path, 7, 1, 20, 12, PixelType::kUInt16);
  {
    namespace h5 = medload::loader::h5;
    auto file = h5::File::open(path, true);
    h5::remove(file.id(), "images");
    h5::DatasetLayout layout;
    layout.chunk = {1, 20, 12};
    h5::Dataset data = h5::create_dataset(file.id(), "images", H5T_STD_U16LE, {7, 20, 12}, layout);
    for (std::size_t i = 0; i < 6; ++i) h5::write_rows(data, i, 1, H5T_NATIVE_UINT16, images[i].data());
  }
  const CacheReader reader(path);
  std::vector<std::uint8_t> out(reader.image_bytes());
  for (std::size_t i = 0; i < 6; ++i) {
    reader.read_image(i, out.data());
    EXPECT_EQ(out, images[i]) << i;
    EXPECT_TRUE(reader.verify(i));
  }
  reader.read_image(6, out.data());  // never written: HDF5's fill value
  EXPECT_EQ(out, std::vector<std::uint8_t>(out.size(), 0));
  EXPECT_FALSE(reader.verify(6));
}

TEST(CacheReader, ReadsConcurrentlyFromManyThreadsAndProcesses) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  const auto images = write_cache(path, 40, 1, 32, 32, PixelType::kUInt16);
  const CacheReader reader(path);
  const CacheReader second(path);  // another reader of the same file at the same time
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::uint8_t> out(reader.image_bytes());
      for (int round = 0; round < 50; ++round) {
        for (std::size_t i = static_cast<std::size_t>(t); i < reader.size(); i += 3) {
          (t % 2 ? second : reader).read_image(i, out.data());
          mismatches[static_cast<std::size_t>(t)] += out != images[i];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t;
  // A child process opens the same file while this one holds it open.
  const pid_t child = fork();
  if (child == 0) {
    try {
      const CacheReader other(path);
      std::vector<std::uint8_t> out(other.image_bytes());
      other.read_image(7, out.data());
      _exit(out == images[7] ? 0 : 1);
    } catch (...) {
      _exit(2);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(CacheReader, VerifyReportsAFlippedByte) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  write_cache(path, 6, 1, 16, 16, PixelType::kUInt8);
  {
    // Flip one byte of image 4 where the reader finds it.
    std::vector<std::uint8_t> original(256);
    const CacheReader reader(path);
    reader.read_image(4, original.data());
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const auto at = bytes.find(std::string(reinterpret_cast<const char*>(original.data()), original.size()));
    ASSERT_NE(at, std::string::npos);
    const medload::core::FileDescriptor fd(::open(path.c_str(), O_WRONLY));
    const char flipped = static_cast<char>(bytes[at + 100] ^ 0x10);
    ASSERT_EQ(::pwrite(fd.get(), &flipped, 1, static_cast<off_t>(at + 100)), 1);
  }
  const CacheReader reader(path);
  for (std::size_t i = 0; i < reader.size(); ++i) EXPECT_EQ(reader.verify(i), i != 4) << "image " << i;
}

TEST(CacheReader, RefusesANewerSchemaNamingTheFile) {
  TempDir dir;
  const std::string path = dir.path("future.h5");
  write_cache(path, 2, 1, 8, 8, PixelType::kUInt8);
  {
    auto file = medload::loader::h5::File::open(path, true);
    medload::loader::h5::write_attribute(file.id(), "schema_version", std::int64_t{4});
  }
  try {
    CacheReader reader(path);
    FAIL() << "opened a schema 4 cache";
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("future.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("schema_version is 4, newer than 3"), std::string::npos) << e.what();
  }
}

TEST(CacheReader, RefusesATruncatedFileNamingIt) {
  TempDir dir;
  const std::string path = dir.path("cut.h5");
  write_cache(path, 10, 1, 64, 64, PixelType::kUInt8);
  const auto size = std::filesystem::file_size(path);
  for (auto keep : {size / 2, size - 100}) {
    const std::string cut = dir.path("cut-" + std::to_string(keep) + ".h5");
    std::filesystem::copy_file(path, cut);
    std::filesystem::resize_file(cut, keep);
    try {
      CacheReader reader(cut);
      FAIL() << "opened a file truncated to " << keep << " of " << size << " bytes";
    } catch (const medload::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(CacheReader(dir.path("none.h5")), medload::IoError);
}
