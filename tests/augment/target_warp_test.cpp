// Targets (label masks, boxes, landmarks) under augmentation: exact values on hand-made inputs,
// agreement with the augmented image on random draws, laterality, and the options that carry it.

#include "medload/augment/target_warp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "augment_test_util.h"
#include "medload/augment/augmenter.h"
#include "medload/core/error.h"

using namespace medload::augment;
using namespace medload::augment::test;
using medload::ConfigError;
using medload::FormatError;

namespace {

// The shapes of medload::loader's target types (annotation.h), which the templates accept; the
// augment tests do not depend on the loader.
struct TestMask {
  int height = 0;
  int width = 0;
  std::vector<std::uint16_t> labels;
};
struct TestBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::int32_t label = 0;
};
struct TestLandmark {
  double x = 0, y = 0;
  std::int32_t label = 0;
};

constexpr int kW = 96, kH = 80;  // not square, so that a width/height mix-up shows

// Two labelled regions: an asymmetric "L" (label 1) and a disc (label 2), background 0.
TestMask two_regions() {
  TestMask m{kH, kW, std::vector<std::uint16_t>(kW * kH, 0)};
  for (int y = 0; y < kH; ++y) {
    for (int x = 0; x < kW; ++x) {
      const bool l = (x >= 20 && x < 32 && y >= 18 && y < 60) || (x >= 20 && x < 50 && y >= 48 && y < 60);
      const bool disc = (x - 66.5) * (x - 66.5) + (y - 32.5) * (y - 32.5) <= 14.0 * 14.0;
      m.labels[y * kW + x] = l ? 1 : disc ? 2 : 0;
    }
  }
  return m;
}

// A random-looking label map over ids 0..9, for exact pixel comparisons.
TestMask noise_mask(int w, int h) {
  TestMask m{h, w, std::vector<std::uint16_t>(static_cast<std::size_t>(w) * h)};
  for (std::size_t i = 0; i < m.labels.size(); ++i)
    m.labels[i] = static_cast<std::uint16_t>((i * 7919 + i / 13) % 10);
  return m;
}

// Geometry only (no intensity operation, blur or down-sampling), flips half the time.
AugmentOptions geometry_only(std::uint64_t seed) {
  AugmentOptions o;
  o.seed = seed;
  o.allow_horizontal_flip = true;
  o.horizontal_flip.probability = 0.5;
  o.rotation = {1.0, 10.0};
  o.translation = {1.0, 0.1};
  o.scale = {1.0, 0.9, 1.1};
  o.gamma.probability = o.brightness.probability = o.contrast.probability = 0.0;
  o.gaussian_noise.probability = o.poisson_noise.probability = 0.0;
  o.blur.probability = o.downsample.probability = 0.0;
  return o;
}

// uint8 [n,1,kH,kW] where each sample is `pixel(x, y)` (0 or 255).
template <class F>
torch::Tensor image_of(std::int64_t n, F pixel) {
  torch::Tensor t = torch::zeros({n, 1, kH, kW}, torch::kUInt8);
  std::uint8_t* d = t.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    for (int y = 0; y < kH; ++y) {
      for (int x = 0; x < kW; ++x) d[(i * kH + y) * kW + x] = pixel(x, y) ? 255 : 0;
    }
  }
  return t;
}

