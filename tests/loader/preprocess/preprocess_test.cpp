#include "medload/loader/preprocess/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "medload/core/error.h"
#include "test_images.h"

namespace medload::loader {
namespace {

using testing::at;
using testing::bordered_image;
using testing::draw_disc;
using testing::draw_text_band;
using testing::make_image;
using testing::value_at;

/// Every step off: the chain is the identity (apart from the output dtype).
PreprocessOptions all_off() {
  PreprocessOptions o;
  o.grayscale.enabled = false;
  o.intensity.enabled = false;
  o.roi_crop.enabled = false;
  o.letterbox.enabled = false;
  o.clahe.enabled = false;
  o.bilateral.enabled = false;
  return o;
}

VoiTransform window(VoiTransform::Function function, double center, double width) {
  VoiTransform voi;
  voi.function = function;
  voi.center = center;
  voi.width = width;
  return voi;
}

// A 1 x 2001 int16 row holding -1000..1000 (CT stored values), with `voi`, through the intensity
// step alone; returns the 8-bit output for a value.
std::function<int(int)> through_voi(const VoiTransform& voi, bool monochrome1 = false, double mirror = 0) {
  auto img = make_image<std::int16_t>(1, 2001, 1, PixelType::kInt16, 0);
  for (int x = 0; x <= 2000; ++x) at<std::int16_t>(img, 0, x) = static_cast<std::int16_t>(x - 1000);
  img.voi = voi;
  img.was_monochrome1 = monochrome1;
  img.monochrome1_mirror = mirror;
  auto o = all_off();
  o.intensity.enabled = true;
  const auto out = std::make_shared<PreprocessedImage>(preprocess(img, o));
  EXPECT_TRUE(out->windowed);
  return [out](int v) { return static_cast<int>(value_at<std::uint8_t>(out->pixels, 2001, 1, 0, v + 1000)); };
}

struct Moments {
  double mass = 0, cx = 0, cy = 0, mu20 = 0, mu02 = 0, mu11 = 0;
};

// Intensity-weighted central moments of an 8-bit single-channel output, pixel centres at +0.5.
Moments moments_of(const PreprocessedImage& img) {
  Moments m;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const double v = img.pixels[static_cast<std::size_t>(y) * img.width + x];
      const double px = x + 0.5, py = y + 0.5;
      m.mass += v;
      sx += v * px;
      sy += v * py;
      sxx += v * px * px;
      syy += v * py * py;
      sxy += v * px * py;
    }
  }
  m.cx = sx / m.mass;
  m.cy = sy / m.mass;
  m.mu20 = sxx / m.mass - m.cx * m.cx;
  m.mu02 = syy / m.mass - m.cy * m.cy;
  m.mu11 = sxy / m.mass - m.cx * m.cy;
  return m;
}

TEST(Preprocess, WithEveryStepOffIsTheIdentity) {
  auto img = bordered_image(40, 50, 5, 6, 30, 20);
  const auto out = preprocess(img, all_off());
  EXPECT_EQ(out.height, 40);
  EXPECT_EQ(out.width, 50);
  EXPECT_EQ(out.type, PixelType::kUInt8);
  EXPECT_EQ(out.pixels, img.pixels);
  EXPECT_EQ(out.geometry.crop_w, 50);
  EXPECT_EQ(out.geometry.crop_h, 40);
  EXPECT_EQ(out.geometry.scale, 1.0);
}

TEST(PreprocessLetterbox, KeepsADrawnCircleRound) {
  // A wide image (600 x 300) with a disc: a squashing resize would make mu20/mu02 = 4.
  auto img = make_image<std::uint8_t>(300, 600, 1, PixelType::kUInt8, 0);
  draw_disc<std::uint8_t>(img, 400.0, 150.0, 100.0, 200);
  auto o = all_off();
  o.letterbox.enabled = true;
  o.letterbox.size = 256;
  const auto out = preprocess(img, o);
  ASSERT_EQ(out.height, 256);
  ASSERT_EQ(out.width, 256);
  const auto& g = out.geometry;
  EXPECT_DOUBLE_EQ(g.scale, 256.0 / 600.0);
  EXPECT_EQ(g.pad_left + g.pad_right, 0);
  EXPECT_EQ(g.pad_top + g.pad_bottom, 256 - 128);  // 300 * 256/600 = 128 rows of content
  EXPECT_EQ(g.pad_top, 64);

  const Moments m = moments_of(out);
  EXPECT_NEAR(m.mu20 / m.mu02, 1.0, 0.01);
  EXPECT_NEAR(m.mu11 / m.mu02, 0.0, 0.01);
  // A uniform disc of radius R has mu20 = R^2 / 4.
  const double r_out = 100.0 * g.scale;
  EXPECT_NEAR(m.mu20, r_out * r_out / 4.0, 0.02 * r_out * r_out / 4.0);
  // Its centre maps back to where it was drawn.
  double x0 = 0, y0 = 0;
  g.map_to_original(m.cx, m.cy, x0, y0);
  EXPECT_NEAR(x0, 400.0, 0.5);
  EXPECT_NEAR(y0, 150.0, 0.5);
}

