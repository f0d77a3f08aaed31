// Partially labelled multi-label data through the cache: the manifest's `unknown_labels` become -1
// entries of an int8 /label_matrix (uint8 0/1 as before when nothing is unknown), unlabeled rows
// are all -1, a class named in both columns is unknown with a warning, and the report, inspect and
// merge count and keep the unknown entries.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache_compare.h"
#include "h5.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload_test/command.h"
#include "test_util.h"

namespace {

namespace h5 = medload::loader::h5;
using medload::loader::BuildOptions;
using medload::loader::CacheReader;
using medload::loader::MergeOptions;
using medload::loader::test::TempDir;
using medload::loader::test::write_bytes;
using medload::loader::test::write_png;

BuildOptions options_for(const std::string& root, const std::string& manifest, const std::string& output) {
  BuildOptions options = medload::loader::test::quiet_build_options(root, output, 40);
  options.manifest = manifest;
  return options;
}

// Writes one distinct PNG per manifest row (img<i>.png) and the manifest `lines` (after the header
// "path,label,unknown_labels") to root/name; returns the manifest's path.
std::string write_manifest(const std::string& root, const std::string& name,
                           const std::vector<std::string>& lines, int first_seed = 0) {
  std::string manifest = "path,label,unknown_labels\n";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string image = name + "_img" + std::to_string(i) + ".png";
    write_png(root + "/" + image, first_seed + static_cast<int>(i));
    manifest += image + "," + lines[i] + "\n";
  }
  write_bytes(root + "/" + name + ".csv", manifest);
  return root + "/" + name + ".csv";
}

// "int8" or "uint8" (or what else) for the stored type of /label_matrix.
std::string label_matrix_type(const std::string& path) {
  h5::File file = h5::File::open(path, /*read_write=*/false);
  const h5::Dataset dataset = h5::open_dataset(file.id(), "label_matrix");
  const h5::Datatype type = h5::dataset_type(dataset);
  const bool is_signed = H5Tget_sign(type.id()) == H5T_SGN_2;
  return std::string(is_signed ? "int" : "uint") + std::to_string(8 * H5Tget_size(type.id()));
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<std::string> warnings_of(const nlohmann::json& entry) {
  std::vector<std::string> warnings;
  if (entry.contains("warnings")) {
    for (const auto& w : entry["warnings"]) warnings.push_back(w.get<std::string>());
  }
  return warnings;
}

// Classes (sorted): effusion, mass, nodule.
const std::vector<std::string> kPartial = {
    "effusion,nodule",     // 0: effusion 1, nodule unknown, mass 0
    ",",                   // 1: unlabeled: all unknown
    ",mass",               // 2: labeled, no positive: mass unknown, the others 0
    "effusion|nodule,",    // 3: fully labeled
    "mass|nodule,nodule",  // 4: nodule in both: unknown, label_conflict
};

}  // namespace

TEST(UnknownLabels, ABuildStoresThemAsMinusOneInAnInt8MatrixAndCountsThem) {
  TempDir dir;
  const std::string root = dir.path("in");
  const auto options = options_for(root, write_manifest(root, "m", kPartial), dir.path("c.h5"));
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 5u);
  EXPECT_EQ(result.unlabeled, 1u);  // only row 1: row 2 names an unknown label, so it is labeled
  EXPECT_EQ(result.unknown_label_entries, 1u + 3u + 1u + 1u);
  EXPECT_EQ(result.samples_with_unknown_labels, 4u);

  EXPECT_EQ(label_matrix_type(options.output), "int8");
  const CacheReader reader(options.output);
  // Version 3: a medload that reads -1 as a negative refuses the cache instead.
  EXPECT_EQ(reader.schema_version(), 3);
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"effusion", "mass", "nodule"}));
  ASSERT_TRUE(reader.multi_label());
  EXPECT_EQ(reader.label_matrix(), (std::vector<std::int8_t>{1, 0, -1,    //
                                                             -1, -1, -1,  //
                                                             0, -1, 0,    //
                                                             1, 0, 1,     //
                                                             0, 1, -1}));
  // /labels: the one positive class when there is one, else -1.
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{0, -1, -1, -1, 1}));

  const nlohmann::json report = read_json(result.report_path);
  EXPECT_EQ(report["build"]["unknown_label_entries"], 6);
  EXPECT_EQ(report["build"]["samples_with_unknown_labels"], 4);
  EXPECT_EQ(report["build"]["unlabeled"], 1);
  EXPECT_EQ(report["counts"]["warnings"]["label_conflict"], 1);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto warnings = warnings_of(report["files"][i]);
    const bool conflict = std::find(warnings.begin(), warnings.end(), "label_conflict") != warnings.end();
    EXPECT_EQ(conflict, i == 4) << report["files"][i].dump();
  }
}