std::vector<std::int64_t> first_ids(std::int64_t n) {
  std::vector<std::int64_t> v(n);
  for (std::int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Matrices

TEST(TargetWarp, ForwardMatrixInvertsTheImagesInverseMatrix) {
  Augmenter augmenter(geometry_only(3), 1);
  for (std::int64_t id = 0; id < 20; ++id) {
    const WarpGeometry g = augmenter.draw(id, 1);
    const WarpMatrix inv = inverse_warp_matrix(g, kW, kH);
    const WarpMatrix fwd = forward_warp_matrix(g, kW, kH);
    for (const auto& [x, y] : {std::pair{0.0, 0.0}, {10.5, 70.25}, {95.0, 3.0}, {47.5, 39.5}}) {
      // Pixel index (x, y) is continuous (x + 0.5, y + 0.5).
      const double sx = inv.m[0] * x + inv.m[1] * y + inv.m[2], sy = inv.m[3] * x + inv.m[4] * y + inv.m[5];
      const double fx = fwd.m[0] * (sx + 0.5) + fwd.m[1] * (sy + 0.5) + fwd.m[2];
      const double fy = fwd.m[3] * (sx + 0.5) + fwd.m[4] * (sy + 0.5) + fwd.m[5];
      EXPECT_NEAR(fx, x + 0.5, 1e-9);
      EXPECT_NEAR(fy, y + 0.5, 1e-9);
    }
  }
}

TEST(TargetWarp, AppliedParamsConvertToTheirGeometry) {
  AppliedParams p = identity_params();
  p.horizontal_flip = true;
  p.rotation_degrees = -3.5;
  p.translate_x = 0.02;
  p.translate_y = -0.04;
  p.scale = 1.03;
  p.gamma = 1.4;  // intensity: not part of the geometry
  const WarpGeometry g = p;
  EXPECT_TRUE(g.horizontal_flip);
  EXPECT_FALSE(g.vertical_flip);
  EXPECT_EQ(g.rotation_degrees, -3.5);
  EXPECT_EQ(g.translate_x, 0.02);
  EXPECT_EQ(g.translate_y, -0.04);
  EXPECT_EQ(g.scale, 1.03);
  EXPECT_TRUE(g.mirrors());
  EXPECT_FALSE(WarpGeometry(identity_params()).mirrors());
}

// ---------------------------------------------------------------------------------------------
// Exact values on hand-made inputs

TEST(TargetWarp, IdentityAndIntensityOnlyParametersLeaveEveryTargetUnchanged) {
  AppliedParams p = identity_params();
  p.gamma = 1.3, p.brightness = 0.9, p.contrast = 1.1, p.gaussian_sigma = 0.02, p.blur_sigma = 0.8;
  p.downsample_factor = 0.5, p.poisson_photons = 500;
  const TestMask m = noise_mask(33, 21);
  EXPECT_EQ(warp_mask(m, p).labels, m.labels);
  std::vector<std::uint8_t> u8(m.labels.begin(), m.labels.end()), out(u8.size());
  warp_mask(u8.data(), out.data(), 33, 21, p);
  EXPECT_EQ(out, u8);
  const std::vector<TestBox> boxes{{0.1, 0.2, 32.9, 20.95, 3}, {4.25, 5.5, 6.75, 7.125, 1}};
  std::size_t dropped = 99;
  const auto warped = warp_boxes(boxes, p, 33, 21, 0.5, {}, &dropped);
  ASSERT_EQ(warped.size(), 2u);
  EXPECT_EQ(dropped, 0u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(warped[i].x0, boxes[i].x0);
    EXPECT_EQ(warped[i].y0, boxes[i].y0);
    EXPECT_EQ(warped[i].x1, boxes[i].x1);
    EXPECT_EQ(warped[i].y1, boxes[i].y1);
    EXPECT_EQ(warped[i].label, boxes[i].label);
  }
  const std::vector<TestLandmark> points{{0.0, 0.0, 1}, {32.999, 20.5, 2}};
  const auto moved = warp_landmarks(points, p, 33, 21, {}, &dropped);
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(moved[1].x, 32.999);
  EXPECT_EQ(moved[1].y, 20.5);
}

TEST(TargetWarp, FlipsMirrorTheMaskExactly) {
  const int w = 37, h = 23;
  const TestMask m = noise_mask(w, h);
  WarpGeometry hflip, vflip;
  hflip.horizontal_flip = true;
  vflip.vertical_flip = true;
  const TestMask a = warp_mask(m, hflip), b = warp_mask(m, vflip);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      ASSERT_EQ(a.labels[y * w + x], m.labels[y * w + (w - 1 - x)]) << x << "," << y;
      ASSERT_EQ(b.labels[y * w + x], m.labels[(h - 1 - y) * w + x]) << x << "," << y;
    }
  }
}