TEST(PreprocessLetterbox, KeepsACircleRoundThroughTheDefaultChain) {
  auto img = make_image<std::uint16_t>(1000, 600, 1, PixelType::kUInt16, 1000);
  img.bits_stored = 12;
  draw_disc<std::uint16_t>(img, 300.0, 600.0, 200.0, 3000);
  PreprocessOptions o;
  o.roi_crop.enabled = false;  // the frame is uniform: nothing to crop
  const auto out = preprocess(img, o);
  ASSERT_EQ(out.width, 256);
  // Subtract the background so the moments are those of the disc.
  PreprocessedImage disc = out;
  const std::uint8_t background = out.pixels[static_cast<std::size_t>(10) * 256 + 128];
  for (auto& v : disc.pixels) v = v > background ? static_cast<std::uint8_t>(v - background) : 0;
  const Moments m = moments_of(disc);
  EXPECT_NEAR(m.mu20 / m.mu02, 1.0, 0.03);
}

TEST(PreprocessLetterbox, PadsATallImageLeftAndRight) {
  auto img = make_image<std::uint8_t>(400, 100, 1, PixelType::kUInt8, 50);
  auto o = all_off();
  o.letterbox.enabled = true;
  o.letterbox.size = 200;
  const auto out = preprocess(img, o);
  EXPECT_EQ(out.geometry.pad_left, 75);
  EXPECT_EQ(out.geometry.pad_right, 75);
  EXPECT_EQ(out.geometry.pad_top, 0);
  EXPECT_EQ(out.pixels[100 * 200 + 74], 0);   // padding is black
  EXPECT_EQ(out.pixels[100 * 200 + 75], 50);  // content starts right after it
  EXPECT_EQ(out.pixels[100 * 200 + 124], 50);
  EXPECT_EQ(out.pixels[100 * 200 + 125], 0);
}

TEST(PreprocessRoiCrop, FindsTheBoxOfABorderedImageWithATextBand) {
  auto img = bordered_image(400, 500, 60, 80, 380, 260);
  draw_text_band(img, 20, 12, 30, 200);    // annotation at the top, above a dark gap
  draw_text_band(img, 370, 10, 300, 480);  // and one at the bottom
  at<std::uint8_t>(img, 200, 5) = 255;     // a speck of noise in the border
  auto o = all_off();
  o.roi_crop.enabled = true;
  o.roi_crop.margin = 0;
  const auto out = preprocess(img, o);
  const auto& g = out.geometry;
  EXPECT_FALSE(out.roi_fallback);
  EXPECT_EQ(g.crop_x, 60);
  EXPECT_EQ(g.crop_y, 80);
  EXPECT_EQ(g.crop_w, 380);
  EXPECT_EQ(g.crop_h, 260);
  EXPECT_EQ(out.width, 380);
  EXPECT_EQ(out.height, 260);
  // The output is exactly the anatomy.
  EXPECT_EQ(out.pixels[0], at<std::uint8_t>(img, 80, 60));

  o.roi_crop.margin = 4;
  const auto with_margin = preprocess(img, o).geometry;
  EXPECT_EQ(with_margin.crop_x, 56);
  EXPECT_EQ(with_margin.crop_y, 76);
  EXPECT_EQ(with_margin.crop_w, 388);
  EXPECT_EQ(with_margin.crop_h, 268);
}

