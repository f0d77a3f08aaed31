// The preprocessing kernels (loader/src/preprocess/kernels.h) on hand-made images: exact values
// where the contract gives them, and every precondition refused with the kernel's name.

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels.h"
#include "medload/core/error.h"

namespace medload::loader::detail {
namespace {

template <typename T>
cv::Mat row_of(int type, const std::vector<T>& values) {
  cv::Mat m(1, static_cast<int>(values.size()), type);
  for (std::size_t i = 0; i < values.size(); ++i) m.at<T>(0, static_cast<int>(i)) = values[i];
  return m;
}

template <typename E, typename F>
std::string message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "no exception";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------
// percentile_range

TEST(PercentileRange, GivesTheNearestRankValuesOf16BitData) {
  cv::Mat m(10, 10, CV_16UC1);
  for (int i = 0; i < 100; ++i) m.at<std::uint16_t>(i / 10, i % 10) = static_cast<std::uint16_t>(99 - i);
  const ValueRange r = percentile_range(m, 10, 90, "img");
  EXPECT_EQ(r.lo, 9);   // rank floor(0.10 * 99) = 9
  EXPECT_EQ(r.hi, 90);  // rank ceil(0.90 * 99) = 90
  const ValueRange all = percentile_range(m, 0, 100, "img");
  EXPECT_EQ(all.lo, 0);
  EXPECT_EQ(all.hi, 99);
}

TEST(PercentileRange, KeepsTheSignOfInt16AndCountsEveryChannel) {
  const ValueRange r = percentile_range(row_of<std::int16_t>(CV_16SC1, {7, -5, 0, -3}), 0, 100, "img");
  EXPECT_EQ(r.lo, -5);
  EXPECT_EQ(r.hi, 7);
  cv::Mat bgr(1, 1, CV_16UC3, cv::Scalar(30, 10, 20));
  const ValueRange c = percentile_range(bgr, 0, 100, "img");
  EXPECT_EQ(c.lo, 10);
  EXPECT_EQ(c.hi, 30);
}

TEST(PercentileRange, UsesOnlyTheFiniteValuesOfFloatData) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const ValueRange r =
      percentile_range(row_of<float>(CV_32FC1, {nan, 1.5f, -2.0f, inf, 3.0f}), 0, 100, "img");
  EXPECT_EQ(r.lo, -2.0);
  EXPECT_EQ(r.hi, 3.0);
  const std::string what = message_of<FormatError>([&] {
    percentile_range(row_of<float>(CV_32FC1, {nan, inf}), 0, 100, "scan.dcm");
  });
  EXPECT_TRUE(contains(what, "scan.dcm has no finite pixel values")) << what;
}

TEST(PercentileRange, RefusesOtherDepthsEmptyImagesAndPercentilesOutOfOrder) {
  EXPECT_TRUE(contains(message_of<FormatError>([] { percentile_range(cv::Mat(2, 2, CV_8UC1), 0, 100, "x"); }),
                       "percentile_range"));
  EXPECT_THROW(percentile_range(cv::Mat(), 0, 100, "x"), FormatError);
  const cv::Mat m(2, 2, CV_16UC1, cv::Scalar(1));
  EXPECT_TRUE(
      contains(message_of<ConfigError>([&] { percentile_range(m, 60, 40, "x"); }), "percentile_range"));
  EXPECT_THROW(percentile_range(m, -1, 50, "x"), ConfigError);
  EXPECT_THROW(percentile_range(m, 50, 101, "x"), ConfigError);
}

// ---------------------------------------------------------------------------------------------
// apply_voi, stretch_to_16bit

VoiTransform linear_exact(double center, double width) {
  VoiTransform voi;
  voi.function = VoiTransform::Function::kLinearExact;
  voi.center = center;
  voi.width = width;
  return voi;
}

TEST(ApplyVoi, MapsTheWindowOntoTheFull16BitRange) {
  const cv::Mat out =
      apply_voi(row_of<std::uint16_t>(CV_16UC1, {40, 50, 75, 150, 151}), linear_exact(100, 100), false, 0);
  ASSERT_EQ(out.type(), CV_16UC1);
  EXPECT_EQ(out.at<std::uint16_t>(0, 0), 0);      // below the window
  EXPECT_EQ(out.at<std::uint16_t>(0, 1), 0);      // its lower edge
  EXPECT_EQ(out.at<std::uint16_t>(0, 2), 16384);  // a quarter: 0.25 * 65535 = 16383.75
  EXPECT_EQ(out.at<std::uint16_t>(0, 3), 65535);  // its upper edge
  EXPECT_EQ(out.at<std::uint16_t>(0, 4), 65535);  // above it
}

TEST(ApplyVoi, Keeps8BitImages8BitAndMapsFloatNaNToZero) {
  const cv::Mat out8 =
      apply_voi(row_of<std::uint8_t>(CV_8UC1, {50, 75, 150}), linear_exact(100, 100), false, 0);
  ASSERT_EQ(out8.type(), CV_8UC1);
  EXPECT_EQ(out8.at<std::uint8_t>(0, 0), 0);
  EXPECT_EQ(out8.at<std::uint8_t>(0, 1), 64);  // 0.25 * 255 = 63.75
  EXPECT_EQ(out8.at<std::uint8_t>(0, 2), 255);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const cv::Mat outf = apply_voi(row_of<float>(CV_32FC1, {nan, 150.0f}), linear_exact(100, 100), false, 0);
  ASSERT_EQ(outf.type(), CV_16UC1);
  EXPECT_EQ(outf.at<std::uint16_t>(0, 0), 0);
  EXPECT_EQ(outf.at<std::uint16_t>(0, 1), 65535);
}

TEST(ApplyVoi, InvertsAroundTheWindowForMonochrome1) {
  // Stored x = 200 - v: x = 150 is v = 50, black in the window, so white after the inversion.
  const cv::Mat out =
      apply_voi(row_of<std::uint16_t>(CV_16UC1, {150, 50}), linear_exact(100, 100), true, 200);
  EXPECT_EQ(out.at<std::uint16_t>(0, 0), 65535);
  EXPECT_EQ(out.at<std::uint16_t>(0, 1), 0);
}

TEST(ApplyVoi, LooksUpATableFromItsFirstMappedValue) {
  VoiTransform voi;
  voi.function = VoiTransform::Function::kTable;
  voi.first_mapped = 10;
  voi.table_bits = 12;
  voi.table = {0, 4095};
  const cv::Mat out = apply_voi(row_of<std::int16_t>(CV_16SC1, {-300, 10, 11, 500}), voi, false, 0);
  EXPECT_EQ(out.at<std::uint16_t>(0, 0), 0);  // before the table: its first entry
  EXPECT_EQ(out.at<std::uint16_t>(0, 1), 0);
  EXPECT_EQ(out.at<std::uint16_t>(0, 2), 65535);  // 4095 of 12 bits is full scale
  EXPECT_EQ(out.at<std::uint16_t>(0, 3), 65535);  // past the end: its last entry
}

TEST(ApplyVoi, RefusesAnUnusableTransformAndOtherDepths) {
  VoiTransform narrow;  // kLinear needs width >= 1
  narrow.width = 0.5;
  EXPECT_FALSE(voi_usable(narrow));
  VoiTransform empty_table;
  empty_table.function = VoiTransform::Function::kTable;
  EXPECT_FALSE(voi_usable(empty_table));
  EXPECT_TRUE(voi_usable(linear_exact(0, 0.5)));
  const cv::Mat m(1, 1, CV_16UC1, cv::Scalar(1));
  EXPECT_TRUE(contains(message_of<ConfigError>([&] { apply_voi(m, narrow, false, 0); }), "apply_voi"));
  EXPECT_THROW(apply_voi(m, empty_table, false, 0), ConfigError);
  EXPECT_THROW(apply_voi(cv::Mat(1, 1, CV_64FC1), linear_exact(0, 1), false, 0), FormatError);
}

TEST(StretchTo16Bit, StretchesTheRangeAndClipsOutside) {
  const cv::Mat out = stretch_to_16bit(row_of<std::uint16_t>(CV_16UC1, {50, 100, 125, 200, 300}), {100, 200});
  ASSERT_EQ(out.type(), CV_16UC1);
  EXPECT_EQ(out.at<std::uint16_t>(0, 0), 0);
  EXPECT_EQ(out.at<std::uint16_t>(0, 1), 0);
  EXPECT_EQ(out.at<std::uint16_t>(0, 2), 16384);
  EXPECT_EQ(out.at<std::uint16_t>(0, 3), 65535);
  EXPECT_EQ(out.at<std::uint16_t>(0, 4), 65535);
  const cv::Mat signed_out = stretch_to_16bit(row_of<std::int16_t>(CV_16SC1, {-50}), {-100, 100});
  EXPECT_EQ(signed_out.at<std::uint16_t>(0, 0), 16384);
}

TEST(StretchTo16Bit, MapsAnEmptyRangeToZeroAndRefuses8Bit) {
  const cv::Mat out = stretch_to_16bit(row_of<float>(CV_32FC1, {5.0f, 9.0f}), {7, 7});
  EXPECT_EQ(cv::countNonZero(out), 0);
  EXPECT_TRUE(contains(message_of<FormatError>([] {
                         stretch_to_16bit(cv::Mat(1, 1, CV_8UC1), {0, 1});
                       }),
                       "stretch_to_16bit"));
}

// ---------------------------------------------------------------------------------------------
// roi_box

// No margin, and a crop may remove up to 95 % of the image.
RoiCropOptions no_margin() {
  RoiCropOptions o;
  o.margin = 0;
  o.max_crop_fraction = 0.95;
  return o;
}

TEST(RoiBox, FindsTheBoxAroundTheContentAndAddsTheMargin) {
  cv::Mat m(100, 100, CV_8UC1, cv::Scalar(0));
  m(cv::Rect(20, 30, 40, 30)).setTo(200);
  const RoiBox tight = roi_box(m, no_margin());
  EXPECT_FALSE(tight.fallback);
  EXPECT_EQ(tight.box, cv::Rect(20, 30, 40, 30));
  RoiCropOptions o = no_margin();
  o.margin = 25;  // clamped at the left and top edges
  EXPECT_EQ(roi_box(m, o).box, cv::Rect(0, 5, 85, 80));
  o.max_crop_fraction = 0.3;  // that box removes 32 %: too much
  EXPECT_TRUE(roi_box(m, o).fallback);
}

TEST(RoiBox, LeavesOutAThinBandApartFromTheAnatomyUnlessAskedNotTo) {
  cv::Mat m(100, 100, CV_16UC1, cv::Scalar(0));
  m(cv::Rect(10, 10, 80, 70)).setTo(40000);
  m(cv::Rect(40, 90, 20, 4)).setTo(60000);  // 4 rows of burned-in text, below dark rows
  EXPECT_EQ(roi_box(m, no_margin()).box, cv::Rect(10, 10, 80, 70));
  RoiCropOptions keep = no_margin();
  keep.remove_text_bands = false;
  EXPECT_EQ(roi_box(m, keep).box, cv::Rect(10, 10, 80, 84));
}

TEST(RoiBox, FallsBackToTheWholeImage) {
  const cv::Mat constant(50, 60, CV_8UC3, cv::Scalar(9, 9, 9));
  const RoiBox flat = roi_box(constant, no_margin());
  EXPECT_TRUE(flat.fallback);
  EXPECT_EQ(flat.box, cv::Rect(0, 0, 60, 50));
  cv::Mat speck(100, 100, CV_8UC1, cv::Scalar(0));
  speck(cv::Rect(50, 50, 5, 5)).setTo(255);  // cropping would remove 99.75 % (more than 95 %)
  const RoiBox small = roi_box(speck, no_margin());
  EXPECT_TRUE(small.fallback);
  EXPECT_EQ(small.box, cv::Rect(0, 0, 100, 100));
}

TEST(RoiBox, RefusesOtherTypesAndOptionsOutOfRange) {
  EXPECT_TRUE(contains(message_of<FormatError>([] { roi_box(cv::Mat(4, 4, CV_32FC1), RoiCropOptions{}); }),
                       "roi_box"));
  EXPECT_THROW(roi_box(cv::Mat(4, 4, CV_8UC2), RoiCropOptions{}), FormatError);
  EXPECT_THROW(roi_box(cv::Mat(), RoiCropOptions{}), FormatError);
  RoiCropOptions o;
  o.threshold = 1.5;
  EXPECT_TRUE(contains(message_of<ConfigError>([&] { roi_box(cv::Mat(4, 4, CV_8UC1), o); }), "threshold"));
  o = RoiCropOptions{};
  o.margin = -1;
  EXPECT_THROW(roi_box(cv::Mat(4, 4, CV_8UC1), o), ConfigError);
}

// ---------------------------------------------------------------------------------------------
// clahe16

cv::Mat textured8(int size) {
  cv::Mat m(size, size, CV_8UC1);
  cv::RNG rng(7);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double v =
          90 + 40 * std::sin(x * 0.09) * std::cos(y * 0.05) + rng.gaussian(6) + (x > size / 2 ? 30 : 0);
      m.at<std::uint8_t>(y, x) = cv::saturate_cast<std::uint8_t>(v);
    }
  }
  return m;
}

