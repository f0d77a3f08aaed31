// merge_caches: shards built with --shard I/N merge into a cache equal to a single build (content
// and order), duplicates across shards included; inspect_cache summarises and verifies, and
// `medload inspect` prints that summary as text.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cache_compare.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload_test/command.h"
#include "test_util.h"

namespace {

using medload::loader::BuildOptions;
using medload::loader::CacheReader;
using medload::loader::MergeOptions;
using medload::loader::test::TempDir;
using medload::loader::test::write_bytes;
using medload::loader::test::write_png;

BuildOptions options_for(const std::string& root, const std::string& output) {
  return medload::loader::test::quiet_build_options(root, output, 40);
}

// 17 files through a manifest: three classes, a missing label, metadata with gaps, a blank file,
// and a duplicate whose original lies in another shard.
std::string write_inputs(const std::string& root) {
  std::string manifest = "path,label,patient_id,age,site\n";
  for (int i = 0; i < 16; ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    write_png(root + "/" + name, i);
    const char* label = i % 5 == 4 ? "" : (i % 3 == 0 ? "edema" : i % 3 == 1 ? "normal" : "nodule");
    const std::string age = i % 4 == 1 ? "" : std::to_string(20 + 3 * i);
    manifest += name + "," + label + ",p" + std::to_string(i / 2) + "," + age + "," +
                (i < 8 ? "north" : "south") + "\n";
  }
  write_png(root + "/zz_dup.png", 1);  // same pixels as img1.png, which sorts into shard 0
  manifest += "zz_dup.png,normal,p99,50,south\n";
  cv::imwrite(root + "/blank.png", cv::Mat(64, 64, CV_8UC1, cv::Scalar(3)));
  manifest += "blank.png,normal,p98,51,south\n";
  write_bytes(root + "/m.csv", manifest);
  return root + "/m.csv";
}

}  // namespace

TEST(MergeCaches, MergedShardsEqualASingleBuild) {
  TempDir dir;
  const std::string root = dir.path("in");
  const std::string manifest = write_inputs(root);
  auto single = options_for(root, dir.path("single.h5"));
  single.manifest = manifest;
  medload::loader::build_cache(single);

  for (int n : {2, 3}) {
    MergeOptions merge;
    for (int i = n - 1; i >= 0; --i) {  // given out of order on purpose
      auto shard =
          options_for(root, dir.path("shard" + std::to_string(i) + "of" + std::to_string(n) + ".h5"));
      shard.manifest = manifest;
      shard.shard_index = i;
      shard.shard_count = n;
      medload::loader::build_cache(shard);
      merge.inputs.push_back(shard.output);
    }
    merge.output = dir.path("merged" + std::to_string(n) + ".h5");
    merge.progress = medload::ProgressStyle::kQuiet;
    const auto result = medload::loader::merge_caches(merge);
    EXPECT_EQ(result.shards, static_cast<std::size_t>(n));
    EXPECT_EQ(result.duplicates, 1u) << n << " shards";
    medload::loader::test::expect_same_content(merge.output, dir.path("single.h5"));
  }
  const CacheReader reader(dir.path("single.h5"));
  EXPECT_EQ(reader.size(), 16u);
  EXPECT_EQ(reader.rejected().size(), 2u);
}