TEST(PreprocessRoiCrop, KeepsTextBandsWhenTheirRemovalIsOff) {
  auto img = bordered_image(400, 500, 60, 80, 380, 260);
  draw_text_band(img, 20, 12, 30, 200);
  auto o = all_off();
  o.roi_crop.enabled = true;
  o.roi_crop.margin = 0;
  o.roi_crop.remove_text_bands = false;
  const auto g = preprocess(img, o).geometry;
  EXPECT_EQ(g.crop_x, 30);
  EXPECT_EQ(g.crop_y, 20);
  EXPECT_EQ(g.crop_w, 440 - 30);
  EXPECT_EQ(g.crop_h, 340 - 20);
}

TEST(PreprocessRoiCrop, KeepsTallBandsThatAreAnatomy) {
  // Two large regions separated by a dark gap: neither is text, both are kept.
  auto img = bordered_image(400, 500, 60, 40, 380, 150);
  auto lower = bordered_image(400, 500, 60, 230, 380, 130, 9);
  for (int y = 230; y < 360; ++y) {
    for (int x = 60; x < 440; ++x) at<std::uint8_t>(img, y, x) = at<std::uint8_t>(lower, y, x);
  }
  auto o = all_off();
  o.roi_crop.enabled = true;
  o.roi_crop.margin = 0;
  const auto g = preprocess(img, o).geometry;
  EXPECT_EQ(g.crop_y, 40);
  EXPECT_EQ(g.crop_h, 320);
}

TEST(PreprocessRoiCrop, FallsBackToTheWholeImageWhenTooMuchWouldGo) {
  auto img = bordered_image(400, 500, 200, 200, 50, 50);
  auto o = all_off();
  o.roi_crop.enabled = true;
  auto out = preprocess(img, o);
  EXPECT_TRUE(out.roi_fallback);
  EXPECT_EQ(out.geometry.crop_w, 500);
  EXPECT_EQ(out.geometry.crop_h, 400);
  // Allowed when the limit says so.
  o.roi_crop.max_crop_fraction = 0.99;
  out = preprocess(img, o);
  EXPECT_FALSE(out.roi_fallback);
  EXPECT_EQ(out.geometry.crop_w, 50 + 2 * o.roi_crop.margin);
}

TEST(PreprocessRoiCrop, FallsBackOnABlankImage) {
  auto img = make_image<std::uint8_t>(64, 64, 1, PixelType::kUInt8, 0);
  auto o = all_off();
  o.roi_crop.enabled = true;
  const auto out = preprocess(img, o);
  EXPECT_TRUE(out.roi_fallback);
  EXPECT_EQ(out.geometry.crop_w, 64);
}

TEST(PreprocessIntensity, SixteenBitInputKeepsItsPrecisionUntilTheOutput) {
  // A 12-bit ramp: 4096 levels, each a column.
  auto img = make_image<std::uint16_t>(8, 4096, 1, PixelType::kUInt16, 0);
  img.bits_stored = 12;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 4096; ++x) at<std::uint16_t>(img, y, x) = static_cast<std::uint16_t>(x);
  }
  auto o = all_off();
  o.intensity.enabled = true;
  o.intensity.low_percentile = 0.0;
  o.intensity.high_percentile = 100.0;
  o.letterbox.enabled = true;  // 4096 wide: scale 1, the rows are padded
  o.letterbox.size = 4096;
  o.output_dtype = PixelType::kUInt16;
  const auto out = preprocess(img, o);
  ASSERT_EQ(out.type, PixelType::kUInt16);
  ASSERT_EQ(out.pixels.size(), 4096u * 4096u * 2u);
  const int row = out.geometry.pad_top + 3;
  std::set<std::uint16_t> levels;
  for (int x = 0; x < 4096; ++x) {
    const auto v = value_at<std::uint16_t>(out.pixels, 4096, 1, row, x);
    ASSERT_EQ(v, static_cast<std::uint16_t>(std::lround(x * 65535.0 / 4095.0))) << "x=" << x;
    levels.insert(v);
  }
  EXPECT_EQ(levels.size(), 4096u);

  // The same chain to uint8 can hold only 256 levels.
  o.output_dtype = PixelType::kUInt8;
  const auto out8 = preprocess(img, o);
  std::set<std::uint8_t> levels8(out8.pixels.begin() + static_cast<std::ptrdiff_t>(row) * 4096,
                                 out8.pixels.begin() + static_cast<std::ptrdiff_t>(row + 1) * 4096);
  EXPECT_EQ(levels8.size(), 256u);
}