TEST(TargetWarp, QuarterTurnOfASquareMaskIsTheMirroredTranspose) {
  const int n = 31;
  const TestMask m = noise_mask(n, n);
  WarpGeometry g;
  g.rotation_degrees = 90.0;  // clockwise on screen: the top-left corner goes to the top right
  const TestMask r = warp_mask(m, g);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x)
      ASSERT_EQ(r.labels[y * n + x], m.labels[(n - 1 - x) * n + y]) << x << "," << y;
  }
  // The same quarter turn moves a box and a point exactly.
  const std::vector<TestBox> box{{2.0, 5.0, 10.0, 7.0, 1}};
  const auto b = warp_boxes(box, g, n, n, 0.0);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NEAR(b[0].x0, n - 7.0, 1e-9);
  EXPECT_NEAR(b[0].x1, n - 5.0, 1e-9);
  EXPECT_NEAR(b[0].y0, 2.0, 1e-9);
  EXPECT_NEAR(b[0].y1, 10.0, 1e-9);
  const auto p = warp_point(3.5, 1.25, g, n, n);
  ASSERT_TRUE(p.has_value());
  EXPECT_NEAR(p->first, n - 1.25, 1e-9);
  EXPECT_NEAR(p->second, 3.5, 1e-9);
}

TEST(TargetWarp, TranslationMovesPointsAndBoxesByWholeFractionsOfTheSides) {
  WarpGeometry g;
  g.translate_x = 0.1;    // 10 px of 100
  g.translate_y = -0.25;  // -10 px of 40
  const auto p = warp_point(10.25, 20.5, g, 100, 40);
  ASSERT_TRUE(p.has_value());
  EXPECT_NEAR(p->first, 20.25, 1e-12);
  EXPECT_NEAR(p->second, 10.5, 1e-12);
  // Integer shifts move the mask by whole pixels, background where nothing came in.
  const TestMask m = noise_mask(100, 40);
  const TestMask t = warp_mask(m, g);
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 100; ++x) {
      const int sx = x - 10, sy = y + 10;
      const std::uint16_t expected = sx >= 0 && sy < 40 ? m.labels[sy * 100 + sx] : 0;
      ASSERT_EQ(t.labels[y * 100 + x], expected) << x << "," << y;
    }
  }
}

TEST(TargetWarp, BoxesPartlyOutsideAreClippedOrDroppedByTheirVisibleFraction) {
  WarpGeometry g;
  g.translate_x = 0.25;  // 25 px right of 100
  const std::vector<TestBox> boxes{
      {60, 10, 100, 20, 1},  // -> [85, 125]: 15 of 40 px visible (0.375)
      {10, 10, 20, 20, 2},   // -> [35, 45]: whole
      {80, 0, 90, 5, 3},     // -> [105, 115]: outside
  };
  std::size_t dropped = 0;
  auto kept = warp_boxes(boxes, g, 100, 30, 0.3, {}, &dropped);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(kept[0].label, 1);
  EXPECT_NEAR(kept[0].x0, 85.0, 1e-12);
  EXPECT_EQ(kept[0].x1, 100.0);  // clipped
  EXPECT_NEAR(kept[1].x0, 35.0, 1e-12);
  kept = warp_boxes(boxes, g, 100, 30, 0.5, {}, &dropped);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].label, 2);
  EXPECT_EQ(dropped, 2u);
  kept = warp_boxes(boxes, g, 100, 30, 0.0, {}, &dropped);  // 0: only boxes wholly outside go
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(dropped, 1u);
}

TEST(TargetWarp, LandmarksThatLeaveTheImageAreDroppedAndCounted) {
  WarpGeometry g;
  g.translate_x = -0.1;  // 5 px left of 50
  const std::vector<TestLandmark> points{{4.9, 1, 1}, {5.0, 1, 2}, {54.9, 1, 3}, {30, 29.99, 4}};
  std::size_t dropped = 0;
  const auto kept = warp_landmarks(points, g, 50, 30, {}, &dropped);
  EXPECT_EQ(dropped, 1u);  // 4.9 -> -0.1
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].label, 2);
  EXPECT_NEAR(kept[0].x, 0.0, 1e-12);
  EXPECT_EQ(kept[1].label, 3);  // 54.9 was outside before the shift and is inside after it
  EXPECT_EQ(kept[2].label, 4);
}

