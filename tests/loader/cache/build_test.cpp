// build_cache: content and order, the report, rejected files, labels and metadata policies,
// incremental rebuilds, config changes, and clear errors that leave an existing cache alone.

#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cache_compare.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "test_util.h"

namespace {

using medload::loader::BuildOptions;
using medload::loader::CacheReader;
using medload::loader::test::TempDir;
using medload::loader::test::write_bytes;
using medload::loader::test::write_png;
using medload::loader::test::write_tree;
namespace fs = std::filesystem;

BuildOptions small_options(const std::string& root, const std::string& output) {
  BuildOptions options;
  options.root = root;
  options.output = output;
  options.threads = 2;
  options.progress = medload::ProgressStyle::kQuiet;
  options.config.preprocess.letterbox.size = 48;
  options.config.validate.isolation = medload::loader::Isolation::kInProcess;
  options.batch_files = 3;
  return options;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(BuildCache, StoresEveryOkFileInInputOrderAndReportsTheRest) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"effusion", "normal"}, 4);
  write_png(root + "/effusion/zcopy.png", 0);   // the same pixels as effusion/img0.png
  write_bytes(root + "/normal/empty.png", "");  // empty_file
  write_bytes(root + "/normal/junk.png", "not an image at all");
  cv::Mat blank(64, 64, CV_8UC1, cv::Scalar(7));
  cv::imwrite(root + "/normal/blank.png", blank);  // blank
  const std::string output = dir.path("cache.h5");
  const auto result = medload::loader::build_cache(small_options(root, output));

  EXPECT_EQ(result.sources, 12u);
  EXPECT_EQ(result.ok_files, 8u);
  EXPECT_EQ(result.rejected_files, 4u);
  EXPECT_EQ(result.images, 8u);
  EXPECT_EQ(result.decoded_files, 12u);
  EXPECT_FALSE(fs::exists(output + ".partial"));
  EXPECT_FALSE(fs::exists(output + ".tmp"));

  const CacheReader reader(output);
  ASSERT_EQ(reader.size(), 8u);
  EXPECT_EQ(reader.height(), 48);
  EXPECT_EQ(reader.width(), 48);
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"effusion", "normal"}));
  const std::vector<std::string> expected_paths{"effusion/img0.png", "effusion/img1.png", "effusion/img2.png",
                                                "effusion/img3.png", "normal/img4.png",   "normal/img5.png",
                                                "normal/img6.png",   "normal/img7.png"};
  EXPECT_EQ(reader.source_paths(), expected_paths);
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  for (std::size_t i = 0; i < reader.size(); ++i) EXPECT_TRUE(reader.verify(i)) << i;
  EXPECT_EQ(reader.source_hashes()[0].size(), 16u);
  EXPECT_GT(reader.geometry(0).original_width, 0);

  std::map<std::string, std::string> reasons;
  for (const auto& r : reader.rejected()) reasons[r.path] = r.reason;
  EXPECT_EQ(reasons["effusion/zcopy.png"], "duplicate");
  EXPECT_EQ(reasons["normal/empty.png"], "empty_file");
  EXPECT_EQ(reasons["normal/blank.png"], "blank");
  EXPECT_EQ(reasons.size(), 4u);

  const auto report = read_json(dir.path("cache.report.json"));
  EXPECT_EQ(report["files"].size(), 12u);
  EXPECT_EQ(report["counts"]["ok"], 8);
  EXPECT_EQ(report["counts"]["rejected"], 4);
  EXPECT_EQ(report["counts"]["by_reason"]["duplicate"], 1);
  EXPECT_GT(report["stage_cost_ns"]["preprocess"]["total_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(report["build"]["images"], 8);
}

TEST(BuildCache, DecoderWorkersPreprocessWhatTheyDecodeAndWriteWhatAnInProcessBuildWrites) {
  // The build preprocesses each frame inside the worker that decoded it and gets back only the
  // preprocessed image with its description (geometry, hashes, timings): the cache must not
  // depend on where that happened. 8-bit, 16-bit and colour inputs, one of them a duplicate.
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a", "b"}, 3);
  write_png(root + "/a/deep.png", 40, 120, 70, true);
  write_png(root + "/b/zcopy.png", 0);  // the same pixels as a/img0.png
  cv::Mat colour(90, 110, CV_8UC3);
  cv::RNG(5).fill(colour, cv::RNG::UNIFORM, 0, 256);
  cv::imwrite(root + "/b/colour.png", colour);
  auto in_process = small_options(root, dir.path("in_process.h5"));
  auto workers = small_options(root, dir.path("workers.h5"));
  workers.config.validate.isolation = medload::loader::Isolation::kProcess;
  const auto a = medload::loader::build_cache(in_process);
  const auto b = medload::loader::build_cache(workers);
  EXPECT_EQ(a.images, 8u);
  EXPECT_EQ(b.images, a.images);
  EXPECT_EQ(b.rejected_files, 1u);
  medload::loader::test::expect_same_content(dir.path("in_process.h5"), dir.path("workers.h5"));
  const CacheReader x(dir.path("in_process.h5"));
  const CacheReader y(dir.path("workers.h5"));
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_TRUE(y.verify(i)) << i;
    EXPECT_EQ(x.geometry(i).to_json(), y.geometry(i).to_json()) << i;
  }
  // The cost of each preprocessing step still reaches the report from the workers.
  const auto report = read_json(dir.path("workers.report.json"));
  for (const char* step : {"letterbox_ns", "clahe_ns", "bilateral_ns", "total_ns"}) {
    EXPECT_GT(report["stage_cost_ns"]["preprocess"][step].get<std::int64_t>(), 0) << step;
  }
}

