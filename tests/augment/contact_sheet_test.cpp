#include "medload/augment/contact_sheet.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "augment_test_util.h"
#include "medload/core/error.h"

using namespace medload::augment;
using namespace medload::augment::test;

TEST(ContactSheet, HasOneRowPerSampleAndOneColumnPerDrawPlusTheOriginal) {
  Augmenter augmenter(AugmentOptions::full_chain(), 2);
  const torch::Tensor images = synthetic_u8(3, 1, 40, 50);
  ContactSheetOptions o;
  o.draws = 3;
  o.tile = 64;
  const torch::Tensor sheet =
      make_contact_sheet(images, {5, 6, 7}, {"#5 normal", "#6 effusion", "#7 normal"}, augmenter, o);
  ASSERT_EQ(sheet.dim(), 3);
  EXPECT_EQ(sheet.size(2), 3);
  EXPECT_EQ(sheet.size(1), 170 + 4 * (64 + 4));
  EXPECT_EQ(sheet.size(0), 28 + 3 * (64 + 18 + 4));
  // Column 1 (epoch 0) of row 0 is the letterboxed draw of epoch 0 for sample 5: the tile is
  // not the original tile and not blank.
  const torch::Tensor original = sheet.narrow(0, 28, 64).narrow(1, 170, 64);
  const torch::Tensor epoch0 = sheet.narrow(0, 28, 64).narrow(1, 170 + 68, 64);
  EXPECT_FALSE(original.equal(epoch0));
  EXPECT_GT(epoch0.to(torch::kFloat32).mean().item<double>(), 20.0);
  // Labels are drawn in the label column.
  EXPECT_GT(sheet.narrow(0, 28, 64).narrow(1, 0, 160).to(torch::kFloat32).max().item<double>(), 200.0);
}

TEST(ContactSheet, WritesAReadablePng) {
  Augmenter augmenter(AugmentOptions(), 1);
  const torch::Tensor sheet = make_contact_sheet(synthetic_u8(2, 1, 32, 32), {0, 1}, {"a", "b"}, augmenter);
  const auto path = std::filesystem::temp_directory_path() /
                    ("medload_contact_sheet_test_" + std::to_string(::getpid()) + ".png");
  write_png(sheet, path.string());
  const cv::Mat back = cv::imread(path.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(back.rows, sheet.size(0));
  EXPECT_EQ(back.cols, sheet.size(1));
  // Under a file, not a folder: nothing can be written there.
  EXPECT_THROW(write_png(sheet, path.string() + "/x.png"), medload::IoError);
  std::filesystem::remove(path);
}

TEST(ContactSheet, WritesAPngWhateverTheExtensionAndNeverIntoAFifo) {
  Augmenter augmenter(AugmentOptions(), 1);
  const torch::Tensor sheet = make_contact_sheet(synthetic_u8(1, 1, 32, 32), {0}, {"a"}, augmenter);
  const auto dir =
      std::filesystem::temp_directory_path() / ("medload_contact_sheet_fifo_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto plain = dir / "sheet";  // no extension: still a PNG
  write_png(sheet, plain.string());
  EXPECT_FALSE(cv::imread(plain.string(), cv::IMREAD_COLOR).empty());
  // A FIFO named as the output: refused at once (cv::imwrite would wait for a reader forever).
  const auto fifo = dir / "fifo.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    write_png(sheet, fifo.string());
    ADD_FAILURE() << "expected IoError";
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
  }
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // left as it was
  std::filesystem::remove_all(dir);
}

TEST(ContactSheet, ASheetTooLargeToDrawIsRefusedBeforeAllocating) {
  // Each option within its range, 27 GB together (256 samples of 1024-pixel tiles, 32 draws).
  Augmenter augmenter(AugmentOptions(), 1);
  ContactSheetOptions options;
  options.draws = 32;
  options.tile = 1024;
  const std::int64_t n = 256;
  std::vector<std::int64_t> ids(n);
  std::vector<std::string> labels(n, "x");
  try {
    make_contact_sheet(synthetic_u8(n, 1, 32, 32), ids, labels, augmenter, options);
    FAIL() << "expected ConfigError";
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("34094 x 267804 pixels; at most 268435456 are drawn"),
              std::string::npos)
        << e.what();
  }
  options.tile = 32;  // the same samples and draws in small tiles: drawn
  EXPECT_EQ(make_contact_sheet(synthetic_u8(n, 1, 32, 32), ids, labels, augmenter, options).dim(), 3);
}

TEST(ContactSheet, RejectsMismatchedLabels) {
  Augmenter augmenter(AugmentOptions(), 1);
  EXPECT_THROW(make_contact_sheet(synthetic_u8(2, 1, 32, 32), {0, 1}, {"a"}, augmenter),
               medload::ConfigError);
  EXPECT_THROW(make_contact_sheet(synthetic_float(2, 1, 32, 32), {0, 1}, {"a", "b"}, augmenter),
               medload::ConfigError);
}