TEST(MergeCaches, RefusesMissingShardsAndMismatchedConfigs) {
  TempDir dir;
  const std::string root = dir.path("in");
  const std::string manifest = write_inputs(root);
  std::vector<std::string> shards;
  for (int i = 0; i < 3; ++i) {
    auto shard = options_for(root, dir.path("s" + std::to_string(i) + ".h5"));
    shard.manifest = manifest;
    shard.shard_index = i;
    shard.shard_count = 3;
    if (i == 2) shard.config.preprocess.letterbox.size = 48;
    medload::loader::build_cache(shard);
    shards.push_back(shard.output);
  }
  MergeOptions merge;
  merge.progress = medload::ProgressStyle::kQuiet;
  merge.output = dir.path("m.h5");
  merge.inputs = {shards[0], shards[1]};
  try {
    medload::loader::merge_caches(merge);
    FAIL();
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing: 2"), std::string::npos) << e.what();
  }
  merge.inputs = shards;
  try {
    medload::loader::merge_caches(merge);
    FAIL();
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("config hashes differ"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(merge.output));
  merge.inputs = {shards[0]};
  merge.output = shards[0];
  EXPECT_THROW(medload::loader::merge_caches(merge), medload::ConfigError);
}

TEST(InspectCache, SummarisesClassesSitesMetadataAndRejectedFiles) {
  TempDir dir;
  const std::string root = dir.path("in");
  auto options = options_for(root, dir.path("c.h5"));
  options.manifest = write_inputs(root);
  medload::loader::build_cache(options);
  const auto summary = medload::loader::inspect_cache(dir.path("c.h5"));
  EXPECT_EQ(summary["images"]["count"], 16);
  EXPECT_EQ(summary["schema_version"], 2);
  EXPECT_FALSE(summary.contains("targets"));  // built without targets
  std::map<std::string, int> classes;
  for (const auto& c : summary["classes"]) classes[c["name"]] = c["count"];
  // Labels of img0..img15: i%5==4 unlabeled (4, 9, 14), else by i%3.
  EXPECT_EQ(classes["edema"], 5);   // 0 3 6 12 15
  EXPECT_EQ(classes["normal"], 4);  // 1 7 10 13
  EXPECT_EQ(classes["nodule"], 4);  // 2 5 8 11
  EXPECT_EQ(summary["unlabeled"], 3);
  EXPECT_EQ(summary["sites"]["north"], 8);
  EXPECT_EQ(summary["sites"]["south"], 8);
  EXPECT_EQ(summary["patients"], 8);
  EXPECT_EQ(summary["metadata"]["age"]["imputed"], 4);  // 1 5 9 13
  EXPECT_EQ(summary["rejected"]["count"], 2);
  EXPECT_EQ(summary["rejected"]["by_reason"]["duplicate"], 1);
  EXPECT_EQ(summary["rejected"]["by_reason"]["blank"], 1);
  EXPECT_EQ(summary["config"]["preprocess"]["letterbox"]["size"], 40);
  EXPECT_FALSE(summary.contains("verify"));
  const auto printed = medload::test::run_medload("inspect " + dir.path("c.h5"), false);
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("edema=5"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find("blank"), std::string::npos) << printed.output;
}

TEST(InspectCache, VerifyNamesTheSampleWithAFlippedByte) {
  TempDir dir;
  const std::string root = dir.path("in");
  auto options = options_for(root, dir.path("c.h5"));
  options.manifest = write_inputs(root);
  medload::loader::build_cache(options);
  std::vector<std::uint8_t> image;
  std::string source;
  {
    const CacheReader reader(dir.path("c.h5"));
    image.resize(reader.image_bytes());
    reader.read_image(5, image.data());
    source = reader.source_paths()[5];
  }
  const std::string bytes = medload::loader::test::file_bytes(dir.path("c.h5"));
  const auto at = bytes.find(std::string(image.begin(), image.end()));
  ASSERT_NE(at, std::string::npos);
  const medload::core::FileDescriptor fd(::open(dir.path("c.h5").c_str(), O_WRONLY));
  const char flipped = static_cast<char>(bytes[at + 777] ^ 0x01);
  ASSERT_EQ(::pwrite(fd.get(), &flipped, 1, static_cast<off_t>(at + 777)), 1);

  medload::loader::InspectOptions inspect;
  inspect.verify = true;
  inspect.threads = 2;
  const auto summary = medload::loader::inspect_cache(dir.path("c.h5"), inspect);
  EXPECT_EQ(summary["verify"]["checked"], 16);
  ASSERT_EQ(summary["verify"]["failed"], 1);
  EXPECT_EQ(summary["verify"]["failures"][0]["index"], 5);
  EXPECT_EQ(summary["verify"]["failures"][0]["source_path"], source);
  const auto printed = medload::test::run_medload("inspect --verify --threads 2 " + dir.path("c.h5"), false);
  EXPECT_EQ(printed.exit_code, 1) << printed.output;
  EXPECT_NE(printed.output.find(source), std::string::npos) << printed.output;
}

TEST(InspectCache, ShowsSplitsStoredInTheCache) {
  TempDir dir;
  const std::string root = dir.path("in");
  auto options = options_for(root, dir.path("c.h5"));
  options.manifest = write_inputs(root);
  medload::loader::build_cache(options);
  {
    namespace h5 = medload::loader::h5;
    auto file = h5::File::open(dir.path("c.h5"), true);
    h5::Group group = h5::create_group(file.id(), "splits/default");
    std::vector<std::int8_t> part(16, 0);
    for (int i = 12; i < 16; ++i) part[static_cast<std::size_t>(i)] = 2;
    h5::Dataset dataset = h5::create_dataset(group.id(), "part", H5T_NATIVE_INT8, {16});
    H5Dwrite(dataset.id(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, part.data());
    h5::write_attribute(group.id(), "kind", "parts");
    h5::write_attribute(group.id(), "parts", std::int64_t{3});
    h5::write_attribute(group.id(), "mean", std::vector<double>{0.25});
    h5::write_attribute(group.id(), "std", std::vector<double>{0.125});
  }
  const auto summary = medload::loader::inspect_cache(dir.path("c.h5"));
  const auto& split = summary["splits"]["default"];
  EXPECT_EQ(split["datasets"]["part"]["0"]["count"], 12);
  EXPECT_EQ(split["datasets"]["part"]["2"]["count"], 4);
  EXPECT_EQ(split["attributes"]["mean"], nlohmann::json::array({0.25}));
}