TEST(BuildCache, IncrementalRebuildDecodesOnlyNewFilesAndEqualsAFreshBuild) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a", "b"}, 5);
  const std::string output = dir.path("cache.h5");
  auto first = medload::loader::build_cache(small_options(root, output));
  EXPECT_EQ(first.decoded_files, 10u);
  write_png(root + "/a/new1.png", 100);
  write_png(root + "/b/new2.png", 101);
  write_png(root + "/b/new3.png", 102);
  const auto second = medload::loader::build_cache(small_options(root, output));
  EXPECT_EQ(second.decoded_files, 3u);
  EXPECT_EQ(second.reused_files, 10u);
  EXPECT_EQ(second.images, 13u);

  const std::string fresh = dir.path("fresh.h5");
  medload::loader::build_cache(small_options(root, fresh));
  medload::loader::test::expect_same_content(output, fresh);

  // A changed config rebuilds everything.
  auto changed = small_options(root, output);
  changed.config.preprocess.letterbox.size = 40;
  const auto third = medload::loader::build_cache(changed);
  EXPECT_EQ(third.decoded_files, 13u);
  EXPECT_EQ(third.reused_files, 0u);
  EXPECT_EQ(CacheReader(output).height(), 40);
}

TEST(BuildCache, ManifestLabelsMissingLabelsAndImputedMetadata) {
  TempDir dir;
  const std::string root = dir.path("in");
  for (int i = 0; i < 6; ++i) write_png(root + "/img" + std::to_string(i) + ".png", i);
  write_bytes(root + "/m.csv",
              "path,label,patient_id,age,sex\n"
              "img0.png,pneumonia,p0,30,F\n"
              "img1.png,pneumonia,p1,,M\n"   // age missing -> pneumonia median (30+50)/2 = 40
              "img2.png,pneumonia,p2,50,\n"  // sex missing -> pneumonia mode: F (tie F/M -> F)
              "img3.png,normal,p3,70,M\n"
              "img4.png,,p4,,M\n"  // unlabeled, age missing -> global median 55
              "img5.png,normal|pneumonia,p5,60,F\n");
  auto options = small_options(root, dir.path("m.h5"));
  options.manifest = root + "/m.csv";
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 6u);
  EXPECT_EQ(result.unlabeled, 1u);
  EXPECT_EQ(result.imputed.at("age"), 2u);
  EXPECT_EQ(result.imputed.at("sex"), 1u);

  const CacheReader reader(dir.path("m.h5"));
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"normal", "pneumonia"}));
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{1, 1, 1, 0, -1, -1}));
  ASSERT_TRUE(reader.multi_label());
  EXPECT_EQ(reader.label_matrix(), (std::vector<std::uint8_t>{0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1}));
  EXPECT_EQ(reader.patient_ids()[3], "p3");
  const auto age = reader.meta("age");
  ASSERT_TRUE(age.numeric);
  EXPECT_DOUBLE_EQ(age.values[1], 40.0);
  EXPECT_DOUBLE_EQ(age.values[4], 55.0);  // median of 30, 50, 70, 60
  EXPECT_EQ(age.imputed, (std::vector<std::uint8_t>{0, 1, 0, 0, 1, 0}));
  const auto sex = reader.meta("sex");
  EXPECT_FALSE(sex.numeric);
  EXPECT_EQ(sex.text[2], "F");
  EXPECT_EQ(sex.imputed, (std::vector<std::uint8_t>{0, 0, 1, 0, 0, 0}));

  // Dropping unlabeled samples, no imputation.
  options.output = dir.path("drop.h5");
  options.missing_labels = medload::loader::MissingLabelPolicy::kDrop;
  options.impute = medload::loader::ImputePolicy::kNone;
  const auto dropped = medload::loader::build_cache(options);
  EXPECT_EQ(dropped.images, 5u);
  EXPECT_EQ(dropped.dropped_unlabeled, 1u);
  const CacheReader drop_reader(dir.path("drop.h5"));
  EXPECT_TRUE(std::isnan(drop_reader.meta("age").values[1]));
  EXPECT_EQ(drop_reader.meta("age").imputed[1], 1);
}

