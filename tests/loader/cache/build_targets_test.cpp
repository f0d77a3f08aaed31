// Masks, boxes and landmarks through a whole build: read from the manifest and the annotations
// CSV, checked in the decoder workers, moved with their image's geometry, stored in /targets and
// read back exactly where preprocessing put their image.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "medload/core/error.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/pseudonym_key.h"
#include "medload/loader/preprocess/targets.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

constexpr int kWidth = 96, kHeight = 80;

BuildOptions target_options(const std::string& root, const std::string& output) {
  BuildOptions options;
  options.root = root;
  options.manifest = root + "/manifest.csv";
  options.output = output;
  options.threads = 2;
  options.progress = ProgressStyle::kQuiet;
  options.config.preprocess.letterbox.size = 48;
  return options;
}

// The label map of image `i`: class 1 in one rectangle, class 2 in another, both moving with i.
LabelMask label_map(int i) {
  LabelMask mask{kHeight, kWidth, std::vector<std::uint16_t>(kWidth * kHeight, 0)};
  for (int r = 10 + i; r < 40 + i; ++r) {
    for (int c = 20; c < 50 + 2 * i; ++c) mask.labels[r * kWidth + c] = 1;
  }
  for (int r = 50; r < 70; ++r) {
    for (int c = 60 - i; c < 90; ++c) mask.labels[r * kWidth + c] = 2;
  }
  return mask;
}

