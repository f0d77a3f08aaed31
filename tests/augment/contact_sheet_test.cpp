#include "medload/augment/contact_sheet.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <filesystem>

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
  std::filesystem::remove(path);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(back.rows, sheet.size(0));
  EXPECT_EQ(back.cols, sheet.size(1));
  EXPECT_THROW(write_png(sheet, "/nonexistent-dir/x.png"), medload::IoError);
}

TEST(ContactSheet, RejectsMismatchedLabels) {
  Augmenter augmenter(AugmentOptions(), 1);
  EXPECT_THROW(make_contact_sheet(synthetic_u8(2, 1, 32, 32), {0, 1}, {"a"}, augmenter),
               medload::ConfigError);
  EXPECT_THROW(make_contact_sheet(synthetic_float(2, 1, 32, 32), {0, 1}, {"a", "b"}, augmenter),
               medload::ConfigError);
}