TEST(PreprocessIntensity, ClipsHighBitDepthsAtPercentiles) {
  // 1000 pixels with values 0..999: the 1% / 99% nearest-rank percentiles are 9 and 990.
  auto img = make_image<std::uint16_t>(10, 100, 1, PixelType::kUInt16, 0);
  for (int i = 0; i < 1000; ++i) at<std::uint16_t>(img, i / 100, i % 100) = static_cast<std::uint16_t>(i);
  auto o = all_off();
  o.intensity.enabled = true;
  o.intensity.low_percentile = 1.0;
  o.intensity.high_percentile = 99.0;
  o.output_dtype = PixelType::kUInt16;
  const auto out = preprocess(img, o);
  auto v = [&](int i) { return value_at<std::uint16_t>(out.pixels, 100, 1, i / 100, i % 100); };
  EXPECT_EQ(v(0), 0);
  EXPECT_EQ(v(9), 0);
  EXPECT_EQ(v(990), 65535);
  EXPECT_EQ(v(999), 65535);
  EXPECT_EQ(v(500), static_cast<std::uint16_t>(std::lround((500.0 - 9.0) / (990.0 - 9.0) * 65535.0)));
  EXPECT_FALSE(out.windowed);
}

TEST(PreprocessIntensity, AppliesTheDicomWindowToSignedCt) {
  // CT stored values -1000..1000 (int16), soft-tissue window 40/400.
  auto img = make_image<std::int16_t>(1, 2001, 1, PixelType::kInt16, 0);
  for (int x = 0; x <= 2000; ++x) at<std::int16_t>(img, 0, x) = static_cast<std::int16_t>(x - 1000);
  img.voi = window(VoiTransform::Function::kLinear, 40.0, 400.0);
  auto o = all_off();
  o.intensity.enabled = true;
  const auto out = preprocess(img, o);
  EXPECT_TRUE(out.windowed);
  auto v = [&](int hu) { return value_at<std::uint8_t>(out.pixels, 2001, 1, 0, hu + 1000); };
  // DICOM linear function: y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 inside the window.
  auto expected = [](double x) {
    if (x <= 39.5 - 199.5) return 0.0;
    if (x > 39.5 + 199.5) return 255.0;
    return ((x - 39.5) / 399.0 + 0.5) * 255.0;
  };
  for (int hu : {-1000, -200, -160, -159, 0, 40, 100, 239, 240, 1000}) {
    EXPECT_EQ(v(hu), static_cast<int>(std::lround(expected(hu)))) << "HU " << hu;
  }
  // Switched off, the window is ignored and the percentiles apply.
  o.intensity.use_dicom_window = false;
  EXPECT_FALSE(preprocess(img, o).windowed);
}

TEST(PreprocessIntensity, AppliesTheSigmoidAndLinearExactVoiFunctions) {
  // PS3.3 C.11.2.1.3: SIGMOID y = 255 / (1 + exp(-4 (x - c) / w)); LINEAR_EXACT without the
  // half-unit offsets of LINEAR.
  const auto sigmoid = through_voi(window(VoiTransform::Function::kSigmoid, 40, 400));
  for (int x : {-1000, -160, 0, 40, 100, 240, 1000}) {
    EXPECT_EQ(sigmoid(x), std::lround(255.0 / (1.0 + std::exp(-4.0 * (x - 40) / 400.0)))) << x;
  }
  const auto exact = through_voi(window(VoiTransform::Function::kLinearExact, 40, 400));
  for (int x : {-1000, -160, -159, 0, 40, 239, 240, 241, 1000}) {
    const double y = x <= -160 ? 0.0 : x > 240 ? 255.0 : ((x - 40) / 400.0 + 0.5) * 255.0;
    EXPECT_EQ(exact(x), std::lround(y)) << x;
  }
}

TEST(PreprocessIntensity, AppliesAVoiLutTableClampedAtItsEnds) {
  VoiTransform voi;
  voi.function = VoiTransform::Function::kTable;
  voi.first_mapped = -2;
  voi.table_bits = 12;
  voi.table = {0, 819, 2048, 4095};  // inputs -2, -1, 0, 1
  const auto lut = through_voi(voi);
  EXPECT_EQ(lut(-1000), 0);
  EXPECT_EQ(lut(-2), 0);
  EXPECT_EQ(lut(-1), std::lround(819 / 4095.0 * 255));
  EXPECT_EQ(lut(0), std::lround(2048 / 4095.0 * 255));
  EXPECT_EQ(lut(1), 255);
  EXPECT_EQ(lut(1000), 255);
}