TEST(Clahe16, Maps257TimesALevelAs8BitClaheMapsTheLevel) {
  const cv::Mat m8 = textured8(128);
  cv::Mat m16;
  m8.convertTo(m16, CV_16U, 257.0);
  cv::Mat ref8;
  cv::createCLAHE(2.0, cv::Size(4, 4))->apply(m8, ref8);
  const cv::Mat out = clahe16(m16, 2.0, 4);
  ASSERT_EQ(out.type(), CV_16UC1);
  ASSERT_EQ(out.size(), m16.size());
  // OpenCV rounds its 8-bit mapping to whole levels before blending the tiles: one level apart
  // at most, and equal on average.
  double sum = 0;
  for (int y = 0; y < out.rows; ++y) {
    for (int x = 0; x < out.cols; ++x) {
      const double d = out.at<std::uint16_t>(y, x) - 257.0 * ref8.at<std::uint8_t>(y, x);
      ASSERT_LE(std::abs(d), 257.0 + 1) << "at " << x << ", " << y;
      sum += d;
    }
  }
  EXPECT_LT(std::abs(sum / static_cast<double>(out.total())), 40.0);
}

TEST(Clahe16, TheClipLimitChangesTheResult) {
  cv::Mat m16;
  textured8(96).convertTo(m16, CV_16U, 257.0);
  const cv::Mat low = clahe16(m16, 1.0, 3);
  const cv::Mat high = clahe16(m16, 40.0, 3);
  EXPECT_GT(cv::norm(low, high, cv::NORM_L1) / static_cast<double>(m16.total()), 500.0);
}

