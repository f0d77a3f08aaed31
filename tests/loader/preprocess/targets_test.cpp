// Masks, boxes and landmarks through the geometry of preprocessing (targets.h).

#include "medload/loader/preprocess/targets.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "medload/core/error.h"
#include "medload/loader/preprocess/preprocess.h"
#include "test_images.h"

namespace medload::loader {
namespace {

using testing::at;
using testing::make_image;

// A geometry as the letterbox records it: crop (x, y, w, h) of a width x height image, resized
// into a size x size square.
Geometry letterboxed(int width, int height, int x, int y, int w, int h, int size) {
  Geometry g;
  g.original_width = width;
  g.original_height = height;
  g.crop_x = x;
  g.crop_y = y;
  g.crop_w = w;
  g.crop_h = h;
  g.scale = static_cast<double>(size) / std::max(w, h);
  g.pad_left = (size - g.resized_width()) / 2;
  g.pad_right = size - g.resized_width() - g.pad_left;
  g.pad_top = (size - g.resized_height()) / 2;
  g.pad_bottom = size - g.resized_height() - g.pad_top;
  return g;
}

LabelMask random_mask(int height, int width, int classes, unsigned seed) {
  LabelMask m{height, width, std::vector<std::uint16_t>(static_cast<std::size_t>(height) * width)};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> label(0, classes - 1);
  for (auto& v : m.labels) v = static_cast<std::uint16_t>(label(rng));
  return m;
}

std::uint16_t label_at(const LabelMask& m, int y, int x) {
  return m.labels[static_cast<std::size_t>(y) * m.width + x];
}

TEST(Targets, AMaskFollowsItsImageThroughTheCropAndTheLetterbox) {
  // A bright rectangle on black, preprocessed (crop + letterbox, area resampling); the mask
  // labels the rectangle 7. Every output pixel that is wholly rectangle is labelled 7, every one
  // wholly background is 0: mask and image stay in register.
  auto img = make_image<std::uint8_t>(300, 420, 1, PixelType::kUInt8, 0);
  LabelMask mask{300, 420, std::vector<std::uint16_t>(300 * 420, 0)};
  for (int y = 60; y < 250; ++y) {
    for (int x = 35; x < 330; ++x) {
      at<std::uint8_t>(img, y, x) = 255;
      mask.labels[static_cast<std::size_t>(y) * 420 + x] = 7;
    }
  }
  PreprocessOptions o;
  o.grayscale.enabled = false;
  o.intensity.enabled = false;
  o.clahe.enabled = false;
  o.bilateral.enabled = false;
  o.roi_crop.margin = 0;
  o.roi_crop.max_crop_fraction = 0.95;  // the rectangle is all the content: crop to it
  o.letterbox.size = 97;                // an odd size: the shorter side is rounded
  const PreprocessedImage out = preprocess(img, o);
  const LabelMask mapped = mask_to_output(mask, out.geometry);
  ASSERT_EQ(mapped.height, out.height);
  ASSERT_EQ(mapped.width, out.width);
  int bright = 0, dark = 0;
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const int v = out.pixels[static_cast<std::size_t>(y) * out.width + x];
      if (v == 255) {
        ++bright;
        EXPECT_EQ(label_at(mapped, y, x), 7) << y << "," << x;
      } else if (v == 0) {
        ++dark;
        EXPECT_EQ(label_at(mapped, y, x), 0) << y << "," << x;
      }
    }
  }
  EXPECT_GT(bright, 97 * 40);
  EXPECT_GT(dark, 97 * 10);  // the padding
}

TEST(Targets, MaskLabelsAreNeverInterpolatedOrInvented) {
  const LabelMask mask = random_mask(211, 157, 5, 3);  // ids 0..4
  for (const int size : {64, 97, 400}) {
    const LabelMask out = mask_to_output(mask, letterboxed(157, 211, 10, 3, 140, 200, size));
    const std::set<std::uint16_t> seen(out.labels.begin(), out.labels.end());
    for (const auto v : seen) EXPECT_LE(v, 4) << size;
  }
}

TEST(Targets, MasksRoundTripExactlyWhereTheResizeEnlarges) {
  const LabelMask mask = random_mask(50, 70, 9, 11);
  const Geometry g = letterboxed(70, 50, 5, 8, 61, 37, 256);  // 61 -> 256, 37 -> 155
  const LabelMask back = to_original(mask_to_output(mask, g), g);
  ASSERT_EQ(back.height, 50);
  ASSERT_EQ(back.width, 70);
  for (int y = 0; y < 50; ++y) {
    for (int x = 0; x < 70; ++x) {
      const bool inside = x >= 5 && x < 66 && y >= 8 && y < 45;
      ASSERT_EQ(label_at(back, y, x), inside ? label_at(mask, y, x) : 0) << y << "," << x;
    }
  }
}

