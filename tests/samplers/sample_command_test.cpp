// `medload sample` end to end: a labels table or a cache (with its stored patient-level split) in,
// a composition report (text and JSON) out.

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "medload_test/command.h"

namespace {

using medload::test::run_medload;
using Result = medload::test::CommandResult;

Result run(const std::string& arguments) { return run_medload("sample " + arguments); }

std::string write_labels() {
  const std::string path =
      ::testing::TempDir() + "medload_sample_labels_" + std::to_string(::getpid()) + ".csv";
  std::ofstream out(path);
  out << "path,label,patient_id\n";
  // 60 normal, 15 pneumonia, 5 tb, one unlabelled.
  for (int i = 0; i < 80; ++i) {
    out << "img" << i << ".png," << (i < 60 ? "normal" : (i < 75 ? "pneumonia" : "tb")) << ",p" << i % 20
        << "\n";
  }
  out << "img80.png,,p0\n";
  return path;
}

TEST(SampleCommand, ReportsExactOversampleCountsPerClassAndRankAsJson) {
  const Result r = run("--labels " + write_labels() +
                       " --sampler oversample --split all --epochs 2 --world-size 3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["class_names"], nlohmann::json({"normal", "pneumonia", "tb"}));
  EXPECT_EQ(j["dataset_size"], 80);
  ASSERT_EQ(j["epochs"].size(), 2u);
  EXPECT_EQ(j["epochs"][0]["class_counts"], nlohmann::json({60, 60, 60}));
  EXPECT_EQ(j["epochs"][1]["unique"], 80);
  ASSERT_EQ(j["epochs"][0]["ranks"].size(), 3u);
  for (const auto& rank : j["epochs"][0]["ranks"]) EXPECT_EQ(rank["draws"], 60);
}

TEST(SampleCommand, TextReportNamesTheUnlabelledSamples) {
  const Result r = run("--labels " + write_labels() + " --sampler sqrt --split all");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("80 labelled samples (1 unlabelled left out)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pneumonia"), std::string::npos) << r.output;
}

TEST(SampleCommand, BadSamplerIsAUsageError) {
  const Result r = run("--labels " + write_labels() + " --sampler smote");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("smote"), std::string::npos) << r.output;
}

TEST(SampleCommand, AbsurdEpochsOrWorldSizeIsAUsageErrorNamingTheLimit) {
  // 2^32 - 1 ranks or epochs used to allocate until the process was killed.
  for (const char* option : {"--epochs", "--world-size"}) {
    const Result r = run("--labels " + write_labels() + " --sampler sqrt --split all " + option + " 4294967295");
    EXPECT_EQ(r.exit_code, 2) << option << ": " << r.output;
    EXPECT_NE(r.output.find(option), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(option == std::string("--epochs") ? "10000" : "65536"), std::string::npos) << r.output;
  }
}

// A cache of 48 synthetic images (normal 30, pneumonia 12, tb 6; two images per patient, one
// unlabeled image), built with `medload build` from a manifest; per process, as ctest runs
// tests in parallel processes.
class SampleFromCache : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    namespace fs = std::filesystem;
    dir_ = fs::path(::testing::TempDir()) / ("medload_sample_cache_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images");
    std::ofstream manifest(dir_ / "manifest.csv");
    manifest << "path,label,patient_id\n";
    cv::RNG rng(7);
    for (int i = 0; i < 49; ++i) {
      // A gradient under noise (pure noise is rejected as blank), different for every image.
      cv::Mat img(40, 40, CV_8U);
      rng.fill(img, cv::RNG::UNIFORM, 0, 32);
      for (int r = 0; r < 40; ++r) img.row(r) += cv::Scalar((r * (i + 3)) % 200);
      const std::string name = "img" + std::to_string(i) + ".png";
      cv::imwrite((dir_ / "images" / name).string(), img);
      const std::string label = i == 48 ? "" : i < 30 ? "normal" : i < 42 ? "pneumonia" : "tb";
      manifest << "images/" << name << "," << label << ",p" << i / 2 << "\n";
    }
    manifest.close();
    build_ = run_medload("build " + dir_.string() + " --manifest " + (dir_ / "manifest.csv").string() +
                         " -o " + cache() + " --size 32 --quiet");
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  static std::string cache() { return (dir_ / "cache.h5").string(); }
  void SetUp() override { ASSERT_EQ(build_.exit_code, 0) << "medload build failed: " << build_.output; }

  static std::filesystem::path dir_;
  static Result build_;
};

