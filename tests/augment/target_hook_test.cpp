// Targets that follow the augmentation (make_target_hook, TargetAugmenter, warp_targets): a mask
// drawn over a bright region stays on it after the warp, boxes and landmarks follow it, exact
// values for a hand-made translation and a mirror, and the same targets whatever the thread
// count, through medload's loader.

#include "medload/augment/target_hook.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/data/samplers/random.h>
#include <torch/data/samplers/sequential.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "medload/augment/augmenter.h"
#include "medload/augment/contact_sheet.h"
#include "medload/core/error.h"
#include "medload/loader/serve/loader.h"

namespace {

using namespace medload;

constexpr int kSide = 64;
constexpr std::uint8_t kBright = 220;
constexpr std::size_t kSamples = 24;

// Sample i's bright square: [x0, x0 + 24) x [20, 44), x0 = 16 + i % 8.
int square_x0(std::size_t i) { return 16 + static_cast<int>(i % 8); }

// 24 samples of 64 x 64: a textured dark background with a bright square labelled 1 in the mask,
// its box (label 1) and two landmarks (its centre, label 1; its top-left inner pixel, label 2);
// sample 5 has an invalid mask, sample 6 no boxes (a negative). id = 300 + index.
class SquareSource : public loader::SampleSource {
 public:
  explicit SquareSource(bool masks_uint8 = false) {
    output_.as_float = false;
    output_.masks_uint8 = masks_uint8;
  }
  std::size_t size() const override { return kSamples; }
  loader::SampleLayout layout() const override { return {1, kSide, kSide, loader::PixelDepth::kUInt8}; }
  loader::SampleOutput output() const override { return output_; }
  void read(std::size_t index, void* out) const override {
    auto* p = static_cast<std::uint8_t*>(out);
    for (int y = 0; y < kSide; ++y) {
      for (int x = 0; x < kSide; ++x) {
        p[y * kSide + x] =
            inside(index, x, y) ? kBright : static_cast<std::uint8_t>(30 + 20 * std::sin(x / 5.0 + y / 7.0));
      }
    }
  }
  std::size_t label_columns() const override { return 0; }
  void label(std::size_t, std::int64_t* out) const override { *out = 0; }
  std::int64_t sample_id(std::size_t index) const override { return 300 + static_cast<std::int64_t>(index); }
  std::string describe(std::size_t index) const override { return "square " + std::to_string(index); }
  loader::TargetKinds targets() const override { return {true, true, true, 3}; }
  loader::TargetState read_mask(std::size_t index, std::uint16_t* out) const override {
    if (index == 5) {
      std::fill_n(out, kSide * kSide, std::uint16_t{0});
      return loader::TargetState::kInvalid;
    }
    for (int y = 0; y < kSide; ++y) {
      for (int x = 0; x < kSide; ++x) out[y * kSide + x] = inside(index, x, y) ? 1 : 0;
    }
    return loader::TargetState::kValid;
  }
  loader::TargetState boxes(std::size_t index, std::vector<loader::Box>& out) const override {
    out.clear();
    const double x0 = square_x0(index);
    if (index != 6) out.push_back({x0, 20, x0 + 24, 44, 1});
    return loader::TargetState::kValid;
  }
  loader::TargetState landmarks(std::size_t index, std::vector<loader::Landmark>& out) const override {
    const double x0 = square_x0(index);
    out = {{x0 + 12, 32, 1}, {x0 + 0.5, 20.5, 2}};
    return loader::TargetState::kValid;
  }
  static bool inside(std::size_t index, int x, int y) {
    return x >= square_x0(index) && x < square_x0(index) + 24 && y >= 20 && y < 44;
  }