TEST(Targets, ThePaddingIsBackgroundAndAPredictionInItIsIgnored) {
  const Geometry g = letterboxed(100, 40, 0, 0, 100, 40, 50);  // 50 x 20, 15 rows of padding above
  LabelMask prediction{50, 50, std::vector<std::uint16_t>(50 * 50, 3)};
  const LabelMask back = mask_to_original(prediction, g);
  for (const auto v : back.labels) ASSERT_EQ(v, 3);  // every original pixel comes from the image rows
  const LabelMask out = mask_to_output(LabelMask{40, 100, std::vector<std::uint16_t>(4000, 2)}, g);
  EXPECT_EQ(g.pad_top, 15);
  for (int x = 0; x < 50; ++x) {
    EXPECT_EQ(label_at(out, 0, x), 0);
    EXPECT_EQ(label_at(out, 14, x), 0);
    EXPECT_EQ(label_at(out, 15, x), 2);
    EXPECT_EQ(label_at(out, 34, x), 2);
    EXPECT_EQ(label_at(out, 35, x), 0);
  }
}

TEST(Targets, BoxesAndPointsRoundTripOnBothSides) {
  const Geometry g = letterboxed(640, 480, 37, 21, 533, 401, 224);
  const std::vector<Box> boxes = {
      {40.5, 30.25, 100, 90, 1}, {37, 21, 570, 422, 2}, {300, 200, 301.5, 200.5, 3}};
  const MappedBoxes out = boxes_to_output(boxes, g, 0.5);
  ASSERT_EQ(out.boxes.size(), 3u);
  EXPECT_EQ(out.dropped, 0u);
  // The crop box's corners are the resized crop's corners, on the longer and the shorter side.
  EXPECT_NEAR(out.boxes[1].x0, g.pad_left, 1e-9);
  EXPECT_NEAR(out.boxes[1].y0, g.pad_top, 1e-9);
  EXPECT_NEAR(out.boxes[1].x1, g.pad_left + g.resized_width(), 1e-9);
  EXPECT_NEAR(out.boxes[1].y1, g.pad_top + g.resized_height(), 1e-9);
  const MappedBoxes back = to_original(out.boxes, g);
  ASSERT_EQ(back.boxes.size(), 3u);
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    EXPECT_NEAR(back.boxes[i].x0, boxes[i].x0, 1e-9);
    EXPECT_NEAR(back.boxes[i].y0, boxes[i].y0, 1e-9);
    EXPECT_NEAR(back.boxes[i].x1, boxes[i].x1, 1e-9);
    EXPECT_NEAR(back.boxes[i].y1, boxes[i].y1, 1e-9);
    EXPECT_EQ(back.boxes[i].label, boxes[i].label);
  }
  const std::vector<Landmark> points = {{37, 21, 0}, {570, 422, 1}, {123.456, 321.5, 2}};
  const MappedLandmarks mapped = landmarks_to_output(points, g);
  ASSERT_EQ(mapped.points.size(), 3u);
  const MappedLandmarks returned = to_original(mapped.points, g);
  ASSERT_EQ(returned.points.size(), 3u);
  for (std::size_t i = 0; i < points.size(); ++i) {
    EXPECT_NEAR(returned.points[i].x, points[i].x, 1e-9);
    EXPECT_NEAR(returned.points[i].y, points[i].y, 1e-9);
    EXPECT_EQ(returned.points[i].label, points[i].label);
  }
}

TEST(Targets, BoxesMostlyOutsideTheCropAreDroppedAndCounted) {
  const Geometry g = letterboxed(200, 200, 50, 50, 100, 100, 100);
  const std::vector<Box> boxes = {
      {0, 0, 40, 40, 1},       // wholly outside: dropped at any threshold
      {40, 60, 60, 80, 2},     // half inside
      {140, 140, 160, 150, 3}  // half inside, clipped to the crop
  };
  EXPECT_EQ(boxes_to_output(boxes, g, 0.0).dropped, 1u);
  EXPECT_EQ(boxes_to_output(boxes, g, 0.5).dropped, 1u);
  const MappedBoxes strict = boxes_to_output(boxes, g, 0.51);
  EXPECT_EQ(strict.dropped, 3u);
  EXPECT_TRUE(strict.boxes.empty());
  const MappedBoxes half = boxes_to_output(boxes, g, 0.5);
  ASSERT_EQ(half.boxes.size(), 2u);
  EXPECT_DOUBLE_EQ(half.boxes[0].x0, 0);  // clipped at the crop's left edge
  EXPECT_DOUBLE_EQ(half.boxes[1].x1, 100);
  const MappedLandmarks points = landmarks_to_output({{49.9, 60, 0}, {50, 60, 1}, {150.1, 60, 2}}, g);
  EXPECT_EQ(points.dropped, 2u);
  ASSERT_EQ(points.points.size(), 1u);
  EXPECT_EQ(points.points[0].label, 1);
  // A predicted box wholly in the padding has no place in the original image.
  const Geometry wide = letterboxed(200, 100, 0, 0, 200, 100, 100);  // 25 rows of padding above
  EXPECT_EQ(boxes_to_original({{10, 0, 20, 20, 1}, {10, 20, 20, 30, 2}}, wide).dropped, 1u);
}

