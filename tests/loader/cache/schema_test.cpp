// The cache schema's write side: what each typed write_* function writes, its read_* counterpart
// reads back unchanged, and the split table written through the cache library's public header
// is what the reading checks (read_split_core) accept.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/version.h"
#include "medload/loader/cache/split_table.h"
#include "schema.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;

constexpr std::size_t kCount = 4;

// A file with /images of kCount 8x8 uint8 images (never written: the tables are under test).
void create_file_with_images(const std::string& path) {
  h5::File file = h5::File::create(path);
  detail::CacheHeader header;
  header.count = kCount;
  header.height = 8;
  header.width = 8;
  schema::create_images(file.id(), header);
  file.close();
}

Geometry geometry(int i) {
  Geometry g;
  g.original_height = 100 + i;
  g.original_width = 200 + i;
  g.crop_x = i;
  g.crop_y = 2 * i;
  g.crop_w = 90 - i;
  g.crop_h = 80 - i;
  g.scale = 0.25 * (i + 1);
  g.pad_top = 3 * i;
  g.pad_left = 4 * i;
  g.pad_bottom = 5 * i;
  g.pad_right = 6 * i;
  return g;
}

MetaColumn numeric_column() {
  MetaColumn age;
  age.name = "age";
  age.numeric = true;
  age.values = {31.0, 47.5, 47.5, 60.0};
  age.imputed = {0, 1, 0, 0};
  return age;
}

MetaColumn text_column() {
  MetaColumn sex;
  sex.name = "sex";
  sex.text = {"F", "M", "", "F"};
  sex.imputed = {0, 0, 1, 0};
  return sex;
}

SplitTable split_table() {
  SplitTable split;
  split.name = "default";
  split.kind = "parts";
  split.part = {0, 1, 2, 0};
  split.parts = 3;
  split.seed = 18446744073709551615u;  // every bit of a uint64 survives
  split.ratios = {0.5, 0.25, 0.25};
  split.patient_set_hash = "0123456789abcdef";
  split.patients = 3;
  split.samples_without_patient = 1;
  split.class_counts = {{1, 1, 0}, {0, 1, 0}, {1, 0, 0}};
  split.sample_counts = {2, 1, 1};
  split.patient_counts = {2, 1, 1};
  split.mean = {0.375};
  split.std = {0.125};
  return split;
}

void expect_same_split(const SplitTable& a, const SplitTable& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.part, b.part);
  EXPECT_EQ(a.parts, b.parts);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.ratios, b.ratios);
  EXPECT_EQ(a.patient_set_hash, b.patient_set_hash);
  EXPECT_EQ(a.patients, b.patients);
  EXPECT_EQ(a.samples_without_patient, b.samples_without_patient);
  EXPECT_EQ(a.class_counts, b.class_counts);
  EXPECT_EQ(a.sample_counts, b.sample_counts);
  EXPECT_EQ(a.patient_counts, b.patient_counts);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
}