TEST(PreprocessIntensity, AMonochrome1FrameIsWindowedInModalityUnitsThenInverted) {
  // The decoder stored x = M - v. The standard windows v, then inverts (Presentation LUT), so the
  // output for x is 255 - window(M - x): with M = 0 and window 100/50, v = 200 (x = -200) is
  // black, v = 0 (x = 0) is white, and v = 112 (x = -112) sits 12/50 above mid-grey, inverted.
  const auto inverted = through_voi(window(VoiTransform::Function::kLinearExact, 100, 50), true, 0.0);
  EXPECT_EQ(inverted(-200), 0);
  EXPECT_EQ(inverted(0), 255);
  EXPECT_EQ(inverted(-112), std::lround(255 - (12 / 50.0 + 0.5) * 255));
  EXPECT_EQ(inverted(-89), std::lround(255 - (-11 / 50.0 + 0.5) * 255));
  // LINEAR's half-unit offsets are where the two orders part: v = 100 windows to 130.1, so the
  // inverted output is 125; mirroring the window instead (centre M - 100 on the inverted values)
  // would give 130.
  const auto linear = through_voi(window(VoiTransform::Function::kLinear, 100, 50), true, 0.0);
  EXPECT_EQ(linear(-100), std::lround(255 - ((100 - 99.5) / 49.0 + 0.5) * 255));
}

TEST(PreprocessIntensity, TakesFloatHounsfieldUnits) {
  auto img = make_image<float>(2, 3, 1, PixelType::kFloat32, 0.0f);
  const float hu[6] = {-1000.f, -500.f, 0.f, 250.f, 500.f, 1000.f};
  for (int i = 0; i < 6; ++i) at<float>(img, i / 3, i % 3) = hu[i];
  auto o = all_off();
  o.intensity.enabled = true;
  o.intensity.low_percentile = 0.0;
  o.intensity.high_percentile = 100.0;
  o.output_dtype = PixelType::kUInt16;
  const auto out = preprocess(img, o);
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 3, 1, 0, 0), 0);
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 3, 1, 0, 2), std::lround(0.5 * 65535));
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 3, 1, 1, 2), 65535);
  // Float data has no integer range to keep: switching the step off is an error.
  o.intensity.enabled = false;
  EXPECT_THROW(preprocess(img, o), ConfigError);
}

TEST(PreprocessIntensity, LeavesEightBitImagesAlone) {
  auto img = bordered_image(30, 30, 5, 5, 20, 20);
  auto o = all_off();
  o.intensity.enabled = true;
  EXPECT_EQ(preprocess(img, o).pixels, img.pixels);
}

TEST(PreprocessOutput, WidensEightBitToFullSixteenBitScale) {
  auto img = make_image<std::uint8_t>(2, 2, 1, PixelType::kUInt8, 255);
  at<std::uint8_t>(img, 0, 0) = 0;
  at<std::uint8_t>(img, 0, 1) = 1;
  auto o = all_off();
  o.output_dtype = PixelType::kUInt16;
  const auto out = preprocess(img, o);
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 2, 1, 0, 0), 0);
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 2, 1, 0, 1), 257);
  EXPECT_EQ(value_at<std::uint16_t>(out.pixels, 2, 1, 1, 1), 65535);
}

TEST(PreprocessGrayscale, ConvertsColourOrKeepsIt) {
  auto img = make_image<std::uint8_t>(20, 20, 3, PixelType::kUInt8, 0);
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 20; ++x) {
      at<std::uint8_t>(img, y, x, 0) = 10;   // B
      at<std::uint8_t>(img, y, x, 1) = 100;  // G
      at<std::uint8_t>(img, y, x, 2) = 200;  // R
    }
  }
  auto o = all_off();
  o.grayscale.enabled = true;
  auto out = preprocess(img, o);
  EXPECT_EQ(out.channels, 1);
  // BT.601: 0.299 R + 0.587 G + 0.114 B
  EXPECT_NEAR(out.pixels[0], 0.299 * 200 + 0.587 * 100 + 0.114 * 10, 1.0);
  o.grayscale.enabled = false;
  out = preprocess(img, o);
  EXPECT_EQ(out.channels, 3);
  EXPECT_EQ(out.pixels, img.pixels);
  // Colour through the whole default chain.
  PreprocessOptions defaults;
  defaults.grayscale.enabled = false;
  out = preprocess(img, defaults);
  EXPECT_EQ(out.channels, 3);
  EXPECT_EQ(out.pixels.size(), 256u * 256u * 3u);
}