TEST(UnknownLabels, DroppingUnlabeledSamplesKeepsASampleWithOnlyUnknownLabels) {
  TempDir dir;
  const std::string root = dir.path("in");
  auto options = options_for(root, write_manifest(root, "m", kPartial), dir.path("c.h5"));
  options.missing_labels = medload::loader::MissingLabelPolicy::kDrop;
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 4u);
  EXPECT_EQ(result.dropped_unlabeled, 1u);
  const CacheReader reader(options.output);
  EXPECT_EQ(reader.source_paths()[1], "m_img2.png");
  EXPECT_EQ(reader.label_matrix(), (std::vector<std::int8_t>{1, 0, -1, 0, -1, 0, 1, 0, 1, 0, 1, -1}));
}

TEST(UnknownLabels, AFullyLabeledMultiLabelCacheIsStillUint8AndItsUnlabeledRowsAreUnknown) {
  TempDir dir;
  const std::string root = dir.path("in");
  const auto full =
      options_for(root, write_manifest(root, "full", {"a|b,", "a,", "b,"}), dir.path("full.h5"));
  const auto built = medload::loader::build_cache(full);
  EXPECT_EQ(label_matrix_type(full.output), "uint8");  // readable by medload before unknown labels
  EXPECT_EQ(CacheReader(full.output).schema_version(), 2);
  EXPECT_EQ(CacheReader(full.output).label_matrix(), (std::vector<std::int8_t>{1, 1, 1, 0, 0, 1}));
  EXPECT_EQ(built.unknown_label_entries, 0u);
  EXPECT_EQ(built.samples_with_unknown_labels, 0u);
  EXPECT_FALSE(medload::loader::inspect_cache(full.output).contains("multi_label_unknown"));

  // An unlabeled sample is not a negative: its row is unknown, so the matrix is int8.
  const auto with_unlabeled =
      options_for(root, write_manifest(root, "gap", {"a|b,", ",", "b,"}, 10), dir.path("gap.h5"));
  medload::loader::build_cache(with_unlabeled);
  EXPECT_EQ(label_matrix_type(with_unlabeled.output), "int8");
  EXPECT_EQ(CacheReader(with_unlabeled.output).label_matrix(),
            (std::vector<std::int8_t>{1, 1, -1, -1, 0, 1}));
}

TEST(UnknownLabels, OneRowWithUnknownLabelsMakesASingleLabelManifestMultiLabel) {
  TempDir dir;
  const std::string root = dir.path("in");
  // No row has two labels; "rare" is named only as unknown and still becomes a class.
  const auto options = options_for(root, write_manifest(root, "m", {"a,", "b,", "a,rare"}), dir.path("c.h5"));
  medload::loader::build_cache(options);
  const CacheReader reader(options.output);
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"a", "b", "rare"}));
  ASSERT_TRUE(reader.multi_label());
  EXPECT_EQ(reader.label_matrix(), (std::vector<std::int8_t>{1, 0, 0, 0, 1, 0, 1, 0, -1}));
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{0, 1, 0}));
}

