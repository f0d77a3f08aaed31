// Targets in the cache (schema version 2): masks, boxes and landmarks written as a build writes
// them read back exactly; caches without targets and schema version 1 caches open as before with
// every state kNone; the writer refuses what the reader would; merge carries targets; inspect
// counts them and verifies the masks.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cache_writer.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload_test/command.h"
#include "schema.h"
#include "target_cache.h"
#include "test_util.h"

namespace medload::loader {
namespace {

namespace fs = std::filesystem;
using test::frame_targets;
using test::kTargetHeight;
using test::kTargetImages;
using test::kTargetWidth;
using test::mask_of;
using test::TargetCacheOptions;
using test::TempDir;
using test::write_target_cache;

constexpr std::size_t kMaskValues = static_cast<std::size_t>(kTargetHeight * kTargetWidth);

void expect_same_boxes(const std::vector<Box>& got, const std::vector<Box>& expected,
                       const std::string& where) {
  ASSERT_EQ(got.size(), expected.size()) << where;
  for (std::size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].x0, expected[k].x0) << where << " box " << k;
    EXPECT_EQ(got[k].y0, expected[k].y0) << where << " box " << k;
    EXPECT_EQ(got[k].x1, expected[k].x1) << where << " box " << k;
    EXPECT_EQ(got[k].y1, expected[k].y1) << where << " box " << k;
    EXPECT_EQ(got[k].label, expected[k].label) << where << " box " << k;
  }
}

void expect_same_landmarks(const std::vector<Landmark>& got, const std::vector<Landmark>& expected,
                           const std::string& where) {
  ASSERT_EQ(got.size(), expected.size()) << where;
  for (std::size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].x, expected[k].x) << where << " landmark " << k;
    EXPECT_EQ(got[k].y, expected[k].y) << where << " landmark " << k;
    EXPECT_EQ(got[k].label, expected[k].label) << where << " landmark " << k;
  }
}

// Image `index` of `reader` holds frame_targets(source, seed): states, boxes, landmarks, dropped
// counts and (valid) the mask; a mask that is not valid reads as zeros.
void expect_targets_of(const CacheReader& reader, std::size_t index, std::size_t source, int seed) {
  const FrameTargets expected = frame_targets(source, seed);
  const std::string where = reader.path() + " image " + std::to_string(index);
  EXPECT_EQ(reader.mask_state(index), expected.mask_state) << where;
  EXPECT_EQ(reader.box_states()[index], expected.boxes_state) << where;
  EXPECT_EQ(reader.landmark_states()[index], expected.landmarks_state) << where;
  expect_same_boxes(reader.boxes(index), expected.boxes, where);
  expect_same_landmarks(reader.landmarks(index), expected.landmarks, where);
  EXPECT_EQ(reader.boxes_dropped()[index], expected.boxes_dropped) << where;
  EXPECT_EQ(reader.landmarks_dropped()[index], expected.landmarks_dropped) << where;
  std::vector<std::uint16_t> mask(kMaskValues, 7);
  reader.read_mask(index, mask.data());
  const std::vector<std::uint16_t> zeros(kMaskValues, 0);
  EXPECT_EQ(mask, expected.mask_state == TargetState::kValid ? mask_of(source, seed) : zeros) << where;
}

std::string format_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no FormatError";
}

}  // namespace

TEST(TargetsCache, MasksBoxesLandmarksStatesAndClassesReadBackExactly) {
  for (const int deflate : {0, 4}) {
    TempDir dir;
    const std::string path = dir.path("targets.h5");
    TargetCacheOptions options;
    options.deflate = deflate;
    write_target_cache(path, options);
    const CacheReader reader(path);
    EXPECT_EQ(reader.schema_version(), 2);
    ASSERT_TRUE(reader.has_targets());
    ASSERT_TRUE(reader.has_masks());
    EXPECT_EQ(reader.target_classes().names, test::target_class_names());
    EXPECT_EQ(reader.box_count(), 4u);
    EXPECT_EQ(reader.landmark_count(), 3u);
    for (std::size_t i = 0; i < kTargetImages; ++i) expect_targets_of(reader, i, i, 0);
    EXPECT_THROW(reader.read_mask(kTargetImages, nullptr), std::out_of_range);
    EXPECT_THROW(reader.boxes(kTargetImages), std::out_of_range);
    EXPECT_THROW(reader.mask_state(kTargetImages), std::out_of_range);
  }
}