TEST(Schema, EachWrittenTableReadsBackAsWritten) {
  TempDir dir;
  const std::string path = dir.path("tables.h5");
  const std::vector<std::int64_t> labels{0, 1, -1, 1};
  const std::vector<std::int8_t> matrix{1, 0, -1, 1, 1, 1, -1, -1};  // -1 = unknown
  std::vector<Geometry> geometries;
  for (int i = 0; i < static_cast<int>(kCount); ++i) geometries.push_back(geometry(i));
  const std::vector<detail::RejectedRecord> rejected{
      {7, "a/blank.png", "blank", "constant image", "00ff", "{}"},
      {9, "b/x.dcm", "unreadable", "", "", R"({"x":1})"}};
  schema::BuildRecord record;
  record.shard = {1, 3, 10, 8, 30};
  record.missing_labels = "drop";
  record.impute = "median";
  {
    h5::File file = h5::File::create(path);
    schema::write_labels(file.id(), labels);
    schema::write_label_matrix(file.id(), matrix, kCount, 2);
    schema::write_geometry(file.id(), geometries);
    schema::write_meta(file.id(), numeric_column(), kCount);
    schema::write_meta(file.id(), text_column(), kCount);
    schema::write_rejected(file.id(), rejected);
    schema::write_root_attributes(file.id(), schema::kTargetsSchemaVersion, {"normal", "effusion"},
                                  R"({"x":1})", "0123456789abcdef", kCount, rejected.size());
    schema::write_build_record(file.id(), record);
    file.close();
  }
  const schema::CacheFile file(path);
  EXPECT_EQ(schema::read_schema_version(file), schema::kTargetsSchemaVersion);
  EXPECT_EQ(schema::read_text_attribute(file, schema::kLibraryVersion, ""), kVersion);
  EXPECT_EQ(schema::read_class_names(file), (std::vector<std::string>{"normal", "effusion"}));
  EXPECT_EQ(schema::read_text_attribute(file, schema::kConfigHash, ""), "0123456789abcdef");
  EXPECT_EQ(schema::read_labels(file, kCount, 2), labels);
  EXPECT_EQ(schema::read_label_matrix(file, kCount, 2), matrix);
  const schema::GeometryColumns read = schema::read_geometry(file, kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    const Geometry want = geometry(static_cast<int>(i)), got = read.at(i);
    for (int k = 0; k < 10; ++k) {
      EXPECT_EQ(got.*schema::kGeometryIntFields[k], want.*schema::kGeometryIntFields[k])
          << schema::kGeometryInt[k] << " of image " << i;
    }
    EXPECT_EQ(got.scale, want.scale) << i;
  }
  EXPECT_EQ(schema::meta_names(file), (std::vector<std::string>{"age", "sex"}));
  const MetaColumn age = schema::read_meta(file, "age", kCount), sex = schema::read_meta(file, "sex", kCount);
  EXPECT_TRUE(age.numeric);
  EXPECT_EQ(age.values, numeric_column().values);
  EXPECT_EQ(age.imputed, numeric_column().imputed);
  EXPECT_FALSE(sex.numeric);
  EXPECT_EQ(sex.text, text_column().text);
  EXPECT_EQ(sex.imputed, text_column().imputed);
  const std::vector<detail::RejectedRecord> back = schema::read_rejected(file);
  ASSERT_EQ(back.size(), rejected.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].source_index, rejected[i].source_index);
    EXPECT_EQ(back[i].path, rejected[i].path);
    EXPECT_EQ(back[i].reason, rejected[i].reason);
    EXPECT_EQ(back[i].detail, rejected[i].detail);
    EXPECT_EQ(back[i].source_hash, rejected[i].source_hash);
    EXPECT_EQ(back[i].outcome, rejected[i].outcome);
  }
  const schema::BuildRecord build = schema::read_build_record(file);
  EXPECT_EQ(build.shard.index, 1);
  EXPECT_EQ(build.shard.count, 3);
  EXPECT_EQ(build.shard.sources, 10);
  EXPECT_EQ(build.shard.ok_files, 8);
  EXPECT_EQ(build.shard.sources_total, 30);
  EXPECT_EQ(build.missing_labels, "drop");
  EXPECT_EQ(build.impute, "median");
  EXPECT_FALSE(build.privacy.recorded);  // not recorded, so not written
  EXPECT_FALSE(h5::has_attribute(file.id(), schema::kPrivacy));
  EXPECT_FALSE(h5::has_attribute(file.id(), schema::kMergedFrom));
}