TEST(Clahe16, RefusesOtherTypesAndAGridPastTheImage) {
  EXPECT_TRUE(contains(message_of<FormatError>([] { clahe16(cv::Mat(8, 8, CV_8UC1), 2.0, 2); }), "clahe16"));
  EXPECT_THROW(clahe16(cv::Mat(8, 8, CV_16UC3), 2.0, 2), FormatError);
  const cv::Mat m(8, 6, CV_16UC1, cv::Scalar(1000));
  EXPECT_TRUE(contains(message_of<ConfigError>([&] { clahe16(m, 2.0, 7); }), "grid 7"));
  EXPECT_THROW(clahe16(m, 2.0, 0), ConfigError);
  EXPECT_THROW(clahe16(m, 0.0, 2), ConfigError);
  EXPECT_NO_THROW(clahe16(m, 2.0, 6));
}

// ---------------------------------------------------------------------------------------------
// letterbox

LetterboxOptions square_of(int size, const std::string& interpolation = "area") {
  LetterboxOptions o;
  o.size = size;
  o.interpolation = interpolation;
  return o;
}

TEST(Letterbox, FitsTheLongerSideAndCentresTheShorterOneBetweenBlackBands) {
  const cv::Mat m(50, 100, CV_8UC1, cv::Scalar(200));
  Geometry g;
  const cv::Mat out = letterbox(m, cv::Rect(0, 0, 100, 50), square_of(20), g);
  ASSERT_EQ(out.size(), cv::Size(20, 20));
  ASSERT_EQ(out.type(), CV_8UC1);
  EXPECT_EQ(g.scale, 0.2);
  EXPECT_EQ(g.pad_top, 5);
  EXPECT_EQ(g.pad_bottom, 5);
  EXPECT_EQ(g.pad_left, 0);
  EXPECT_EQ(g.pad_right, 0);
  EXPECT_EQ(cv::countNonZero(out.rowRange(0, 5)), 0);
  EXPECT_EQ(cv::countNonZero(out.rowRange(15, 20)), 0);
  EXPECT_EQ(cv::countNonZero(out.rowRange(5, 15) != 200), 0);
}