TEST(TargetWarp, BadTargetsAndArgumentsThrow) {
  const WarpGeometry g;
  EXPECT_THROW(warp_box({0, 0, NAN, 1}, g, 10, 10, 0.5), FormatError);
  EXPECT_THROW(warp_box({3, 0, 3, 1}, g, 10, 10, 0.5), FormatError);
  EXPECT_THROW(warp_box({0, 0, 1, 1}, g, 10, 10, 1.5), ConfigError);
  EXPECT_THROW(warp_box({0, 0, 1, 1}, g, 10, 10, NAN), ConfigError);
  EXPECT_THROW(warp_point(INFINITY, 1, g, 10, 10), FormatError);
  std::vector<std::uint16_t> buffer(4);
  EXPECT_THROW(warp_mask(buffer.data(), buffer.data(), 0, 4, g), ConfigError);
  EXPECT_THROW(warp_mask(buffer.data(), buffer.data(), 40000, 1, g), ConfigError);
  TestMask wrong{2, 3, std::vector<std::uint16_t>(5)};
  EXPECT_THROW(warp_mask(wrong, g), FormatError);
}

TEST(TargetWarp, InPlaceWarpEqualsTheCopy) {
  WarpGeometry g;
  g.rotation_degrees = 6.0, g.scale = 1.07, g.translate_x = 0.03, g.horizontal_flip = true;
  const TestMask m = noise_mask(kW, kH);
  const TestMask copy = warp_mask(m, g);
  std::vector<std::uint16_t> in_place = m.labels;
  warp_mask(in_place.data(), in_place.data(), kW, kH, g);
  EXPECT_EQ(in_place, copy.labels);
  // uint8 masks warp the same as uint16 ones.
  std::vector<std::uint8_t> u8(m.labels.begin(), m.labels.end());
  warp_mask(u8.data(), u8.data(), kW, kH, g);
  EXPECT_TRUE(std::equal(u8.begin(), u8.end(), copy.labels.begin()));
}

// ---------------------------------------------------------------------------------------------
// Agreement with the augmented image (CPU path, uint8, geometry only)

TEST(TargetWarp, MaskFollowsTheAugmentedImagePixelForPixel) {
  const std::int64_t n = 50;
  const TestMask mask = two_regions();
  torch::Tensor images = image_of(n, [&](int x, int y) { return mask.labels[y * kW + x] != 0; });
  Augmenter augmenter(geometry_only(11), 2);
  const std::vector<AppliedParams> params = augmenter.apply(images, first_ids(n), 4);
  double worst = 1.0, sum = 0.0;
  std::size_t disagree = 0, flips = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    flips += params[i].horizontal_flip ? 1 : 0;
    const TestMask warped = warp_mask(mask, params[i]);
    const std::uint8_t* img = images[i].data_ptr<std::uint8_t>();
    std::size_t both = 0, either = 0;
    for (std::size_t k = 0; k < warped.labels.size(); ++k) {
      const bool labelled = warped.labels[k] != 0, bright = img[k] >= 128;
      ASSERT_LE(warped.labels[k], 2) << "nearest neighbour invents no label";
      both += labelled && bright;
      either += labelled || bright;
      disagree += labelled != bright;
    }
    const double iou = static_cast<double>(both) / static_cast<double>(either);
    worst = std::min(worst, iou);
    sum += iou;
    EXPECT_GE(iou, 0.98) << "sample " << i << ": " << params[i].to_json().dump();
  }
  std::cout << "[measured] mask vs thresholded image, " << n << " draws (" << flips << " flipped): IoU min "
            << worst << ", mean " << sum / n << "; pixels disagreeing " << disagree << " of " << n * kW * kH
            << "\n";
  EXPECT_GT(flips, 10u);
  EXPECT_LT(flips, 40u);
}