TEST(Schema, TheTargetTablesReadBackAsWrittenAndNoRowsMeanEveryImageNone) {
  TempDir dir;
  detail::TargetColumns targets;
  for (std::size_t i = 0; i < kCount; ++i) {
    FrameTargets t;
    t.boxes_state = i == 2 ? TargetState::kInvalid : TargetState::kValid;
    if (i == 1) t.boxes = {{0.5, 1, 8, 8, 2}, {0, 0, 1e-9, 1, 1}};
    if (i == 3) t.boxes = {{7, 7, 8 + 0.5e-6, 8, 1}};  // within the slack of the 8x8 grid
    t.landmarks_state = i == 0 ? TargetState::kValid : TargetState::kNone;
    if (i == 0) t.landmarks = {{8, 0, 1}};
    t.boxes_dropped = i;
    detail::append_targets(targets, t);
  }
  targets.classes = {"background", "a", "b"};
  const std::string path = dir.path("targets.h5");
  create_file_with_images(path);
  {
    h5::File file = h5::File::open(path, /*read_write=*/true);
    schema::write_targets(file.id(), targets, kCount, 8, 8, /*has_masks=*/false);
    file.close();
  }
  const detail::TargetColumns back = schema::read_targets(schema::CacheFile(path), kCount, 8, 8, false);
  EXPECT_EQ(back.classes, targets.classes);
  EXPECT_EQ(back.mask_states, targets.mask_states);
  EXPECT_EQ(back.box_states, targets.box_states);
  EXPECT_EQ(back.landmark_states, targets.landmark_states);
  EXPECT_EQ(back.box_offsets, (std::vector<std::uint64_t>{0, 0, 2, 2, 3}));
  EXPECT_EQ(back.boxes, targets.boxes);
  EXPECT_EQ(back.box_labels, (std::vector<std::int32_t>{2, 1, 1}));
  EXPECT_EQ(back.landmark_offsets, targets.landmark_offsets);
  EXPECT_EQ(back.landmarks, targets.landmarks);
  EXPECT_EQ(back.landmark_labels, targets.landmark_labels);
  EXPECT_EQ(back.boxes_dropped, (std::vector<std::uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(back.landmarks_dropped, targets.landmarks_dropped);
  // A cache with masks but no target rows: every image none.
  const std::string none = dir.path("none.h5");
  create_file_with_images(none);
  {
    h5::File file = h5::File::open(none, /*read_write=*/true);
    schema::write_targets(file.id(), detail::TargetColumns{}, kCount, 8, 8, /*has_masks=*/true);
    file.close();
  }
  const detail::TargetColumns empty = schema::read_targets(schema::CacheFile(none), kCount, 8, 8, true);
  EXPECT_EQ(empty.mask_states, std::vector<std::uint8_t>(kCount, 0));
  EXPECT_EQ(empty.box_offsets, std::vector<std::uint64_t>(kCount + 1, 0));
  EXPECT_FALSE(empty.any());
}

TEST(Schema, WritingAColumnOfTheWrongLengthNamesItAndTheFile) {
  TempDir dir;
  const std::string path = dir.path("short.h5");
  h5::File file = h5::File::create(path);
  detail::CacheColumns columns;
  columns.labels.assign(kCount, 0);
  columns.patient_ids.assign(kCount, "p");
  columns.source_paths.assign(kCount, "x.png");
  columns.source_hashes.assign(kCount, "00");
  columns.sites.assign(kCount - 1, "");  // one short
  columns.frame_indices.assign(kCount, 0);
  columns.source_indices.assign(kCount, 0);
  columns.pixel_hashes.assign(kCount, 0);
  columns.checksums.assign(kCount, 0);
  columns.geometry.assign(kCount, Geometry{});
  try {
    schema::write_columns(file.id(), columns, kCount, 1);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("short.h5: column site has 3 entries for 4 images"),
              std::string::npos)
        << e.what();
  }
  try {
    schema::write_label_matrix(file.id(), {1, 0, 1}, kCount, 2);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("label_matrix has 3 values for 4 images x 2 classes"),
              std::string::npos)
        << e.what();
  }
  try {
    schema::write_label_matrix(file.id(), {1, 0, 1, 0, 2, 0, 1, 1}, kCount, 2);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("short.h5: column label_matrix holds 2 (-1, 0 or 1 expected)"),
              std::string::npos)
        << e.what();
  }
}

