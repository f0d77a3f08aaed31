// An input file's mask, boxes and landmarks checked against its decoded image where the file is
// decoded (annotation.h: a bad target never rejects its image; the kind is marked invalid with the
// problem in the report), and a stage's targets crossing back from a decoder worker.

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "medload/loader/ingest/scanner.h"
#include "test_util.h"
#include "wire_format.h"

namespace medload::loader {
namespace {

using test::has_warning;
using test::TempDir;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A 64 x 48 textured image at dir/img.png, and a SourceFile for it.
SourceFile image_source(const TempDir& dir) {
  test::write_image((dir.path() / "img.png").string(), test::textured(48, 64, CV_8UC1, 3));
  SourceFile source;
  source.path = (dir.path() / "img.png").string();
  source.report_path = "img.png";
  return source;
}

// A label map of `rows` x `cols`: class 2 in a rectangle, 0 elsewhere.
cv::Mat label_map(int rows, int cols, int type, int value = 2) {
  cv::Mat m = cv::Mat::zeros(rows, cols, type);
  m(cv::Rect(10, 5, 20, 15)).setTo(value);
  return m;
}

void set_mask(SourceFile& source, const TempDir& dir, const std::string& name) {
  source.targets.mask_path = (dir.path() / name).string();
  source.targets.mask_report_path = name;
}

FileOutcome decode(const SourceFile& source, std::vector<DecodedImage>& frames) {
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  return decode_file(source, options, frames);
}

TEST(TargetsCheck, AMaskOfTheImagesSizeIsKeptLabelForLabel) {
  TempDir dir("targets_mask");
  SourceFile source = image_source(dir);
  const cv::Mat mask = label_map(48, 64, CV_16UC1, 300);
  test::write_image((dir.path() / "mask.png").string(), mask);
  set_mask(source, dir, "mask.png");
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode(source, frames);
  ASSERT_TRUE(outcome.ok) << outcome.detail;
  ASSERT_TRUE(outcome.targets);
  EXPECT_EQ(outcome.targets->mask, TargetState::kValid) << outcome.targets->mask_problem;
  ASSERT_EQ(frames.size(), 1u);
  const LabelMask& got = frames[0].targets.mask;
  ASSERT_EQ(got.height, 48);
  ASSERT_EQ(got.width, 64);
  for (int r = 0; r < 48; ++r) {
    for (int c = 0; c < 64; ++c)
      ASSERT_EQ(got.labels[r * 64 + c], mask.at<std::uint16_t>(r, c)) << r << "," << c;
  }
  EXPECT_EQ(outcome.to_json().at("targets").at("mask"), "valid");
}

TEST(TargetsCheck, AnAllBackgroundMaskIsANegativeNotABlankFile) {
  TempDir dir("targets_blank_mask");
  SourceFile source = image_source(dir);
  test::write_image((dir.path() / "mask.png").string(), cv::Mat::zeros(48, 64, CV_8UC1));
  set_mask(source, dir, "mask.png");
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode(source, frames);
  ASSERT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.targets->mask, TargetState::kValid) << outcome.targets->mask_problem;
}

// Each bad mask leaves the image ok, the mask invalid with a problem naming what is wrong.
TEST(TargetsCheck, ABadMaskIsInvalidAndTheImageKept) {
  TempDir dir("targets_bad_mask");
  test::write_image((dir.path() / "small.png").string(), label_map(32, 32, CV_8UC1));
  test::write_image((dir.path() / "colour.png").string(), cv::Mat(48, 64, CV_8UC3, cv::Scalar(1, 2, 3)));
  test::write_image((dir.path() / "ids.png").string(), label_map(48, 64, CV_8UC1, 9));
  test::write_bytes((dir.path() / "text.png").string(), "root:x:0:0:root:/root:/bin/bash\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"small.png", "is 32x32 pixels, the image 64x48"},
      {"colour.png", "3 channels"},
      {"ids.png", "not in the class map (ids 0..4): 9"},
      {"text.png", "the content looks like text"},
      {"missing.png", "cannot be read"},
  };
  for (const auto& [name, problem] : cases) {
    SourceFile source = image_source(dir);
    set_mask(source, dir, name);
    source.targets.class_count = 5;
    std::vector<DecodedImage> frames;
    const FileOutcome outcome = decode(source, frames);
    ASSERT_TRUE(outcome.ok) << name << ": " << outcome.detail;
    ASSERT_EQ(frames.size(), 1u) << name;
    ASSERT_TRUE(outcome.targets) << name;
    EXPECT_EQ(outcome.targets->mask, TargetState::kInvalid) << name;
    EXPECT_TRUE(contains(outcome.targets->mask_problem, problem))
        << name << ": " << outcome.targets->mask_problem;
    EXPECT_FALSE(contains(outcome.targets->mask_problem, "root:x")) << "file content copied into the report";
    EXPECT_TRUE(has_warning(outcome, "mask_invalid")) << name;
    EXPECT_EQ(frames[0].targets.mask_state, TargetState::kInvalid) << name;
    EXPECT_TRUE(frames[0].targets.mask.labels.empty()) << name;
  }
}

TEST(TargetsCheck, ABoxPartlyOutsideIsClippedAndCounted) {
  TempDir dir("targets_boxes");
  SourceFile source = image_source(dir);
  source.targets.boxes_given = true;
  source.targets.boxes = {{-5, 10, 20, 30, 1}, {40, 20, 70, 60, 2}, {1, 1, 2, 2, 1}};
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode(source, frames);
  ASSERT_TRUE(outcome.ok);
  ASSERT_EQ(outcome.targets->boxes, TargetState::kValid) << outcome.targets->boxes_problem;
  EXPECT_EQ(outcome.targets->box_count, 3u);
  EXPECT_EQ(outcome.targets->boxes_clipped, 2u);
  EXPECT_TRUE(has_warning(outcome, "boxes_clipped"));
  const std::vector<Box>& b = frames[0].targets.boxes;
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].x0, 0);
  EXPECT_EQ(b[0].x1, 20);
  EXPECT_EQ(b[1].x1, 64);
  EXPECT_EQ(b[1].y1, 48);
  EXPECT_EQ(b[1].label, 2);
}