TEST(TargetWarp, BoxEnclosesTheWarpedRectangle) {
  const std::int64_t n = 50;
  const TestBox rect{30, 22, 58, 47, 1};  // pixels 30..57 x 22..46
  torch::Tensor images = image_of(n, [&](int x, int y) { return x >= 30 && x < 58 && y >= 22 && y < 47; });
  Augmenter augmenter(geometry_only(12), 1);
  const std::vector<AppliedParams> params = augmenter.apply(images, first_ids(n), 0);
  double worst = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto boxes = warp_boxes(std::vector<TestBox>{rect}, params[i], kW, kH, 0.25);
    ASSERT_EQ(boxes.size(), 1u);
    // The bright pixels' extent, in continuous coordinates.
    const std::uint8_t* img = images[i].data_ptr<std::uint8_t>();
    double x0 = kW, y0 = kH, x1 = 0, y1 = 0;
    for (int y = 0; y < kH; ++y) {
      for (int x = 0; x < kW; ++x) {
        if (img[y * kW + x] < 128) continue;
        x0 = std::min<double>(x0, x), y0 = std::min<double>(y0, y);
        x1 = std::max<double>(x1, x + 1), y1 = std::max<double>(y1, y + 1);
      }
    }
    const TestBox& b = boxes[0];
    // The box encloses the bright region (to half a pixel) and is no more than 1.5 px larger on
    // any side: the corners of a rotated rectangle are single points that pixel centres miss.
    for (const auto& [outer, inner, sign] :
         {std::tuple{b.x0, x0, 1.0}, {b.y0, y0, 1.0}, {b.x1, x1, -1.0}, {b.y1, y1, -1.0}}) {
      const double slack = sign * (inner - outer);  // >= 0 when the box encloses
      EXPECT_GE(slack, -0.5) << "sample " << i;
      EXPECT_LE(slack, 1.5) << "sample " << i;
      worst = std::max(worst, std::abs(slack));
    }
  }
  std::cout << "[measured] box vs bright rectangle extent, " << n << " draws: largest side difference "
            << worst << " px\n";
}

TEST(TargetWarp, LandmarksLandOnTheWarpedDots) {
  const std::int64_t n = 50;
  // 5x5 dots centred on the pixel (cx, cy): continuous centre (cx + 0.5, cy + 0.5).
  const std::vector<std::pair<int, int>> centres{{25, 22}, {70, 20}, {48, 40}, {28, 58}, {66, 56}};
  torch::Tensor images = image_of(n, [&](int x, int y) {
    for (const auto& [cx, cy] : centres) {
      if (std::abs(x - cx) <= 2 && std::abs(y - cy) <= 2) return true;
    }
    return false;
  });
  std::vector<TestLandmark> points;
  for (std::size_t k = 0; k < centres.size(); ++k) {
    points.push_back({centres[k].first + 0.5, centres[k].second + 0.5, static_cast<std::int32_t>(k + 1)});
  }
  Augmenter augmenter(geometry_only(13), 1);
  const std::vector<AppliedParams> params = augmenter.apply(images, first_ids(n), 2);
  double worst = 0.0;
  std::size_t checked = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::size_t dropped = 0;
    const auto moved = warp_landmarks(points, params[i], kW, kH, {}, &dropped);
    EXPECT_EQ(dropped, 0u);  // the dots stay well inside
    const std::uint8_t* img = images[i].data_ptr<std::uint8_t>();
    for (const TestLandmark& p : moved) {
      // The intensity centroid within 6 px of the landmark (the dots are >= 18 px apart).
      double sw = 0, sx = 0, sy = 0;
      for (int y = std::max(0, static_cast<int>(p.y) - 6); y < std::min(kH, static_cast<int>(p.y) + 7); ++y) {
        for (int x = std::max(0, static_cast<int>(p.x) - 6); x < std::min(kW, static_cast<int>(p.x) + 7);
             ++x) {
          const double v = img[y * kW + x];
          sw += v, sx += v * (x + 0.5), sy += v * (y + 0.5);
        }
      }
      ASSERT_GT(sw, 0.0) << "no dot near landmark " << p.label << " of sample " << i;
      const double d = std::hypot(sx / sw - p.x, sy / sw - p.y);
      EXPECT_LE(d, 1.0) << "landmark " << p.label << " of sample " << i;
      worst = std::max(worst, d);
      ++checked;
    }
  }
  std::cout << "[measured] landmark vs warped dot centroid, " << checked << " points: largest distance "
            << worst << " px\n";
}