TEST(BuildCache, MissingRootAndMissingOutputFolderAreClearErrors) {
  TempDir dir;
  try {
    medload::loader::build_cache(small_options(dir.path("nowhere"), dir.path("c.h5")));
    FAIL();
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
  write_tree(dir.path("in"), {"a"}, 2);
  try {
    medload::loader::build_cache(small_options(dir.path("in"), dir.path("no/such/folder/c.h5")));
    FAIL();
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  auto bad = small_options(dir.path("in"), dir.path("c.h5"));
  bad.shard_index = 3;
  bad.shard_count = 2;
  EXPECT_THROW(medload::loader::build_cache(bad), medload::ConfigError);
}

TEST(BuildCache, UnwritableOutputFolderIsAClearErrorNamingTheOutput) {
  TempDir dir;
  write_tree(dir.path("in"), {"a"}, 2);
  // Root writes through file modes, so as root the folder is /proc (nothing can be created there);
  // otherwise a read-only folder of our own.
  std::string folder = "/proc";
  if (::geteuid() != 0) {
    folder = dir.path("read-only");
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::string output = folder + "/medload-unwritable-test.h5";
  try {
    medload::loader::build_cache(small_options(dir.path("in"), output));
    FAIL() << "built " << output;
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(output), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(output));
  if (folder != "/proc") fs::permissions(folder, fs::perms::owner_all);
}

TEST(BuildCache, RefusesToReplaceANewerSchemaCacheAndLeavesItAlone) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a"}, 3);
  const std::string output = dir.path("cache.h5");
  medload::loader::build_cache(small_options(root, output));
  {
    auto file = medload::loader::h5::File::open(output, true);
    medload::loader::h5::write_attribute(file.id(), "schema_version", std::int64_t{9});
  }
  const auto before = medload::loader::test::file_bytes(output);
  try {
    medload::loader::build_cache(small_options(root, output));
    FAIL();
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("schema_version is 9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("refusing to replace"), std::string::npos) << e.what();
  }
  EXPECT_EQ(medload::loader::test::file_bytes(output), before);
}