TEST(TargetsCache, MasksAreDeflatedOneChunkPerImageAndReadFromManyThreads) {
  TempDir dir;
  const std::string path = dir.path("targets.h5");
  write_target_cache(path);
  {
    const h5::File file = h5::File::open(path);
    const h5::Dataset masks = h5::open_dataset(file.id(), schema::kMasks);
    h5::PropList create(H5Dget_create_plist(masks.id()));
    ASSERT_EQ(H5Pget_layout(create.id()), H5D_CHUNKED);
    hsize_t chunk[3] = {0, 0, 0};
    H5Pget_chunk(create.id(), 3, chunk);
    EXPECT_EQ(chunk[0], 1u);
    EXPECT_EQ(chunk[1], static_cast<hsize_t>(kTargetHeight));
    EXPECT_EQ(chunk[2], static_cast<hsize_t>(kTargetWidth));
    ASSERT_EQ(H5Pget_nfilters(create.id()), 1);
    unsigned flags = 0;
    std::size_t values = 0;
    EXPECT_EQ(H5Pget_filter2(create.id(), 0, &flags, &values, nullptr, 0, nullptr, nullptr),
              H5Z_FILTER_DEFLATE);
    // Masks that are not valid were never written: they take no space.
    EXPECT_LT(H5Dget_storage_size(masks.id()), 3 * kMaskValues * 2);
  }
  const CacheReader reader(path);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::uint16_t> mask(kMaskValues);
      for (int round = 0; round < 50; ++round) {
        for (const std::size_t i : {0u, 3u, 5u}) {
          reader.read_mask(i, mask.data());
          if (mask != mask_of(i)) ++wrong[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

TEST(TargetsCache, ACacheBuiltWithoutTargetsHasNoTargetsGroupAndEveryStateNone) {
  TempDir dir;
  const std::string path = dir.path("plain.h5");
  TargetCacheOptions options;
  options.targets = false;
  write_target_cache(path, options);
  EXPECT_FALSE(h5::exists(h5::File::open(path).id(), schema::kTargets));
  const CacheReader reader(path);
  EXPECT_EQ(reader.schema_version(), schema::kTargetsSchemaVersion);  // no unknown labels: version 2
  EXPECT_FALSE(reader.has_targets());
  EXPECT_FALSE(reader.has_masks());
  EXPECT_EQ(reader.mask_states(), std::vector<TargetState>(kTargetImages, TargetState::kNone));
  EXPECT_EQ(reader.box_states(), std::vector<TargetState>(kTargetImages, TargetState::kNone));
  EXPECT_EQ(reader.landmark_states(), std::vector<TargetState>(kTargetImages, TargetState::kNone));
  EXPECT_EQ(reader.boxes_dropped(), std::vector<std::uint32_t>(kTargetImages, 0));
  EXPECT_TRUE(reader.target_classes().names.empty());
  std::vector<std::uint16_t> mask(kMaskValues);
  const std::string message = format_error_of([&] { reader.read_mask(0, mask.data()); });
  EXPECT_NE(message.find(path + " has no masks (built without a mask column"), std::string::npos) << message;
  EXPECT_NE(format_error_of([&] { reader.boxes(0); }).find("has no boxes"), std::string::npos);
  EXPECT_NE(format_error_of([&] { reader.landmarks(0); }).find("has no landmarks"), std::string::npos);
}

TEST(TargetsCache, BoxesWithoutMasksMakeTargetsWithoutAMasksDataset) {
  TempDir dir;
  const std::string path = dir.path("boxes.h5");
  TargetCacheOptions options;
  options.masks = false;
  write_target_cache(path, options);
  const CacheReader reader(path);
  EXPECT_TRUE(reader.has_targets());
  EXPECT_FALSE(reader.has_masks());
  EXPECT_EQ(std::count(reader.mask_states().begin(), reader.mask_states().end(), TargetState::kValid), 0);
  expect_same_boxes(reader.boxes(0), frame_targets(0).boxes, "image 0");
  std::vector<std::uint16_t> mask(kMaskValues);
  EXPECT_NE(format_error_of([&] { reader.read_mask(0, mask.data()); }).find("has no masks"),
            std::string::npos);
}

TEST(TargetsCache, ASchemaVersion1CacheOpensAsBeforeAndSaysItWasBuiltBeforeTargets) {
  TempDir dir;
  const std::string path = dir.path("v1.h5");
  TargetCacheOptions options;
  options.targets = false;
  write_target_cache(path, options);
  h5::write_attribute(h5::File::open(path, true).id(), schema::kSchemaVersion, std::int64_t{1});
  const CacheReader reader(path);
  EXPECT_EQ(reader.schema_version(), 1);
  EXPECT_EQ(reader.size(), kTargetImages);
  EXPECT_FALSE(reader.has_targets());
  EXPECT_EQ(reader.mask_states(), std::vector<TargetState>(kTargetImages, TargetState::kNone));
  std::vector<std::uint16_t> mask(kMaskValues);
  const std::string message = format_error_of([&] { reader.read_mask(0, mask.data()); });
  EXPECT_NE(
      message.find(path +
                   " has no masks (schema version 1, built before targets; rebuild it with a mask column)"),
      std::string::npos)
      << message;
  EXPECT_NE(format_error_of([&] { reader.boxes(1); }).find("schema version 1"), std::string::npos);
  // A version 1 cache's /targets, whatever it holds, is not read: version 1 has no targets.
  const std::string relabelled = dir.path("v1_with_group.h5");
  write_target_cache(relabelled);
  h5::write_attribute(h5::File::open(relabelled, true).id(), schema::kSchemaVersion, std::int64_t{1});
  EXPECT_FALSE(CacheReader(relabelled).has_targets());
  EXPECT_FALSE(CacheReader(relabelled).has_masks());
}

TEST(TargetsCache, TheWriterRefusesMasksThatDoNotMatchTheirStates) {
  TempDir dir;
  detail::CacheHeader header;
  header.count = 2;
  header.height = kTargetHeight;
  header.width = kTargetWidth;
  header.masks = true;
  const auto columns_with = [](TargetState first) {
    detail::CacheColumns columns;
    for (std::size_t i = 0; i < 2; ++i) {
      const std::vector<std::uint8_t> image = test::image_of(i);
      columns.labels.push_back(0);
      columns.patient_ids.push_back("");
      columns.source_paths.push_back("x");
      columns.source_hashes.push_back("");
      columns.sites.push_back("");
      columns.frame_indices.push_back(0);
      columns.source_indices.push_back(0);
      columns.pixel_hashes.push_back(i);
      columns.checksums.push_back(0);
      columns.geometry.push_back({});
      FrameTargets targets;
      targets.mask_state = i == 0 ? first : TargetState::kNone;
      detail::append_targets(columns.targets, targets);
    }
    columns.targets.classes = test::target_class_names();
    return columns;
  };
  const auto write = [&](const std::string& name, TargetState first, bool write_mask) {
    detail::CacheWriter writer(dir.path(name), header);
    for (std::size_t i = 0; i < 2; ++i) {
      const auto image = test::image_of(i);
      writer.write_image(i, image.data(), image.size());
    }
    if (write_mask) {
      const auto mask = mask_of(0);
      const auto packed = detail::deflate_chunk(mask.data(), writer.mask_bytes(), writer.mask_deflate());
      writer.write_mask(0, packed.data(), packed.size());
    }
    writer.finish(columns_with(first), {}, {"a"}, "{}", "0", nlohmann::json::object());
  };
  EXPECT_NO_THROW(write("ok.h5", TargetState::kValid, true));
  EXPECT_NE(format_error_of([&] {
              write("unwritten.h5", TargetState::kValid, false);
            }).find("image 0's mask is marked valid but was not written"),
            std::string::npos);
  EXPECT_NE(format_error_of([&] {
              write("unmarked.h5", TargetState::kInvalid, true);
            }).find("image 0's mask is written but not marked valid"),
            std::string::npos);
  header.masks = false;
  detail::CacheWriter plain(dir.path("plain.h5"), header);
  EXPECT_THROW(plain.write_mask(0, "x", 1), std::logic_error);
}

TEST(TargetsCache, TheWriterRefusesTargetTablesTheReaderWouldRefuse) {
  TempDir dir;
  const auto refused = [&](const std::function<void(detail::TargetColumns&)>& damage) {
    detail::TargetColumns targets;
    for (std::size_t i = 0; i < 3; ++i) {
      FrameTargets t = frame_targets(i);
      t.mask_state = TargetState::kNone;
      detail::append_targets(targets, t);
    }
    targets.classes = test::target_class_names();
    damage(targets);
    h5::File file = h5::File::create(dir.path("t.h5"));
    return format_error_of([&] {
      schema::write_targets(file.id(), targets, 3, kTargetHeight, kTargetWidth, /*has_masks=*/false);
    });
  };
  EXPECT_EQ(refused([](auto&) {}), "no FormatError");
  EXPECT_NE(
      refused([](auto& t) { t.boxes[2] = 16.5; }).find("/targets/boxes row 0 (image 0) is (1, 2, 16.5, 6.5)"),
      std::string::npos);
  EXPECT_NE(refused([](auto& t) { t.box_labels[1] = 4; }).find("/targets/box_labels holds 4 for row 1"),
            std::string::npos);
  EXPECT_NE(refused([](auto& t) {
              t.mask_states[2] = 1;
            }).find("/targets/mask_state marks the mask of image 2 valid but there is no /targets/masks"),
            std::string::npos);
  EXPECT_NE(
      refused([](auto& t) { t.box_states.pop_back(); }).find("/targets/box_state has 2 entries for 3 images"),
      std::string::npos);
  EXPECT_NE(refused([](auto& t) { t.box_states[0] = 2; }).find("/targets/box_offsets gives image 0 2 rows"),
            std::string::npos);
}

TEST(TargetsCache, AppendTargetsKeepsOnlyTheValidKindsRowsAndCountsDropped) {
  detail::TargetColumns columns;
  FrameTargets t;
  t.boxes_state = TargetState::kInvalid;
  t.boxes = {{0, 0, 1, 1, 1}};  // an invalid kind's contents are not stored
  t.landmarks_state = TargetState::kValid;
  t.landmarks = {{1, 2, 1}, {3, 4, 2}};
  t.boxes_dropped = 5;
  detail::append_targets(columns, t);
  detail::append_targets(columns, FrameTargets{});
  EXPECT_EQ(columns.rows(), 2u);
  EXPECT_EQ(columns.box_offsets, (std::vector<std::uint64_t>{0, 0, 0}));
  EXPECT_EQ(columns.landmark_offsets, (std::vector<std::uint64_t>{0, 2, 2}));
  EXPECT_EQ(columns.landmarks, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(columns.landmark_labels, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(columns.box_states, (std::vector<std::uint8_t>{2, 0}));
  EXPECT_EQ(columns.boxes_dropped, (std::vector<std::uint32_t>{5, 0}));
  EXPECT_TRUE(columns.any());
  detail::TargetColumns none;
  detail::append_targets(none, FrameTargets{});
  EXPECT_FALSE(none.any());
}

namespace {

MergeOptions merge_options(const TempDir& dir, std::vector<std::string> inputs) {
  MergeOptions options;
  options.inputs = std::move(inputs);
  options.output = dir.path("merged.h5");
  options.progress = ProgressStyle::kQuiet;
  return options;
}

}  // namespace

TEST(TargetsCache, MergingCachesWithTargetsConcatenatesThem) {
  TempDir dir;
  const std::string a = dir.path("a.h5"), b = dir.path("b.h5");
  write_target_cache(a);
  TargetCacheOptions second;
  second.seed = 1;
  second.deflate = 3;
  write_target_cache(b, second);
  MergeOptions options = merge_options(dir, {a, b});
  options.deflate = 2;
  ASSERT_EQ(merge_caches(options).images, 2 * kTargetImages);
  const CacheReader merged(options.output);
  ASSERT_TRUE(merged.has_masks());
  EXPECT_EQ(merged.target_classes().names, test::target_class_names());
  EXPECT_EQ(merged.box_count(), 8u);
  EXPECT_EQ(merged.landmark_count(), 6u);
  for (std::size_t i = 0; i < kTargetImages; ++i) {
    expect_targets_of(merged, i, i, 0);
    expect_targets_of(merged, kTargetImages + i, i, 1);
  }
}

TEST(TargetsCache, MergingWithACacheWithoutTargetsGivesItsImagesNoTargets) {
  TempDir dir;
  const std::string plain = dir.path("plain.h5"), targets = dir.path("targets.h5");
  TargetCacheOptions without;
  without.targets = false;
  write_target_cache(plain, without);
  TargetCacheOptions with;
  with.seed = 1;
  write_target_cache(targets, with);
  const MergeOptions options = merge_options(dir, {plain, targets});
  merge_caches(options);
  const CacheReader merged(options.output);
  ASSERT_TRUE(merged.has_targets());
  for (std::size_t i = 0; i < kTargetImages; ++i) {
    EXPECT_EQ(merged.mask_states()[i], TargetState::kNone);
    EXPECT_EQ(merged.box_states()[i], TargetState::kNone);
    EXPECT_EQ(merged.landmark_states()[i], TargetState::kNone);
    EXPECT_TRUE(merged.boxes(i).empty());
    expect_targets_of(merged, kTargetImages + i, i, 1);
  }
  // Two caches without targets merge into one without.
  TargetCacheOptions other = without;
  other.seed = 2;
  write_target_cache(dir.path("plain2.h5"), other);
  MergeOptions plain_only = merge_options(dir, {plain, dir.path("plain2.h5")});
  plain_only.output = dir.path("plain_merged.h5");
  merge_caches(plain_only);
  EXPECT_FALSE(CacheReader(plain_only.output).has_targets());
}

TEST(TargetsCache, MergingCachesWithDifferentTargetClassesNamesBothFiles) {
  TempDir dir;
  const std::string a = dir.path("a.h5"), b = dir.path("b.h5");
  write_target_cache(a);
  TargetCacheOptions other;
  other.seed = 1;
  other.classes = {"background", "liver", "spleen", "vessel"};
  write_target_cache(b, other);
  const MergeOptions options = merge_options(dir, {a, b});
  const std::string message = format_error_of([&] { merge_caches(options); });
  EXPECT_NE(message.find("cannot merge " + b + " with " + a + ": their target classes differ"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("spleen"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(options.output));
}

TEST(TargetsCache, InspectCountsTargetsAndVerifiesEveryValidMask) {
  TempDir dir;
  const std::string path = dir.path("targets.h5");
  write_target_cache(path);
  InspectOptions options;
  options.verify = true;
  const nlohmann::json summary = inspect_cache(path, options);
  const auto& t = summary["targets"];
  EXPECT_EQ(t["classes"], nlohmann::json(test::target_class_names()));
  EXPECT_EQ(t["masks"], (nlohmann::json{{"valid", 3}, {"invalid", 1}, {"none", 2}, {"stored", true}}));
  EXPECT_EQ(t["boxes"],
            (nlohmann::json{{"valid", 4}, {"invalid", 1}, {"none", 1}, {"count", 4}, {"dropped", 3}}));
  EXPECT_EQ(t["landmarks"],
            (nlohmann::json{{"valid", 3}, {"invalid", 1}, {"none", 2}, {"count", 3}, {"dropped", 1}}));
  EXPECT_EQ(summary["verify"]["masks"]["checked"], 3);
  EXPECT_EQ(summary["verify"]["masks"]["failed"], 0);
  TargetCacheOptions without;
  without.targets = false;
  write_target_cache(dir.path("plain.h5"), without);
  const nlohmann::json plain = inspect_cache(dir.path("plain.h5"), options);
  EXPECT_FALSE(plain.contains("targets"));
  EXPECT_FALSE(plain["verify"].contains("masks"));

  const auto printed = medload::test::run_medload("inspect " + path + " --verify", false);
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("targets: classes 0=background, 1=liver, 2=tumour, 3=vessel"),
            std::string::npos)
      << printed.output;
  EXPECT_NE(printed.output.find("masks: valid 3, invalid 1, none 2"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find("boxes: valid 4, invalid 1, none 1 (4 stored, 3 dropped by preprocessing)"),
            std::string::npos)
      << printed.output;
  EXPECT_NE(printed.output.find("verify: 3 masks checked, 0 failed"), std::string::npos) << printed.output;
}

}  // namespace medload::loader