TEST(TargetWarp, SameTargetsWhateverTheThreadCountAndAfterReplayFromJson) {
  const TestMask mask = two_regions();
  Augmenter one(geometry_only(21), 1), four(geometry_only(21), 4);
  for (std::int64_t id = 0; id < 8; ++id) {
    const AppliedParams a = one.draw(id, 3), b = four.draw(id, 3);
    const AppliedParams logged = AppliedParams::from_json(nlohmann::json::parse(a.to_json().dump()));
    EXPECT_EQ(warp_mask(mask, a).labels, warp_mask(mask, b).labels) << id;
    EXPECT_EQ(warp_mask(mask, a).labels, warp_mask(mask, logged).labels) << id;
  }
}

// ---------------------------------------------------------------------------------------------
// Laterality

TEST(TargetWarp, LateralitySwapsPairedClassesExactlyWhenTheWarpMirrors) {
  const Laterality sides({{3, 4}, {7, 300}});
  EXPECT_EQ(sides.swap(3), 4);
  EXPECT_EQ(sides.swap(4), 3);
  EXPECT_EQ(sides.swap(300), 7);
  EXPECT_EQ(sides.swap(5), 5);
  EXPECT_EQ(sides.swap(0), 0);
  EXPECT_EQ(sides.swap(40000), 40000);

  // "left" (3) on the image's right, "right" (4) on its left, an unpaired 5 in the middle.
  const int w = 12, h = 4;
  TestMask m{h, w, std::vector<std::uint16_t>(w * h, 0)};
  for (int y = 0; y < h; ++y) {
    m.labels[y * w + 1] = 4;
    m.labels[y * w + 6] = 5;
    m.labels[y * w + 9] = 3;
  }
  const std::vector<TestBox> boxes{{9, 0, 10, 4, 3}, {1, 0, 2, 4, 4}, {5, 0, 7, 4, 5}};
  const std::vector<TestLandmark> points{{9.5, 2, 3}, {6.5, 2, 5}};
  WarpGeometry h_flip, v_flip, both;
  h_flip.horizontal_flip = true;
  v_flip.vertical_flip = true;
  both.horizontal_flip = both.vertical_flip = true;

  const TestMask flipped = warp_mask(m, h_flip, sides);
  // Column 9's "left" (3) lands in column 2 and, mirrored, looks like (and is now) a "right".
  EXPECT_EQ(flipped.labels[2], 4);
  EXPECT_EQ(flipped.labels[5], 5);
  EXPECT_EQ(flipped.labels[10], 3);
  const auto fb = warp_boxes(boxes, h_flip, w, h, 0.5, sides);
  ASSERT_EQ(fb.size(), 3u);
  EXPECT_EQ(fb[0].label, 4);
  EXPECT_EQ(fb[0].x0, 2.0);
  EXPECT_EQ(fb[0].x1, 3.0);
  EXPECT_EQ(fb[1].label, 3);
  EXPECT_EQ(fb[2].label, 5);
  const auto fp = warp_landmarks(points, h_flip, w, h, sides);
  ASSERT_EQ(fp.size(), 2u);
  EXPECT_EQ(fp[0].label, 4);
  EXPECT_EQ(fp[1].label, 5);

  // A vertical flip mirrors too; both flips are a half turn, which keeps sides.
  EXPECT_EQ(warp_mask(m, v_flip, sides).labels[(h - 1) * w + 9], 4);
  const TestMask turned = warp_mask(m, both, sides);
  EXPECT_EQ(turned.labels[(h - 1) * w + 2], 3);
  EXPECT_EQ(warp_boxes(boxes, both, w, h, 0.5, sides)[0].label, 3);
  // Without a mirror nothing is relabelled, with or without pairs.
  EXPECT_EQ(warp_mask(m, WarpGeometry{}, sides).labels, m.labels);
  EXPECT_EQ(warp_mask(m, h_flip).labels[2], 3);  // no pairs: mirrored only
}