TEST(Preprocess, EachStepCanBeSwitchedOff) {
  auto img = bordered_image(300, 400, 40, 50, 300, 200);
  draw_text_band(img, 10, 10, 20, 200);
  const PreprocessOptions defaults;
  const auto base = preprocess(img, defaults);
  EXPECT_EQ(base.width, 256);
  EXPECT_EQ(base.geometry.crop_w, 300 + 2 * defaults.roi_crop.margin);

  auto o = defaults;
  o.roi_crop.enabled = false;
  auto out = preprocess(img, o);
  EXPECT_EQ(out.geometry.crop_w, 400);
  EXPECT_NE(out.pixels, base.pixels);

  o = defaults;
  o.letterbox.enabled = false;
  out = preprocess(img, o);
  EXPECT_EQ(out.width, base.geometry.crop_w);
  EXPECT_EQ(out.geometry.scale, 1.0);

  o = defaults;
  o.clahe.enabled = false;
  out = preprocess(img, o);
  EXPECT_NE(out.pixels, base.pixels);

  o = defaults;
  o.bilateral.enabled = false;
  out = preprocess(img, o);
  EXPECT_NE(out.pixels, base.pixels);

  o = defaults;
  o.letterbox.size = 224;
  out = preprocess(img, o);
  EXPECT_EQ(out.width, 224);
  EXPECT_EQ(out.height, 224);

  StageTimes times;
  o = defaults;
  o.clahe.enabled = false;
  preprocess(img, o, &times);
  EXPECT_EQ(times.clahe_ns, 0);
  EXPECT_GT(times.bilateral_ns, 0);
  EXPECT_GE(times.total_ns, times.bilateral_ns + times.letterbox_ns + times.roi_crop_ns);
}

TEST(Preprocess, IsDeterministicAcrossThreads) {
  auto img = bordered_image(300, 400, 40, 50, 300, 200);
  const PreprocessOptions o;
  const auto expected = preprocess(img, o);
  std::vector<PreprocessedImage> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[static_cast<std::size_t>(i)] = preprocess(img, o); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r.pixels, expected.pixels);
}

TEST(Preprocess, RejectsInputItCannotTake) {
  auto img = make_image<std::uint8_t>(10, 10, 1, PixelType::kUInt8, 0);
  img.source_path = "scan/odd.png";
  auto bad = img;
  bad.pixels.resize(99);
  try {
    preprocess(bad, PreprocessOptions{});
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("scan/odd.png"), std::string::npos) << e.what();
  }
  bad = img;
  bad.channels = 2;
  bad.pixels.resize(200);
  EXPECT_THROW(preprocess(bad, PreprocessOptions{}), FormatError);
  bad = img;
  bad.height = 0;
  EXPECT_THROW(preprocess(bad, PreprocessOptions{}), FormatError);
  PreprocessOptions o;
  o.letterbox.size = 3;
  EXPECT_THROW(preprocess(img, o), ConfigError);
}

TEST(Geometry, MapsOutputCoordinatesBackToTheOriginal) {
  // A bright 6x6 block inside a cropped, letterboxed image lands where the geometry says.
  auto img = bordered_image(500, 300, 30, 40, 240, 400);
  for (int y = 200; y < 206; ++y) {
    for (int x = 100; x < 106; ++x) at<std::uint8_t>(img, y, x) = 255;
  }
  auto o = all_off();
  o.roi_crop.enabled = true;
  o.letterbox.enabled = true;
  o.letterbox.size = 128;
  const auto out = preprocess(img, o);
  const auto& g = out.geometry;
  ASSERT_EQ(g.crop_x, 30 - o.roi_crop.margin);
  double ox = 0, oy = 0;
  g.map_to_output(103.0, 203.0, ox, oy);  // centre of the block
  const int px = static_cast<int>(ox), py = static_cast<int>(oy);
  EXPECT_GT(out.pixels[static_cast<std::size_t>(py) * 128 + px], 230);
  // Round trip.
  for (double x : {0.0, 17.5, 64.0, 127.9}) {
    for (double y : {0.0, 33.25, 100.0}) {
      double xo = 0, yo = 0, xb = 0, yb = 0;
      g.map_to_original(x, y, xo, yo);
      g.map_to_output(xo, yo, xb, yb);
      EXPECT_NEAR(xb, x, 1e-9);
      EXPECT_NEAR(yb, y, 1e-9);
    }
  }
  // The output corners of the content map to the crop box corners.
  double xo = 0, yo = 0;
  g.map_to_original(g.pad_left, g.pad_top, xo, yo);
  EXPECT_NEAR(xo, g.crop_x, 1e-9);
  EXPECT_NEAR(yo, g.crop_y, 1e-9);
  g.map_to_original(128 - g.pad_right, 128 - g.pad_bottom, xo, yo);
  EXPECT_NEAR(xo, g.crop_x + g.crop_w, 1e-9);  // both sides map exactly
  EXPECT_NEAR(yo, g.crop_y + g.crop_h, 1e-9);
}

}  // namespace
}  // namespace medload::loader