TEST(SplitTable, AWrittenSplitIsReadByTheSchemaChecksAndBackWhole) {
  TempDir dir;
  const std::string path = dir.path("c.h5");
  create_file_with_images(path);
  SplitTable folds = split_table();
  folds.name = "kfold";
  folds.kind = "kfold";
  folds.parts = 2;
  folds.part = {0, 1, -1, 1};
  folds.ratios = {0.5, 0.5};
  folds.mean = {0.25, 0.5};
  folds.std = {0.5, 0.75};
  write_split_table(path, split_table());
  write_split_table(path, folds);
  EXPECT_EQ(split_table_names(path), (std::vector<std::string>{"default", "kfold"}));

  const schema::CacheFile file(path);
  const schema::SplitCore core = schema::read_split_core(file, "default", kCount);
  EXPECT_EQ(core.kind, "parts");
  EXPECT_EQ(core.parts, 3u);
  EXPECT_EQ(core.part, split_table().part);
  EXPECT_EQ(core.mean, split_table().mean);
  EXPECT_EQ(core.std, split_table().std);
  EXPECT_EQ(schema::read_split_core(file, "kfold", schema::kStoredLength).part, folds.part);
  expect_same_split(read_split_table(path, "default", kCount), split_table());
  expect_same_split(read_split_table(path, "kfold"), folds);
  const h5::Group group = h5::open_group(file.id(), "splits/default");
  EXPECT_EQ(h5::read_string_attribute(group.id(), schema::kLibraryVersion), kVersion);
}

TEST(SplitTable, RewritingASplitReplacesIt) {
  TempDir dir;
  const std::string path = dir.path("c.h5");
  create_file_with_images(path);
  write_split_table(path, split_table());
  SplitTable again = split_table();
  again.seed = 7;
  again.part = {2, 2, 1, 0};
  write_split_table(path, again);
  EXPECT_EQ(split_table_names(path), (std::vector<std::string>{"default"}));
  expect_same_split(read_split_table(path, "default", kCount), again);
}

TEST(SplitTable, RefusesANameThatIsNotPlainAndAPartOfTheWrongLength) {
  TempDir dir;
  const std::string path = dir.path("c.h5");
  create_file_with_images(path);
  for (const char* name : {"", "a/b", ".hidden"}) {
    SplitTable split = split_table();
    split.name = name;
    EXPECT_THROW(write_split_table(path, split), ConfigError) << name;
  }
  SplitTable longer = split_table();
  longer.part.push_back(0);
  try {
    write_split_table(path, longer, "the-cache.h5");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("the split has 5 samples but the-cache.h5 has 4"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(split_table_names(path).empty());
}

TEST(SplitTable, ReadingAMissingSplitNamesTheSplitsThere) {
  TempDir dir;
  const std::string path = dir.path("c.h5");
  create_file_with_images(path);
  try {
    read_split_table(path, "default");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("it has no splits; run `medload split"), std::string::npos)
        << e.what();
  }
  SplitTable other = split_table();
  other.name = "mine";
  write_split_table(path, other);
  try {
    read_split_table(path, "default");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("has no split \"default\" (it has: mine)"), std::string::npos)
        << e.what();
  }
}

// The descriptive attributes are checked too: a seed that is not a decimal uint64 and counts out
// of range are refused naming the attribute.
TEST(SplitTable, ReadRefusesADamagedSeedAndCounts) {
  TempDir dir;
  const std::string path = dir.path("c.h5");
  create_file_with_images(path);
  struct Case {
    const char* attribute;
    const char* expected;
    void (*damage)(hid_t group);
  };
  const Case cases[] = {
      {"seed", "/splits/default/seed is \"12abc\"",
       [](hid_t g) { h5::write_attribute(g, schema::kSplitSeed, "12abc"); }},
      {"seed", "/splits/default/seed is \"18446744073709551616\"",
       [](hid_t g) { h5::write_attribute(g, schema::kSplitSeed, "18446744073709551616"); }},
      {"sample_counts", "/splits/default/sample_counts holds -1",
       [](hid_t g) {
         h5::write_attribute(g, schema::kSplitSampleCounts, std::vector<double>{2, -1, 1});
       }},
      {"class_counts", "/splits/default/class_counts is not a JSON array",
       [](hid_t g) { h5::write_attribute(g, schema::kSplitClassCounts, "{\"a\":1}"); }},
  };
  for (const Case& c : cases) {
    write_split_table(path, split_table());
    {
      h5::File file = h5::File::open(path, /*read_write=*/true);
      {
        const h5::Group group = h5::open_group(file.id(), "splits/default");
        c.damage(group.id());
      }
      file.close();
    }
    try {
      read_split_table(path, "default", kCount);
      ADD_FAILURE() << c.attribute << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace medload::loader