TEST(Targets, BadBoxesAndCraftedGeometriesAreClearErrors) {
  const Geometry g = letterboxed(200, 200, 0, 0, 200, 200, 64);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(boxes_to_output({{nan, 0, 10, 10, 1}}, g, 0.5), FormatError);
  EXPECT_THROW(boxes_to_output({{10, 10, 10, 20, 1}}, g, 0.5), FormatError);  // no area
  EXPECT_THROW(boxes_to_output({{0, 0, 10, 10, 1}}, g, 1.5), ConfigError);
  EXPECT_THROW(landmarks_to_original({{nan, 1, 0}}, g), FormatError);
  Geometry crafted = g;
  crafted.crop_w = 1 << 30;  // a crop box larger than the image
  EXPECT_THROW(mask_to_output(random_mask(200, 200, 2, 1), crafted), FormatError);
  crafted = g;
  crafted.scale = 1e300;  // an output of astronomical size: refused before anything is allocated
  EXPECT_THROW(mask_to_output(random_mask(200, 200, 2, 1), crafted), FormatError);
  crafted = g;
  crafted.pad_left = -3;
  EXPECT_THROW(output_width(crafted), FormatError);
  EXPECT_THROW(mask_to_output(random_mask(100, 200, 2, 1), g), FormatError);  // not the image's size
  EXPECT_THROW(mask_to_original(random_mask(64, 63, 2, 1), g), FormatError);  // not the output's
}

}  // namespace
}  // namespace medload::loader

namespace medload::loader {
namespace {

// A frame's targets move together: states carried over, the mask onto the whole output grid, a box
// mostly outside the crop dropped and counted, a landmark outside it too; kinds not given stay so.
TEST(Targets, AFramesTargetsMoveOntoTheOutputTogether) {
  const Geometry g = letterboxed(200, 100, 50, 0, 100, 100, 64);
  FrameTargets original;
  original.mask_state = TargetState::kValid;
  original.mask = random_mask(100, 200, 3, 7);
  original.boxes_state = TargetState::kValid;
  original.boxes = {{60, 10, 90, 40, 1}, {0, 0, 55, 20, 2}};  // the second: 5 of 55 columns inside
  original.landmarks_state = TargetState::kInvalid;
  const FrameTargets out = targets_to_output(original, g, kMinVisibleBoxArea);
  EXPECT_EQ(out.mask_state, TargetState::kValid);
  EXPECT_EQ(out.mask.width, output_width(g));
  EXPECT_EQ(out.mask.height, output_height(g));
  EXPECT_EQ(out.mask.labels, mask_to_output(original.mask, g).labels);
  ASSERT_EQ(out.boxes.size(), 1u);
  EXPECT_EQ(out.boxes_dropped, 1u);
  EXPECT_NEAR(out.boxes[0].x0, (60 - 50) * 0.64, 1e-9);
  EXPECT_EQ(out.boxes[0].label, 1);
  EXPECT_EQ(out.landmarks_state, TargetState::kInvalid);
  EXPECT_TRUE(out.landmarks.empty());

  FrameTargets points;
  points.landmarks_state = TargetState::kValid;
  points.landmarks = {{75, 50, 1}, {10, 50, 2}};
  const FrameTargets moved = targets_to_output(points, g, kMinVisibleBoxArea);
  EXPECT_EQ(moved.mask_state, TargetState::kNone);
  EXPECT_TRUE(moved.mask.labels.empty());
  ASSERT_EQ(moved.landmarks.size(), 1u);
  EXPECT_EQ(moved.landmarks_dropped, 1u);
  EXPECT_NEAR(moved.landmarks[0].x, 25 * 0.64, 1e-9);
}

}  // namespace
}  // namespace medload::loader