void write_mask(const std::string& path, const LabelMask& mask) {
  cv::Mat m(mask.height, mask.width, CV_16UC1, const_cast<std::uint16_t*>(mask.labels.data()));
  ASSERT_TRUE(cv::imwrite(path, m));
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<Box> boxes_of(int i) {
  return {{20, 10.0 + i, 50.0 + 2 * i, 40.0 + i, 1}, {60.0 - i, 50, 90, 70, 2}};
}

std::string boxes_json(int i) {
  std::string text = "\"[";
  for (const Box& b : boxes_of(i)) {
    text += (text.size() > 2 ? "," : "") + std::string("[") + std::to_string(b.x0) + "," +
            std::to_string(b.y0) + "," + std::to_string(b.x1) + "," + std::to_string(b.y1) + "," +
            std::to_string(b.label) + "]";
  }
  return text + "]\"";
}

// Four images with masks, boxes and landmarks; image 3's boxes have a problem (a box with no area).
void write_dataset(const std::string& root) {
  std::string manifest = "path,label,patient_id,mask,boxes,landmarks\n";
  for (int i = 0; i < 4; ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    test::write_png(root + "/" + name, i + 1, kWidth, kHeight);
    write_mask(root + "/mask" + std::to_string(i) + ".png", label_map(i));
    const std::string boxes = i == 3 ? "\"[[5,5,5,9,1]]\"" : boxes_json(i);
    manifest += name + ",c" + std::to_string(i % 2) + ",p" + std::to_string(i) + ",mask" + std::to_string(i) +
                ".png," + boxes + ",\"[[30.5,20.5,1],[70,60,2]]\"\n";
  }
  write_text(root + "/manifest.csv", manifest);
  write_text(root + "/classes.json", R"({"1": "lesion", "2": "organ"})");
}

TEST(BuildTargets, MasksBoxesAndLandmarksLandWhereTheirImageWent) {
  TempDir dir("build_targets");
  const std::string root = dir.path().string();
  write_dataset(root);
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.target_classes = root + "/classes.json";
  const BuildResult result = build_cache(options);
  ASSERT_EQ(result.images, 4u);
  EXPECT_EQ(result.targets.masks[1], 4u);
  EXPECT_EQ(result.targets.boxes[1], 3u);
  EXPECT_EQ(result.targets.boxes[2], 1u);

  const CacheReader reader(root + "/cache.h5");
  ASSERT_TRUE(reader.has_masks());
  EXPECT_EQ(reader.target_classes().names, (std::vector<std::string>{"background", "lesion", "organ"}));
  std::vector<std::uint16_t> mask(static_cast<std::size_t>(reader.height() * reader.width()));
  for (std::size_t i = 0; i < reader.size(); ++i) {
    const Geometry g = reader.geometry(i);
    const int k = std::stoi(reader.source_paths()[i].substr(3, 1));
    reader.read_mask(i, mask.data());
    EXPECT_EQ(mask, mask_to_output(label_map(k), g).labels) << "image " << k;
    const std::vector<Box> boxes = reader.boxes(i);
    if (k == 3) {
      EXPECT_EQ(reader.box_states()[i], TargetState::kInvalid);
      EXPECT_TRUE(boxes.empty());
    } else {
      const MappedBoxes expected = boxes_to_output(boxes_of(k), g, kMinVisibleBoxArea);
      ASSERT_EQ(boxes.size(), expected.boxes.size()) << "image " << k;
      for (std::size_t b = 0; b < boxes.size(); ++b) {
        EXPECT_NEAR(boxes[b].x0, expected.boxes[b].x0, 1e-9);
        EXPECT_NEAR(boxes[b].y1, expected.boxes[b].y1, 1e-9);
        EXPECT_EQ(boxes[b].label, expected.boxes[b].label);
      }
    }
    const std::vector<Landmark> points = reader.landmarks(i);
    const MappedLandmarks expected = landmarks_to_output({{30.5, 20.5, 1}, {70, 60, 2}}, g);
    ASSERT_EQ(points.size(), expected.points.size());
    EXPECT_NEAR(points[0].x, expected.points[0].x, 1e-9);
    EXPECT_EQ(points[1].label, 2);
  }
  const nlohmann::json& files = result.report.at("files");
  const auto bad = std::find_if(files.begin(), files.end(),
                                [](const nlohmann::json& f) { return f["path"] == "img3.png"; });
  ASSERT_NE(bad, files.end());
  EXPECT_EQ(bad->at("status"), "ok");
  EXPECT_EQ(bad->at("targets").at("boxes"), "invalid");
  EXPECT_EQ(result.report.at("targets").at("boxes").at("invalid"), 1);
}

// A file with targets is decoded again by an incremental build: its hash covers the image, not
// the mask, so a reused file could keep an old mask.
TEST(BuildTargets, AChangedMaskReachesTheNextBuild) {
  TempDir dir("build_targets_again");
  const std::string root = dir.path().string();
  write_dataset(root);
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.target_classes = root + "/classes.json";
  options.config.validate.isolation = Isolation::kInProcess;
  build_cache(options);
  LabelMask changed = label_map(0);
  std::fill(changed.labels.begin(), changed.labels.end(), 2);
  write_mask(root + "/mask0.png", changed);
  const BuildResult again = build_cache(options);
  EXPECT_EQ(again.reused_files, 0u);
  const CacheReader reader(root + "/cache.h5");
  std::vector<std::uint16_t> mask(static_cast<std::size_t>(reader.height() * reader.width()));
  reader.read_mask(0, mask.data());
  EXPECT_EQ(mask, mask_to_output(changed, reader.geometry(0)).labels);
}

TEST(BuildTargets, AnAnnotationsCsvGivesBoxesAndNegatives) {
  TempDir dir("build_targets_csv");
  const std::string root = dir.path().string();
  std::string manifest = "path,label\n";
  for (int i = 0; i < 3; ++i) {
    test::write_png(root + "/img" + std::to_string(i) + ".png", i + 1, kWidth, kHeight);
    manifest += "img" + std::to_string(i) + ".png,c\n";
  }
  write_text(root + "/manifest.csv", manifest);
  write_text(root + "/boxes.csv",
             "path,x,y,width,height,label\nimg0.png,10,10,20,20,nodule\nimg0.png,50,40,10,10,nodule\n"
             "img2.png,5,5,30,30,mass\ngone.png,1,1,2,2,mass\n");
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.annotations = root + "/boxes.csv";
  options.config.validate.isolation = Isolation::kInProcess;
  const BuildResult result = build_cache(options);
  EXPECT_EQ(result.annotations.unmatched_rows, 1u);
  const CacheReader reader(root + "/cache.h5");
  EXPECT_FALSE(reader.has_masks());
  EXPECT_EQ(reader.target_classes().names, (std::vector<std::string>{"background", "mass", "nodule"}));
  ASSERT_EQ(reader.size(), 3u);
  EXPECT_EQ(reader.boxes(0).size(), 2u);
  EXPECT_EQ(reader.boxes(0)[0].label, 2);
  EXPECT_EQ(reader.box_states()[1], TargetState::kValid) << "an image without a row is a negative";
  EXPECT_TRUE(reader.boxes(1).empty());
  EXPECT_EQ(reader.boxes(2)[0].label, 1);
  EXPECT_EQ(result.report.at("annotations").at("unmatched_rows"), 1);
}

TEST(BuildTargets, WithoutAClassMapMaskIdsNameThemselves) {
  TempDir dir("build_targets_ids");
  const std::string root = dir.path().string();
  write_dataset(root);
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.config.validate.isolation = Isolation::kInProcess;
  build_cache(options);
  const CacheReader reader(root + "/cache.h5");
  EXPECT_EQ(reader.target_classes().names, (std::vector<std::string>{"background", "1", "2"}));
}

// A shared build's report names no mask by its path: a mask's name is as telling as its image's.
TEST(BuildTargets, ASharedReportNamesMasksByTokensOnly) {
  TempDir dir("build_targets_share");
  const std::string root = dir.path().string();
  test::write_png(root + "/Doe_John.png", 1, kWidth, kHeight);
  write_mask(root + "/Doe_John_mask.png", LabelMask{40, 40, std::vector<std::uint16_t>(1600, 1)});
  write_text(root + "/manifest.csv", "path,label,mask\nDoe_John.png,a,Doe_John_mask.png\n");
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.config.validate.isolation = Isolation::kInProcess;
  std::vector<std::uint8_t> key(32);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 37 + 11);
  options.privacy.key = PseudonymKey::from_bytes(key);
  options.privacy.share = true;
  const BuildResult result = build_cache(options);
  const std::string report = result.report.dump();
  EXPECT_NE(report.find("is 40x40 pixels, the image 96x80"), std::string::npos) << report;
  EXPECT_EQ(report.find("Doe_John"), std::string::npos) << report;
}

// A cache built without targets is as before: no /targets, every state none.
TEST(BuildTargets, ACacheWithoutTargetsHasNone) {
  TempDir dir("build_targets_none");
  const std::string root = dir.path().string();
  test::write_tree(root, {"a", "b"}, 2);
  BuildOptions options = target_options(root, root + "/cache.h5");
  options.manifest.reset();
  options.config.validate.isolation = Isolation::kInProcess;
  const BuildResult result = build_cache(options);
  EXPECT_FALSE(result.report.contains("targets"));
  const CacheReader reader(root + "/cache.h5");
  EXPECT_FALSE(reader.has_targets());
  EXPECT_FALSE(reader.has_masks());
  EXPECT_EQ(reader.mask_states(), std::vector<TargetState>(reader.size(), TargetState::kNone));
  EXPECT_THROW(reader.read_mask(0, nullptr), FormatError);
}

}  // namespace
}  // namespace medload::loader