namespace medload::loader {
namespace {

TEST(PreprocessGrayscale, KeepsSixteenBitAndSignedColourThroughTheDefaultChain) {
  for (PixelType type : {PixelType::kUInt16, PixelType::kInt16}) {
    DecodedImage img = type == PixelType::kUInt16 ? testing::make_image<std::uint16_t>(64, 96, 3, type, 100)
                                                  : testing::make_image<std::int16_t>(64, 96, 3, type, -100);
    // A brighter red square in the middle.
    for (int y = 20; y < 44; ++y) {
      for (int x = 30; x < 66; ++x) {
        if (type == PixelType::kUInt16)
          testing::at<std::uint16_t>(img, y, x, 2) = 3000;
        else
          testing::at<std::int16_t>(img, y, x, 2) = 1500;
      }
    }
    PreprocessOptions o;
    o.grayscale.enabled = false;
    o.output_dtype = PixelType::kUInt16;
    const auto out = preprocess(img, o);
    EXPECT_EQ(out.channels, 3);
    EXPECT_EQ(out.type, PixelType::kUInt16);
    ASSERT_EQ(out.pixels.size(), 256u * 256u * 3u * 2u);
    // The square stays red: its red channel is above its blue channel at the centre.
    const int cy = 128, cx = 128;
    EXPECT_GT(testing::value_at<std::uint16_t>(out.pixels, 256, 3, cy, cx, 2),
              testing::value_at<std::uint16_t>(out.pixels, 256, 3, cy, cx, 0));
  }
}

}  // namespace
}  // namespace medload::loader

namespace medload::loader {
namespace {

TEST(PreprocessLetterbox, AreaFastStaysCloseToExactAreaAndRecordsTheGrownBox) {
  // A smooth 8-bit image (a wide disc with a gradient) in a black border, 1000 x 1300.
  auto img = testing::make_image<std::uint8_t>(1000, 1300, 1, PixelType::kUInt8, 0);
  for (int y = 0; y < 1000; ++y) {
    for (int x = 0; x < 1300; ++x) {
      const double dx = x + 0.5 - 650.0, dy = y + 0.5 - 500.0;
      if (dx * dx + dy * dy <= 430.0 * 430.0) {
        testing::at<std::uint8_t>(img, y, x) = static_cast<std::uint8_t>(60 + (x - 220) / 6);
      }
    }
  }
  PreprocessOptions o;
  o.clahe.enabled = false;
  o.bilateral.enabled = false;
  o.roi_crop.margin = 3;
  const auto exact = preprocess(img, o);
  o.letterbox.interpolation = "area_fast";
  const auto fast = preprocess(img, o);
  const auto& ge = exact.geometry;
  const auto& gf = fast.geometry;
  // k = floor(866 / 256) = 3: the box grows to multiples of 3 and contains the exact one.
  EXPECT_EQ(gf.crop_w % 3, 0);
  EXPECT_EQ(gf.crop_h % 3, 0);
  EXPECT_LE(gf.crop_x, ge.crop_x);
  EXPECT_LE(gf.crop_y, ge.crop_y);
  EXPECT_GE(gf.crop_x + gf.crop_w, ge.crop_x + ge.crop_w);
  EXPECT_GE(gf.crop_y + gf.crop_h, ge.crop_y + ge.crop_h);
  EXPECT_LT(gf.crop_w - ge.crop_w, 3);
  // Away from the disc's edge the two agree to within a grey level or two.
  double diff = 0;
  int n = 0;
  for (int y = 96; y < 160; ++y) {
    for (int x = 96; x < 160; ++x) {
      diff += std::abs(int{exact.pixels[static_cast<std::size_t>(y) * 256 + x]} -
                       int{fast.pixels[static_cast<std::size_t>(y) * 256 + x]});
      ++n;
    }
  }
  EXPECT_LT(diff / n, 1.5);
  // And it keeps the disc round (the shape: moments of the thresholded image).
  auto shape = fast;
  for (auto& v : shape.pixels) v = v > 30 ? 1 : 0;
  const Moments m = moments_of(shape);
  EXPECT_NEAR(m.mu20 / m.mu02, 1.0, 0.01);
}

}  // namespace
}  // namespace medload::loader