TEST(Letterbox, RecordsTheCropSoOutputCoordinatesMapBack) {
  cv::Mat m(60, 80, CV_16UC1, cv::Scalar(0));
  Geometry g;
  letterbox(m, cv::Rect(10, 5, 40, 20), square_of(80), g);
  EXPECT_EQ(g.crop_x, 10);
  EXPECT_EQ(g.crop_y, 5);
  EXPECT_EQ(g.crop_w, 40);
  EXPECT_EQ(g.crop_h, 20);
  EXPECT_EQ(g.scale, 2.0);
  double x = 0, y = 0;
  g.map_to_original(0.0, 20.0, x, y);  // the top left corner of the content
  EXPECT_DOUBLE_EQ(x, 10.0);
  EXPECT_DOUBLE_EQ(y, 5.0);
}

TEST(Letterbox, AreaFastGrowsTheCropToAMultipleOfTheIntegerFactor) {
  const cv::Mat m(1000, 1000, CV_8UC1, cv::Scalar(100));
  Geometry exact, fast;
  letterbox(m, cv::Rect(100, 100, 610, 610), square_of(100), exact);
  const cv::Mat out = letterbox(m, cv::Rect(100, 100, 610, 610), square_of(100, "area_fast"), fast);
  EXPECT_EQ(exact.crop_w, 610);
  EXPECT_EQ(fast.crop_w, 612);  // k = 6: 610 grows to 612, one column each side
  EXPECT_EQ(fast.crop_x, 99);
  EXPECT_EQ(fast.crop_h, 612);
  EXPECT_EQ(cv::countNonZero(out != 100), 0);  // a flat image stays flat through both filters
}

TEST(Letterbox, RefusesACropOutsideTheImageAndBadOptions) {
  const cv::Mat m(10, 10, CV_8UC1, cv::Scalar(1));
  Geometry g;
  EXPECT_TRUE(contains(
      message_of<FormatError>([&] { letterbox(m, cv::Rect(5, 5, 10, 2), square_of(16), g); }), "letterbox"));
  EXPECT_THROW(letterbox(m, cv::Rect(0, 0, 0, 4), square_of(16), g), FormatError);
  EXPECT_THROW(letterbox(cv::Mat(), cv::Rect(0, 0, 1, 1), square_of(16), g), FormatError);
  EXPECT_THROW(letterbox(m, cv::Rect(0, 0, 10, 10), square_of(0), g), ConfigError);
  EXPECT_TRUE(contains(
      message_of<ConfigError>([&] { letterbox(m, cv::Rect(0, 0, 10, 10), square_of(16, "nearest"), g); }),
      "nearest"));
}

}  // namespace
}  // namespace medload::loader::detail