 private:
  loader::SampleOutput output_;
};

augment::AugmentOptions geometric_chain(std::uint64_t seed = 11) {
  augment::AugmentOptions o = augment::AugmentOptions::full_chain();
  o.seed = seed;
  return o;
}

// Every served batch of `epoch`, per sample id: the sample's images and targets cut out of its
// batch (boxes [n,5] and landmarks [n,3], the label last).
struct Served {
  torch::Tensor image, mask, boxes, landmarks;
  bool mask_valid = false;
};

std::map<std::int64_t, Served> serve(std::size_t batch_size, std::size_t threads, bool shuffled,
                                     std::size_t epoch, bool masks_uint8 = false,
                                     augment::AugmentOptions options = geometric_chain()) {
  auto source = std::make_shared<SquareSource>(masks_uint8);
  loader::LoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.threads = threads;
  loader_options.augment_targets = augment::make_target_hook(options, threads);  // the one line
  std::map<std::int64_t, Served> out;
  auto collect = [&](loader::Loader& l) {
    l.set_epoch(epoch);
    while (auto b = l.next()) {
      const std::vector<torch::Tensor> boxes = b->box_list(), landmarks = b->landmark_list();
      for (std::int64_t j = 0; j < b->images.size(0); ++j) {
        const auto k = static_cast<std::size_t>(j);
        out[b->sample_ids[j].item<std::int64_t>()] = {b->images[j].clone(), b->masks[j].clone(),
                                                      boxes[k].clone(), landmarks[k].clone(),
                                                      b->mask_valid[j].item<bool>()};
      }
    }
  };
  if (shuffled) {
    loader::Loader l(source, torch::data::samplers::RandomSampler(kSamples), loader_options);
    collect(l);
  } else {
    loader::Loader l(source, torch::data::samplers::SequentialSampler(kSamples), loader_options);
    collect(l);
  }
  return out;
}

// Fraction of pixels where "the image is bright" and "the mask says 1" agree.
double agreement(const torch::Tensor& image, const torch::Tensor& mask) {
  const torch::Tensor bright = image.to(torch::kInt32).gt(125);
  const torch::Tensor labelled = mask.to(torch::kInt64).eq(1);
  return bright.eq(labelled).to(torch::kFloat64).mean().item<double>();
}

TEST(TargetHook, MaskStaysOnTheImageRegionItLabels) {
  const auto served = serve(8, 2, false, 0);
  ASSERT_EQ(served.size(), kSamples);
  SquareSource source;
  int moved = 0;
  for (const auto& [id, s] : served) {
    const auto index = static_cast<std::size_t>(id - 300);
    if (index == 5) {
      EXPECT_FALSE(s.mask_valid);
      EXPECT_EQ(s.mask.sum().item<std::int64_t>(), 0);
      continue;
    }
    EXPECT_GE(agreement(s.image, s.mask), 0.98) << "sample " << id;
    // The mask did move: against the unwarped mask the same measure is worse.
    torch::Tensor original = torch::empty({1, kSide, kSide}, torch::kInt64);
    std::vector<std::uint16_t> ids(kSide * kSide);
    source.read_mask(index, ids.data());
    for (std::size_t k = 0; k < ids.size(); ++k) original.data_ptr<std::int64_t>()[k] = ids[k];
    moved += !torch::equal(original, s.mask);
  }
  EXPECT_GE(moved, 18);  // full_chain warps every sample; a few may round back to the same grid
}

TEST(TargetHook, BoxesAndLandmarksFollowTheRegion) {
  const auto served = serve(8, 2, false, 0);
  for (const auto& [id, s] : served) {
    const torch::Tensor bright = s.image[0].to(torch::kInt32).gt(125).nonzero();  // [n,2] (y, x)
    ASSERT_GT(bright.size(0), 200) << "sample " << id;
    const double y0 = bright.select(1, 0).min().item<std::int64_t>(),
                 y1 = bright.select(1, 0).max().item<std::int64_t>() + 1;
    const double x0 = bright.select(1, 1).min().item<std::int64_t>(),
                 x1 = bright.select(1, 1).max().item<std::int64_t>() + 1;
    if (id == 306) {
      EXPECT_EQ(s.boxes.size(0), 0);  // a negative stays a negative
    } else {
      ASSERT_EQ(s.boxes.size(0), 1) << "sample " << id;
      const float* b = s.boxes.data_ptr<float>();
      EXPECT_NEAR(b[0], x0, 2.0) << "sample " << id;
      EXPECT_NEAR(b[1], y0, 2.0) << "sample " << id;
      EXPECT_NEAR(b[2], x1, 2.0) << "sample " << id;
      EXPECT_NEAR(b[3], y1, 2.0) << "sample " << id;
      EXPECT_EQ(b[4], 1.0f);  // the label
    }
    // The centre landmark lands on the bright square, the corner one near its corner.
    ASSERT_EQ(s.landmarks.size(0), 2) << "sample " << id;
    const float* p = s.landmarks.data_ptr<float>();
    const auto px = static_cast<std::int64_t>(p[0]), py = static_cast<std::int64_t>(p[1]);
    EXPECT_GT(s.image[0][py][px].item<std::uint8_t>(), 125) << "sample " << id;
    EXPECT_LT(std::hypot(p[3] - x0, p[4] - y0), 5.0) << "sample " << id;
  }
}

TEST(TargetHook, TargetsAreTheSameWhateverThreadsBatchAndOrder) {
  const auto a = serve(8, 1, false, 2);
  const auto b = serve(5, 3, true, 2);
  ASSERT_EQ(a.size(), kSamples);
  ASSERT_EQ(b.size(), kSamples);
  for (const auto& [id, s] : a) {
    const Served& t = b.at(id);
    EXPECT_TRUE(torch::equal(s.image, t.image)) << "sample " << id;
    EXPECT_TRUE(torch::equal(s.mask, t.mask)) << "sample " << id;
    EXPECT_TRUE(torch::equal(s.boxes, t.boxes)) << "sample " << id;
    EXPECT_TRUE(torch::equal(s.landmarks, t.landmarks)) << "sample " << id;
  }
  // Another epoch moves them differently.
  const auto c = serve(8, 1, false, 3);
  int differing = 0;
  for (const auto& [id, s] : a) differing += !torch::equal(s.boxes, c.at(id).boxes);
  EXPECT_GE(differing, 20);
}

TEST(TargetHook, Uint8AndInt64MasksWarpTheSame) {
  const auto wide = serve(8, 2, false, 1, false);
  const auto narrow = serve(8, 2, false, 1, true);
  for (const auto& [id, s] : wide) {
    EXPECT_EQ(narrow.at(id).mask.scalar_type(), torch::kUInt8);
    EXPECT_TRUE(torch::equal(s.mask, narrow.at(id).mask.to(torch::kInt64))) << "sample " << id;
  }
}

TEST(TargetHook, IntensityOperationsLeaveTargetsExactlyAsServed) {
  augment::AugmentOptions o = geometric_chain();
  o.rotation.probability = 0;
  o.translation.probability = 0;
  o.scale.probability = 0;
  const auto served = serve(8, 2, false, 0, false, o);
  SquareSource source;
  for (const auto& [id, s] : served) {
    const auto index = static_cast<std::size_t>(id - 300);
    std::vector<loader::Box> boxes;
    source.boxes(index, boxes);
    ASSERT_EQ(s.boxes.size(0), static_cast<std::int64_t>(boxes.size()));
    if (!boxes.empty()) {
      EXPECT_EQ(s.boxes[0][0].item<float>(), static_cast<float>(boxes[0].x0));
    }
    if (index != 5) {
      EXPECT_EQ(s.mask.sum().item<std::int64_t>(), 24 * 24) << "sample " << id;
      EXPECT_EQ(s.mask[0][20][square_x0(index)].item<std::int64_t>(), 1);
    }
  }
}

// One hand-made batch of two 64 x 64 samples: masks int64 [2,1,64,64] (a 10 x 10 square of
// class 1 at (8, 8) and one of class 2 at (40, 30)), boxes [2,2,5], landmarks [2,1,3].
augment::TargetTensors hand_made() {
  augment::TargetTensors t;
  t.masks = torch::zeros({2, 1, kSide, kSide}, torch::kInt64);
  for (std::int64_t b = 0; b < 2; ++b) {
    t.masks[b][0].slice(0, 8, 18).slice(1, 8, 18).fill_(1);
    t.masks[b][0].slice(0, 30, 40).slice(1, 40, 50).fill_(2);
  }
  t.boxes = torch::tensor({8.f, 8.f, 18.f, 18.f, 1.f, 40.f, 30.f, 50.f, 40.f, 2.f,  //
                           8.f, 8.f, 18.f, 18.f, 1.f, 40.f, 30.f, 50.f, 40.f, 2.f})
                .reshape({2, 2, 5});
  t.box_counts = torch::tensor({2, 2}, torch::kInt64);
  t.landmarks = torch::tensor({45.f, 35.f, 2.f, 45.f, 35.f, 2.f}).reshape({2, 1, 3});
  t.landmark_counts = torch::tensor({1, 1}, torch::kInt64);
  return t;
}

augment::AppliedParams shifted(double fraction_x) {
  augment::AppliedParams p;
  p.translate_x = fraction_x;
  return p;
}

TEST(WarpTargets, AWholePixelTranslationMovesEveryTargetExactlyAndDropsWhatLeaves) {
  augment::TargetTensors t = hand_made();
  const torch::Tensor before = t.masks.clone();
  // Sample 0 moves 16 px right; sample 1 moves 24 px right: its class-2 square and box leave the image
  // (box x 64..74: nothing visible), as does its landmark (x 69).
  augment::warp_targets(t, {shifted(0.25), shifted(0.375)}, kSide, kSide);
  EXPECT_TRUE(torch::equal(t.masks[0].slice(2, 16, kSide), before[0].slice(2, 0, kSide - 16)));
  EXPECT_EQ(t.masks[0].slice(2, 0, 16).sum().item<std::int64_t>(), 0);
  EXPECT_EQ(t.masks[1].eq(2).sum().item<std::int64_t>(), 0);
  EXPECT_EQ(t.masks[1].eq(1).sum().item<std::int64_t>(), 100);
  EXPECT_EQ(t.box_counts[0].item<std::int64_t>(), 2);
  EXPECT_TRUE(torch::equal(
      t.boxes[0], torch::tensor({24.f, 8.f, 34.f, 18.f, 1.f, 56.f, 30.f, 64.f, 40.f, 2.f}).reshape({2, 5})))
      << t.boxes[0];  // the second box clipped to the image: 8 of its 10 px wide are inside
  EXPECT_EQ(t.box_counts[1].item<std::int64_t>(), 1);
  // The dropped box's row is padding, exactly (0, 0, 0, 0, -1).
  EXPECT_TRUE(torch::equal(
      t.boxes[1], torch::tensor({32.f, 8.f, 42.f, 18.f, 1.f, 0.f, 0.f, 0.f, 0.f, -1.f}).reshape({2, 5})));
  EXPECT_TRUE(torch::equal(t.landmarks[0][0], torch::tensor({61.f, 35.f, 2.f})));
  EXPECT_EQ(t.landmark_counts[1].item<std::int64_t>(), 0);
  EXPECT_TRUE(torch::equal(t.landmarks[1][0], torch::tensor({0.f, 0.f, -1.f})));
}

TEST(WarpTargets, AMinimumVisibleFractionDecidesWhetherAClippedBoxStays) {
  augment::TargetTensors t = hand_made();
  augment::TargetWarpOptions strict;
  strict.min_box_visible = 0.9;  // the class-2 box keeps 0.8 of its area at a 16 px shift
  augment::warp_targets(t, {shifted(0.25), shifted(0.0)}, kSide, kSide, {}, strict);
  EXPECT_EQ(t.box_counts[0].item<std::int64_t>(), 1);
  EXPECT_EQ(t.box_counts[1].item<std::int64_t>(), 2);  // identity: untouched
  strict.min_box_visible = 1.5;
  EXPECT_THROW(augment::warp_targets(t, {shifted(0.25), shifted(0.0)}, kSide, kSide, {}, strict),
               ConfigError);
}

TEST(WarpTargets, AMirrorSwapsPairedClassesInMasksBoxesAndLandmarks) {
  augment::TargetTensors t = hand_made();
  augment::AppliedParams flip;
  flip.horizontal_flip = true;
  const augment::Laterality sides(std::map<std::int32_t, std::int32_t>{{1, 2}});
  augment::warp_targets(t, {flip, augment::AppliedParams{}}, kSide, kSide, sides);
  // Class 1 at x 8..17 is now class 2 at x 46..55; class 2 at x 40..49 is class 1 at x 14..23.
  EXPECT_EQ(t.masks[0][0][10][50].item<std::int64_t>(), 2);
  EXPECT_EQ(t.masks[0][0][10][10].item<std::int64_t>(), 0);
  EXPECT_EQ(t.masks[0][0][35][20].item<std::int64_t>(), 1);
  EXPECT_EQ(t.masks[0].eq(1).sum().item<std::int64_t>(), 100);
  EXPECT_TRUE(torch::equal(t.boxes[0].select(1, 4), torch::tensor({2.f, 1.f})));
  EXPECT_TRUE(torch::allclose(t.boxes[0][0], torch::tensor({46.f, 8.f, 56.f, 18.f, 2.f})));
  EXPECT_TRUE(torch::allclose(t.landmarks[0][0], torch::tensor({19.f, 35.f, 1.f})));
  EXPECT_TRUE(torch::equal(t.boxes[1].select(1, 4), torch::tensor({1.f, 2.f})));  // not mirrored
}

TEST(WarpTargets, ReplayGivesTheSameImagesAndTargets) {
  augment::TargetAugmenter augmenter(geometric_chain(), 2);
  torch::Tensor images = torch::zeros({2, 1, kSide, kSide}, torch::kUInt8);
  images.slice(2, 8, 18).slice(3, 8, 18).fill_(200);
  torch::Tensor images_again = images.clone();
  augment::TargetTensors t = hand_made(), again = hand_made();
  const auto params = augmenter.apply(images, t, {7, 8}, 4);
  ASSERT_FALSE(params[0].identity_geometry());
  augmenter.replay(images_again, again, params);
  EXPECT_TRUE(torch::equal(images, images_again));
  EXPECT_TRUE(torch::equal(t.masks, again.masks));
  EXPECT_TRUE(torch::equal(t.boxes, again.boxes));
  EXPECT_TRUE(torch::equal(t.box_counts, again.box_counts));
  EXPECT_TRUE(torch::equal(t.landmarks, again.landmarks));
  EXPECT_FALSE(torch::equal(t.masks, hand_made().masks));
}

TEST(WarpTargets, WrongShapesAndTypesAreConfigErrorsNamingTheTensor) {
  const auto message = [](augment::TargetTensors t) -> std::string {
    try {
      augment::warp_targets(t, {shifted(0.1), shifted(0.1)}, kSide, kSide);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  augment::TargetTensors t = hand_made();
  t.masks = t.masks.to(torch::kFloat32);
  EXPECT_NE(message(t).find("masks"), std::string::npos);
  t = hand_made();
  t.masks = t.masks.slice(3, 0, 32);
  EXPECT_NE(message(t).find("masks"), std::string::npos);
  t = hand_made();
  t.box_counts = torch::Tensor();
  EXPECT_NE(message(t).find("box_counts"), std::string::npos) << message(t);
  t = hand_made();
  t.box_counts[0] = 3;
  EXPECT_NE(message(t).find("box_counts[0]"), std::string::npos) << message(t);
  t = hand_made();
  t.landmarks = t.landmarks.to(torch::kFloat64);
  EXPECT_NE(message(t).find("landmarks"), std::string::npos) << message(t);
  t = hand_made();
  t.boxes = t.boxes.slice(2, 0, 4);  // the old layout, without the label column
  EXPECT_NE(message(t).find("boxes must be [B,M,5]"), std::string::npos) << message(t);
}

TEST(WarpTargets, ALabelThatIsNotAClassIdIsAFormatErrorNamingTheSample) {
  augment::TargetTensors t = hand_made();
  augment::AppliedParams p = shifted(0.1);
  p.sample_id = 42;
  t.boxes[1][1][4] = 1.5f;
  try {
    augment::warp_targets(t, {shifted(0.1), p}, kSide, kSide);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 42"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("box 1 has label 1.5"), std::string::npos) << e.what();
  }
}

TEST(WarpTargets, AnInt64MaskIdOutsideUint16IsAFormatErrorNamingTheSample) {
  augment::TargetTensors t = hand_made();
  augment::AppliedParams p = shifted(0.1);
  p.sample_id = 77;
  t.masks[0][0][3][3] = 70000;
  try {
    augment::warp_targets(t, {p, p}, kSide, kSide);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("77"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("70000"), std::string::npos) << e.what();
  }
}

TEST(WarpTargets, CudaMasksAreWarpedOnTheHostWithTheSameResult) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  augment::TargetTensors host = hand_made(), device = hand_made();
  device.masks = device.masks.to(torch::kCUDA);
  device.boxes = device.boxes.to(torch::kCUDA);
  augment::AppliedParams p = shifted(0.1);
  p.rotation_degrees = 5;
  augment::warp_targets(host, {p, p}, kSide, kSide);
  augment::warp_targets(device, {p, p}, kSide, kSide);
  EXPECT_TRUE(device.masks.is_cuda());
  EXPECT_TRUE(torch::equal(host.masks, device.masks.cpu()));
  EXPECT_TRUE(torch::equal(host.boxes, device.boxes.cpu()));
}

// The sheet's pixels that targets changed: [n,2] (y, x), with the sheet drawn with them.
std::pair<torch::Tensor, torch::Tensor> drawn(const augment::TargetTensors& targets) {
  augment::AugmentOptions off;
  off.enabled = false;  // every column shows the sample as stored
  augment::Augmenter augmenter(off);
  augment::ContactSheetOptions options;
  options.draws = 1;
  options.tile = kSide;  // one sheet pixel per image pixel
  options.show_params = false;
  const torch::Tensor images = torch::zeros({1, 1, kSide, kSide}, torch::kUInt8);
  const torch::Tensor plain = augment::make_contact_sheet(images, {0}, {"a"}, augmenter, options);
  const torch::Tensor marked = augment::make_contact_sheet(images, {0}, {"a"}, augmenter, targets, options);
  return {plain.ne(marked).any(2).nonzero(), marked};
}

TEST(ContactSheetTargets, MaskOutlinesLieOnTheClassBoundaryInTheClassColour) {
  augment::TargetTensors t;
  t.masks = torch::zeros({1, 1, kSide, kSide}, torch::kInt64);
  t.masks[0][0].slice(0, 10, 30).slice(1, 20, 40).fill_(3);  // 20 x 20: 76 boundary pixels
  const auto [changed, sheet] = drawn(t);
  ASSERT_EQ(changed.size(0), 2 * 76);  // the stored column and the draw
  const auto colour = augment::target_colour(3);
  for (std::int64_t k = 0; k < changed.size(0); ++k) {
    const auto y = changed[k][0].item<std::int64_t>(), x = changed[k][1].item<std::int64_t>();
    for (int c = 0; c < 3; ++c) ASSERT_EQ(sheet[y][x][c].item<std::uint8_t>(), colour[c]) << y << "," << x;
  }
  // The first tile's outline: a 20 x 20 square ring from the topmost-leftmost changed pixel.
  const std::int64_t top = changed.select(1, 0).min().item<std::int64_t>();
  const std::int64_t left = changed.select(1, 1).min().item<std::int64_t>();
  for (std::int64_t d = 0; d < 20; ++d) {
    for (const auto& [y, x] : {std::pair{top, left + d}, std::pair{top + 19, left + d},
                               std::pair{top + d, left}, std::pair{top + d, left + 19}}) {
      EXPECT_EQ(sheet[y][x][0].item<std::uint8_t>(), colour[0]) << y << "," << x;
    }
  }
  EXPECT_EQ(sheet[top + 10][left + 10].sum().item<std::int64_t>(), 0);  // inside: the image
  EXPECT_NE(augment::target_colour(3), augment::target_colour(4));
}

TEST(ContactSheetTargets, BoxesAreRectanglesOnTheirEdgePixels) {
  augment::TargetTensors t;
  t.boxes = torch::tensor({44.f, 40.f, 60.f, 56.f, 5.f}).reshape({1, 1, 5});
  t.box_counts = torch::tensor({1}, torch::kInt64);
  const auto [changed, sheet] = drawn(t);
  ASSERT_EQ(changed.size(0), 2 * 60);  // a 16 x 16 ring per tile
  const auto colour = augment::target_colour(5);
  const std::int64_t top = changed.select(1, 0).min().item<std::int64_t>();
  const std::int64_t left = changed.select(1, 1).min().item<std::int64_t>();
  EXPECT_EQ(sheet[top + 15][left + 15][1].item<std::uint8_t>(), colour[1]);
  EXPECT_EQ(sheet[top + 8][left + 8].sum().item<std::int64_t>(), 0);
}

}  // namespace