TEST(TargetsCheck, NoBoxesGivenIsANegativeImage) {
  TempDir dir("targets_negative");
  SourceFile source = image_source(dir);
  source.targets.boxes_given = true;
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode(source, frames);
  ASSERT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.targets->boxes, TargetState::kValid);
  EXPECT_EQ(outcome.targets->box_count, 0u);
  EXPECT_EQ(frames[0].targets.boxes_state, TargetState::kValid);
}

TEST(TargetsCheck, BadBoxesAndLandmarksAreInvalidWhole) {
  TempDir dir("targets_bad_boxes");
  struct Case {
    std::vector<Box> boxes;
    std::vector<Landmark> points;
    std::string problem;
  };
  const double nan = std::nan("");
  const std::vector<Case> cases = {
      {{{100, 100, 120, 120, 1}}, {}, "box 1 lies outside the 64x48 image"},
      {{{1, 1, 5, 5, 1}, {5, 5, 5, 9, 1}}, {}, "box 2 is not a box with an area"},
      {{{nan, 1, 5, 5, 1}}, {}, "box 1 is not a box with an area"},
      {{{1, 1, 5, 5, 0}}, {}, "box 1: label 0 is not a class id"},
      {{{1, 1, 5, 5, 7}}, {}, "label 7 is not in the class map"},
      {{}, {{64, 10, 1}}, "landmark 1 is not a point inside the 64x48 image"},
      {{}, {{3, nan, 1}}, "landmark 1 is not a point inside"},
  };
  for (const Case& c : cases) {
    SourceFile source = image_source(dir);
    source.targets.class_count = 5;
    source.targets.boxes_given = !c.boxes.empty();
    source.targets.boxes = c.boxes;
    source.targets.landmarks_given = !c.points.empty();
    source.targets.landmarks = c.points;
    std::vector<DecodedImage> frames;
    const FileOutcome outcome = decode(source, frames);
    ASSERT_TRUE(outcome.ok) << c.problem;
    const TargetReport& r = *outcome.targets;
    const std::string& problem = c.boxes.empty() ? r.landmarks_problem : r.boxes_problem;
    EXPECT_EQ(c.boxes.empty() ? r.landmarks : r.boxes, TargetState::kInvalid) << c.problem;
    EXPECT_TRUE(contains(problem, c.problem)) << problem;
    EXPECT_EQ(c.boxes.empty() ? frames[0].targets.landmarks_state : frames[0].targets.boxes_state,
              TargetState::kInvalid);
    EXPECT_TRUE(frames[0].targets.boxes.empty());
    EXPECT_TRUE(frames[0].targets.landmarks.empty());
    EXPECT_TRUE(has_warning(outcome, c.boxes.empty() ? "landmarks_invalid" : "boxes_invalid"));
  }
}

TEST(TargetsCheck, AProblemFoundWhenTheManifestWasReadIsReported) {
  TempDir dir("targets_text_problem");
  SourceFile source = image_source(dir);
  source.targets.boxes_problem = "row 2: 4 numbers and a label expected, got 3";
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode(source, frames);
  ASSERT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.targets->boxes, TargetState::kInvalid);
  EXPECT_TRUE(contains(outcome.targets->boxes_problem, "row 2: 4 numbers")) << outcome.targets->boxes_problem;
  const nlohmann::json j = outcome.to_json().at("targets");
  EXPECT_EQ(j.at("boxes"), "invalid");
  EXPECT_TRUE(contains(j.at("boxes_problem").get<std::string>(), "row 2"));
  EXPECT_EQ(j.at("mask"), "none");
}

