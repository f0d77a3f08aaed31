// `medload preview` end to end: a folder of images -> `medload build` -> a cache -> the contact
// sheet PNG, its layout, determinism, the safety policy's errors and recorded overrides.

#include <unistd.h>

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "medload_test/command.h"

namespace fs = std::filesystem;

namespace {

using Result = medload::test::CommandResult;

Result run(const std::string& arguments) { return medload::test::run_medload(arguments); }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A small ImageFolder tree (normal: 5 images, effusion: 2), built into a cache once.
class PreviewCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Per process: ctest runs each test in its own process, several at once.
    dir_ = fs::path(::testing::TempDir()) / ("medload_preview_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    for (const auto& [cls, count] : {std::pair<std::string, int>{"normal", 5}, {"effusion", 2}}) {
      fs::create_directories(dir_ / "root" / cls);
      for (int i = 0; i < count; ++i) {
        cv::Mat img(96, 80, CV_8U);
        for (int y = 0; y < img.rows; ++y) {
          for (int x = 0; x < img.cols; ++x) {
            img.at<std::uint8_t>(y, x) = cv::saturate_cast<std::uint8_t>(
                110 + 70 * std::sin(x / (5.0 + i) + (cls == "normal" ? 0 : 1)) * std::cos(y / 7.0) +
                (x > 30 && x < 36 ? 60 : 0));
          }
        }
        cv::imwrite((dir_ / "root" / cls / (cls + std::to_string(i) + ".png")).string(), img);
      }
    }
    build_ = run("build " + (dir_ / "root").string() + " -o " + cache() + " --size 64");
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  static std::string cache() { return (dir_ / "cache.h5").string(); }
  void SetUp() override { ASSERT_EQ(build_.exit_code, 0) << "medload build failed: " << build_.output; }

  static fs::path dir_;
  static Result build_;
};

fs::path PreviewCommand::dir_;
Result PreviewCommand::build_;

}  // namespace

TEST_F(PreviewCommand, WritesASheetWithOneRowPerSampleAndOneColumnPerDraw) {
  const fs::path png = dir_ / "grid.png";
  const Result r = run("preview " + cache() + " -o " + png.string() + " --n 4 --draws 3 --tile 64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const cv::Mat sheet = cv::imread(png.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(sheet.empty());
  EXPECT_EQ(sheet.cols, 170 + 4 * (64 + 4));      // label column, as stored + 3 draws
  EXPECT_EQ(sheet.rows, 28 + 4 * (64 + 18 + 4));  // header, 4 rows of tile + caption
  EXPECT_NE(r.output.find("4 samples x 3 augmented draws"), std::string::npos) << r.output;
  // Deterministic: the same command writes the same bytes.
  const fs::path again = dir_ / "grid2.png";
  ASSERT_EQ(run("preview " + cache() + " -o " + again.string() + " --n 4 --draws 3 --tile 64").exit_code, 0);
  EXPECT_EQ(read_bytes(png), read_bytes(again));
  // Another seed draws differently.
  const fs::path reseeded = dir_ / "grid3.png";
  ASSERT_EQ(run("preview " + cache() + " -o " + reseeded.string() + " --n 4 --draws 3 --tile 64 --seed 9")
                .exit_code,
            0);
  EXPECT_NE(read_bytes(png), read_bytes(reseeded));
}

TEST_F(PreviewCommand, AConfigPastAMedicalLimitIsAUsageErrorNamingTheKey) {
  const fs::path config = dir_ / "vflip.json";
  std::ofstream(config) << R"({"vertical_flip": {"probability": 0.5}})";
  const Result r =
      run("preview " + cache() + " -o " + (dir_ / "x.png").string() + " --augment " + config.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("augment.vertical_flip.probability is 0.5"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
}

TEST_F(PreviewCommand, OverridesInForceAreReported) {
  const fs::path config = dir_ / "unsafe.json";
  // A whole pipeline config works too: its "augment" part is used.
  std::ofstream(config)
      << R"({"augment": {"unsafe_override": true, "rotation": {"probability": 1, "max_degrees": 20}}})";
  const Result r = run("preview " + cache() + " -o " + (dir_ / "unsafe.png").string() +
                       " --n 2 --draws 1 --augment " + config.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find(
          "override in force: unsafe_override: augment.rotation.max_degrees is 20; the medical limit is 10"),
      std::string::npos)
      << r.output;
}

TEST_F(PreviewCommand, RejectsSampleIdsOutsideTheCache) {
  const Result r = run("preview " + cache() + " -o " + (dir_ / "y.png").string() + " --ids 0,99");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--ids has 99"), std::string::npos) << r.output;
}