TEST(TargetWarp, Uint8MaskRefusesAPairItCouldNotHoldWhetherOrNotTheDrawMirrors) {
  std::vector<std::uint8_t> labels(16, 7);
  const Laterality wide(std::map<std::int32_t, std::int32_t>{{7, 300}});
  EXPECT_THROW(warp_mask(labels.data(), labels.data(), 4, 4, WarpGeometry{}, wide), ConfigError);
  const Laterality narrow(std::map<std::int32_t, std::int32_t>{{7, 200}});
  WarpGeometry flip;
  flip.horizontal_flip = true;
  warp_mask(labels.data(), labels.data(), 4, 4, flip, narrow);
  EXPECT_EQ(labels[5], 200);
}

namespace {

std::string laterality_error(const nlohmann::json& pairs) {
  try {
    AugmentOptions::from_json({{"laterality", pairs}});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AugmentOptionsLaterality, BadPairsAreConfigErrorsNamingTheOption) {
  using nlohmann::json;
  EXPECT_EQ(laterality_error(json{{"3", 4}, {"5", 6}}), "");
  EXPECT_EQ(laterality_error(json{{"3", 4.0}}), "");  // a whole number, as other integers
  EXPECT_EQ(laterality_error(json{{"3", 3}}), "augment.laterality pairs class 3 with itself");
  EXPECT_EQ(laterality_error(json{{"3", 4}, {"4", 3}}),
            "augment.laterality names the pair 3, 4 twice; one entry, {\"3\": 4}, swaps them both ways");
  EXPECT_NE(laterality_error(json{{"3", 4}, {"5", 4}}).find("pairs class 4 twice (with 3 and with 5)"),
            std::string::npos);
  EXPECT_NE(laterality_error(json{{"3", 70000}}).find("augment.laterality.3 is 70000"), std::string::npos);
  EXPECT_NE(laterality_error(json{{"3", 0}}).find("augment.laterality.3 is 0"), std::string::npos);
  EXPECT_NE(laterality_error(json{{"3", 4.5}}).find("augment.laterality.3 is 4.5"), std::string::npos);
  EXPECT_NE(laterality_error(json{{"3", "4"}}).find("augment.laterality.3 is \"4\""), std::string::npos);
  EXPECT_NE(laterality_error(json{{"3", nullptr}}).find("class id 1..65535"), std::string::npos);
  for (const char* key : {"0", "03", "-3", "+3", "3.0", "abc", "", "65536", "99999999999999999999"}) {
    EXPECT_NE(laterality_error(json{{key, 4}}).find("augment.laterality has the key"), std::string::npos)
        << key;
  }
  EXPECT_NE(laterality_error(json::array({3, 4})).find("augment.laterality must be a JSON object"),
            std::string::npos);
  // The C++ struct is validated the same way.
  AugmentOptions o;
  o.laterality = {{2, 2}};
  EXPECT_THROW(o.validate(), ConfigError);
  o.laterality = {{0, 2}};
  EXPECT_THROW(o.validate(), ConfigError);
  EXPECT_THROW(Augmenter(o, 1), ConfigError);
}

TEST(AugmentOptionsLaterality, WrittenOnlyWhenSetSmallerIdFirst) {
  EXPECT_FALSE(AugmentOptions().to_json().contains("laterality"));
  EXPECT_FALSE(AugmentOptions::full_chain().to_json().contains("laterality"));
  const AugmentOptions o = AugmentOptions::from_json({{"laterality", {{"4", 3}, {"12", 11}}}});
  EXPECT_EQ(o.laterality.size(), 2u);
  EXPECT_EQ(o.laterality.at(4), 3);
  const nlohmann::json written = o.to_json().at("laterality");
  EXPECT_EQ(written, (nlohmann::json{{"3", 4}, {"11", 12}}));
  EXPECT_EQ(AugmentOptions::from_json(o.to_json()).to_json(), o.to_json());
}