// A stage's targets (here: the decoded frame's, moved over as they are) cross back from a decoder
// worker with the mask's labels beside the image's bytes, exactly as in process.
TEST(TargetsCheck, AStagesTargetsComeBackFromAWorkerExactly) {
  TempDir dir("targets_worker");
  SourceFile source = image_source(dir);
  const cv::Mat mask = label_map(48, 64, CV_16UC1, 1234);
  test::write_image((dir.path() / "mask.png").string(), mask);
  set_mask(source, dir, "mask.png");
  source.targets.boxes_given = true;
  source.targets.boxes = {{2.5, 3, 10, 12.25, 3}};
  source.targets.landmarks_given = true;
  source.targets.landmarks = {{7, 8.5, 2}};
  const FrameStage stage = [](const DecodedImage& frame) {
    StagedFrame out;
    out.height = frame.height;
    out.width = frame.width;
    out.bytes.assign(std::size_t(frame.height) * std::size_t(frame.width), 7);
    out.targets = frame.targets;
    out.targets.boxes_dropped = 4;
    return out;
  };
  for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    ValidationOptions options;
    options.threads = 1;
    options.isolation = isolation;
    std::vector<StagedFrame> outputs;
    const ScanReport report = Scanner(options).scan_with_stage(
        {source}, stage,
        [&](std::size_t, DecodedImage&&, StagedFrame&& out) { outputs.push_back(std::move(out)); });
    ASSERT_EQ(report.ok_count(), 1u) << report.files[0].detail;
    ASSERT_EQ(outputs.size(), 1u);
    const StagedFrame& out = outputs[0];
    EXPECT_EQ(out.bytes, std::vector<std::uint8_t>(48 * 64, 7)) << "the image's bytes lost or grew";
    ASSERT_EQ(out.targets.mask_state, TargetState::kValid);
    ASSERT_EQ(out.targets.mask.labels.size(), 48u * 64u);
    EXPECT_EQ(out.targets.mask.labels[5 * 64 + 10], 1234);
    EXPECT_EQ(out.targets.mask.labels[0], 0);
    ASSERT_EQ(out.targets.boxes.size(), 1u);
    EXPECT_EQ(out.targets.boxes[0].y1, 12.25);
    EXPECT_EQ(out.targets.boxes[0].label, 3);
    EXPECT_EQ(out.targets.boxes_dropped, 4u);
    ASSERT_EQ(out.targets.landmarks.size(), 1u);
    EXPECT_EQ(out.targets.landmarks[0].y, 8.5);
    ASSERT_TRUE(report.files[0].targets);
    EXPECT_EQ(report.files[0].targets->box_count, 1u);
  }
}

TEST(TargetsCheck, AWorkerReplyWhoseMaskIsNotTheOutputsSizeIsAWireError) {
  detail::wire::Reply reply;
  reply.outcome.ok = true;
  detail::wire::FrameHeader h;
  h.frame.height = 4;
  h.frame.width = 4;
  StagedFrame staged;
  staged.height = 4;
  staged.width = 4;
  staged.targets.mask_state = TargetState::kValid;
  staged.targets.mask.height = 4;
  staged.targets.mask.width = 5;
  h.staged = staged;
  h.bytes = 16 + 40;
  reply.frames.push_back(h);
  const std::string text = detail::wire::encode(reply);
  try {
    detail::wire::decode_reply(std::vector<char>(text.begin(), text.end()), ValidationOptions{});
    ADD_FAILURE() << "accepted";
  } catch (const detail::wire::WireError& e) {
    EXPECT_TRUE(contains(e.what(), "5x4 mask for a 4x4 output")) << e.what();
  }
  // A mask that claims more bytes than the payload has.
  reply.frames[0].staged->targets.mask.width = 4;
  reply.frames[0].bytes = 20;
  const std::string short_text = detail::wire::encode(reply);
  EXPECT_THROW(detail::wire::decode_reply(std::vector<char>(short_text.begin(), short_text.end()),
                                          ValidationOptions{}),
               detail::wire::WireError);
  // A state past the last, and a box with no area.
  std::string bad = text;
  const auto at = bad.find("\"mask\":1");
  ASSERT_NE(at, std::string::npos) << bad;
  bad.replace(at, 8, "\"mask\":9");
  EXPECT_THROW(detail::wire::decode_reply(std::vector<char>(bad.begin(), bad.end()), ValidationOptions{}),
               detail::wire::WireError);
}

}  // namespace
}  // namespace medload::loader