std::filesystem::path SampleFromCache::dir_;
Result SampleFromCache::build_;

TEST_F(SampleFromCache, AllTakesEveryLabelledSampleOfTheCache) {
  const Result r = run(cache() + " --sampler oversample --split all --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["class_names"], nlohmann::json({"normal", "pneumonia", "tb"}));
  EXPECT_EQ(j["dataset_size"], 48);
  EXPECT_EQ(j["epochs"][0]["class_counts"], nlohmann::json({30, 30, 30}));
  const Result text = run(cache() + " --sampler sqrt --split all");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("48 labelled samples (1 unlabelled left out)"), std::string::npos)
      << text.output;
}

TEST_F(SampleFromCache, ASplitNeedsAStoredSplitAndThenDrawsOnlyItsPart) {
  // A copy of the cache, so that storing a split does not race the other tests' processes.
  const std::string copy = (dir_ / "split.h5").string();
  std::filesystem::copy_file(cache(), copy, std::filesystem::copy_options::overwrite_existing);
  const Result missing = run(copy + " --sampler oversample --split train");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("medload split " + copy), std::string::npos) << missing.output;

  const Result split = run_medload("split " + copy + " --ratios 0.5,0.25,0.25 --seed 3 --json");
  ASSERT_EQ(split.exit_code, 0) << split.output;
  // The train part's class counts, as `medload split` stored them.
  std::map<std::string, std::int64_t> train;
  // `medload split --json` prints the stored splits as a JSON array.
  const nlohmann::json splits = nlohmann::json::parse(split.output.substr(split.output.find('[')));
  for (const auto& s : splits) {
    if (s["name"] != "default") continue;
    for (const auto& part : s["parts"]) {
      if (part["name"] != "train") continue;
      for (const auto& [name, count] : part["classes"].items()) train[name] = count.get<std::int64_t>();
    }
  }
  ASSERT_EQ(train.size(), 4u) << split.output;  // three classes and "(unlabeled)"
  const std::int64_t labelled = train["normal"] + train["pneumonia"] + train["tb"];
  const std::int64_t largest = std::max({train["normal"], train["pneumonia"], train["tb"]});
  ASSERT_LT(labelled, 48);

  for (const std::string part : {"train", "val", "test"}) {
    const Result r = run(copy + " --sampler weighted --split " + part + " --json");
    ASSERT_EQ(r.exit_code, 0) << part << ": " << r.output;
  }
  const Result r = run(copy + " --sampler oversample --split train --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["dataset_size"], labelled);
  EXPECT_EQ(j["epochs"][0]["class_counts"], nlohmann::json({largest, largest, largest}));
}

TEST(SampleCommand, AMultiLabelCacheWithUnknownLabelsLeavesOutWhatHasNoSingleClass) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("medload_sample_unknown_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // label,unknown_labels per image: single classes a x3, b x3, and a with b unknown: 7 labelled;
  // a|b (two positives) and b unknown beside a known 0 for a: 2 multi-label; nothing: 1 unlabelled.
  const std::vector<std::string> rows{"a,", "a,", "a,", "b,", "b,", "b,", "a,b", "a|b,", ",b", ","};
  std::ofstream manifest(dir / "manifest.csv");
  manifest << "path,label,unknown_labels\n";
  cv::RNG rng(11);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    cv::Mat img(40, 40, CV_8U);
    rng.fill(img, cv::RNG::UNIFORM, 0, 32);
    for (int r = 0; r < 40; ++r) img.row(r) += cv::Scalar((r * static_cast<int>(i + 3)) % 200);
    const std::string name = "img" + std::to_string(i) + ".png";
    cv::imwrite((dir / name).string(), img);
    manifest << name << "," << rows[i] << "\n";
  }
  manifest.close();
  const std::string cache = (dir / "cache.h5").string();
  const Result build = run_medload("build " + dir.string() + " --manifest " +
                                   (dir / "manifest.csv").string() + " -o " + cache + " --size 32 --quiet");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  const Result r = run(cache + " --sampler sqrt --split all");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("7 labelled samples (1 unlabelled left out) (2 multi-label left out)"),
            std::string::npos)
      << r.output;
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

}  // namespace