TEST(UnknownLabels, InspectCountsUnknownEntriesPerClassInJsonAndText) {
  TempDir dir;
  const std::string root = dir.path("in");
  const auto options = options_for(root, write_manifest(root, "m", kPartial), dir.path("c.h5"));
  medload::loader::build_cache(options);
  const auto summary = medload::loader::inspect_cache(options.output);
  EXPECT_EQ(summary["multi_label"], (nlohmann::json{{"effusion", 2}, {"mass", 1}, {"nodule", 1}}));
  EXPECT_EQ(summary["multi_label_unknown"], (nlohmann::json{{"effusion", 1}, {"mass", 2}, {"nodule", 3}}));
  // Unlabeled: the one row about which nothing is known (row 1), not every row whose /labels is -1.
  EXPECT_EQ(summary["unlabeled"], 1);
  const auto printed = medload::test::run_medload("inspect " + options.output, false);
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("multi-label unknown: effusion=1 mass=2 nodule=3"), std::string::npos)
      << printed.output;
}

TEST(UnknownLabels, MergedShardsKeepTheUnknownEntriesAndEqualASingleBuild) {
  TempDir dir;
  const std::string root = dir.path("in");
  const std::string manifest = write_manifest(root, "m", kPartial);
  const auto single = options_for(root, manifest, dir.path("single.h5"));
  medload::loader::build_cache(single);
  MergeOptions merge;
  for (int i = 0; i < 2; ++i) {
    auto shard = options_for(root, manifest, dir.path("shard" + std::to_string(i) + ".h5"));
    shard.shard_index = i;
    shard.shard_count = 2;
    medload::loader::build_cache(shard);
    merge.inputs.push_back(shard.output);
  }
  merge.output = dir.path("merged.h5");
  merge.progress = medload::ProgressStyle::kQuiet;
  medload::loader::merge_caches(merge);
  medload::loader::test::expect_same_content(merge.output, single.output);
  EXPECT_EQ(label_matrix_type(merge.output), "int8");
  EXPECT_EQ(CacheReader(merge.output).label_matrix(), CacheReader(single.output).label_matrix());
}

TEST(UnknownLabels, ASingleLabelCacheMergedIntoAMultiLabelOneGivesItsUnlabeledRowsAsUnknown) {
  TempDir dir;
  const std::string root = dir.path("in");
  const auto single_label =
      options_for(root, write_manifest(root, "one", {"a,", ",", "b,"}), dir.path("one.h5"));
  medload::loader::build_cache(single_label);
  ASSERT_FALSE(CacheReader(single_label.output).multi_label());
  const auto multi_label = options_for(root, write_manifest(root, "two", {"a|b,"}, 10), dir.path("two.h5"));
  medload::loader::build_cache(multi_label);
  ASSERT_EQ(label_matrix_type(multi_label.output), "uint8");

  MergeOptions merge;
  merge.inputs = {single_label.output, multi_label.output};
  merge.output = dir.path("merged.h5");
  merge.progress = medload::ProgressStyle::kQuiet;
  medload::loader::merge_caches(merge);
  EXPECT_EQ(label_matrix_type(merge.output), "int8");
  EXPECT_EQ(CacheReader(merge.output).label_matrix(), (std::vector<std::int8_t>{1, 0, -1, -1, 0, 1, 1, 1}));
}

// A manifest that names a new class in every row (label or unknown_labels) is refused before
// anything is decoded: past the classes a cache holds, or past the label matrix a build writes.
TEST(UnknownLabels, AbsurdLabelSpacesAreRefusedBeforeDecodingNamingTheLimit) {
  TempDir dir;
  const std::string root = dir.path("in");
  std::filesystem::create_directories(root);
  auto manifest_of = [&](const std::string& name, int rows) {
    std::string text = "path,label,unknown_labels\n";
    for (int i = 0; i < rows; ++i)
      text += "missing" + std::to_string(i) + ".png,,class" + std::to_string(i) + "\n";
    write_bytes(root + "/" + name, text);
    return root + "/" + name;
  };
  const struct {
    int rows;
    const char* expected;
  } cases[] = {{65537, "a cache holds at most 65536"}, {33000, "at most 1073741824"}};
  for (const auto& c : cases) {
    const auto options =
        options_for(root, manifest_of(std::to_string(c.rows) + ".csv", c.rows), dir.path("c.h5"));
    try {
      medload::loader::build_cache(options);
      FAIL() << c.rows << " rows: built";
    } catch (const medload::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(options.output));
  }
}