namespace medload::loader {
namespace {

TEST(PreprocessClahe, SixteenBitFollowsEightBitAndItsClipLimit) {
  // The same smooth pattern as 8-bit and as 16-bit (x 257).
  auto img8 = testing::make_image<std::uint8_t>(256, 256, 1, PixelType::kUInt8, 0);
  auto img16 = testing::make_image<std::uint16_t>(256, 256, 1, PixelType::kUInt16, 0);
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 256; ++x) {
      const double v =
          100 + 60 * std::sin(x / 20.0) * std::cos(y / 30.0) + 20.0 * ((x * 7 + y * 13) % 5) / 4.0;
      testing::at<std::uint8_t>(img8, y, x) = static_cast<std::uint8_t>(v);
      testing::at<std::uint16_t>(img16, y, x) =
          static_cast<std::uint16_t>(static_cast<std::uint8_t>(v) * 257);
    }
  }
  auto o = all_off();
  o.clahe.enabled = true;
  o.output_dtype = PixelType::kUInt16;
  auto mean_abs_diff = [](const PreprocessedImage& a, const PreprocessedImage& b) {
    double d = 0;
    for (int i = 0; i < 256 * 256; ++i) {
      d += std::abs(testing::value_at<std::uint16_t>(a.pixels, 256, 1, i / 256, i % 256) -
                    testing::value_at<std::uint16_t>(b.pixels, 256, 1, i / 256, i % 256));
    }
    return d / (256.0 * 256.0) / 257.0;  // in 8-bit grey levels
  };
  for (double clip : {1.0, 2.0, 4.0}) {
    o.clahe.clip_limit = clip;
    const auto out8 = preprocess(img8, o);
    const auto out16 = preprocess(img16, o);
    EXPECT_LT(mean_abs_diff(out8, out16), 0.6) << "clip " << clip;
  }
  // The clip limit matters for 16-bit work (it did not with OpenCV's CV_16U CLAHE).
  o.clahe.clip_limit = 1.0;
  const auto low = preprocess(img16, o);
  o.clahe.clip_limit = 4.0;
  const auto high = preprocess(img16, o);
  EXPECT_GT(mean_abs_diff(low, high), 5.0);
}

TEST(PreprocessClahe, SixteenBitKeepsMoreThan256Levels) {
  auto img = testing::make_image<std::uint16_t>(256, 256, 1, PixelType::kUInt16, 0);
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 256; ++x)
      testing::at<std::uint16_t>(img, y, x) = static_cast<std::uint16_t>(x * 256 + y);
  }
  auto o = all_off();
  o.clahe.enabled = true;
  o.output_dtype = PixelType::kUInt16;
  const auto out = preprocess(img, o);
  std::set<std::uint16_t> levels;
  for (int i = 0; i < 256 * 256; ++i)
    levels.insert(testing::value_at<std::uint16_t>(out.pixels, 256, 1, i / 256, i % 256));
  EXPECT_GT(levels.size(), 4096u);
}

TEST(PreprocessClahe, TakesImagesSmallerThanTheTileGrid) {
  auto img = testing::make_image<std::uint16_t>(5, 40, 1, PixelType::kUInt16, 1000);
  testing::at<std::uint16_t>(img, 2, 20) = 3000;
  auto o = all_off();
  o.clahe.enabled = true;
  o.clahe.tile_grid = 16;
  EXPECT_EQ(preprocess(img, o).height, 5);
  auto img8 = testing::make_image<std::uint8_t>(5, 40, 1, PixelType::kUInt8, 10);
  EXPECT_EQ(preprocess(img8, o).width, 40);
}

}  // namespace
}  // namespace medload::loader
