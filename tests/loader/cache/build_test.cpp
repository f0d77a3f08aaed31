// build_cache: content and order, the report, rejected files, labels and metadata policies,
// incremental rebuilds, config changes, and clear errors that leave an existing cache alone.

#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include "cache_compare.h"
#include "h5.h"
#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "text_dicom.h"
#include "test_util.h"

namespace {

using medload::loader::BuildOptions;
using medload::loader::CacheReader;
using medload::loader::test::TempDir;
using medload::loader::test::write_text_dicom;
using medload::loader::test::write_bytes;
using medload::loader::test::write_png;
using medload::loader::test::write_tree;
namespace fs = std::filesystem;

BuildOptions small_options(const std::string& root, const std::string& output) {
  BuildOptions options = medload::loader::test::quiet_build_options(root, output, 48);
  options.batch_files = 3;
  return options;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A gray PNG with content well above its noise (a gradient and a bright square placed by
// `seed`), distinct for each seed.
void write_structured_png(const std::string& path, int seed) {
  fs::create_directories(fs::path(path).parent_path());
  cv::Mat image(80, 96, CV_8UC1);
  cv::RNG rng(static_cast<std::uint64_t>(seed) * 7919u + 17u);
  for (int r = 0; r < image.rows; ++r) {
    for (int c = 0; c < image.cols; ++c)
      image.at<std::uint8_t>(r, c) = cv::saturate_cast<std::uint8_t>(r + c + rng.uniform(0, 8));
  }
  const int x = 4 + (seed * 13) % 60, y = 4 + (seed * 7) % 44;
  image(cv::Rect(x, y, 24, 24)).setTo(230);
  if (!cv::imwrite(path, image)) throw std::runtime_error("cannot write " + path);
}

bool has_warning(const nlohmann::json& entry, const std::string& code) {
  if (!entry.contains("warnings")) return false;
  for (const auto& w : entry["warnings"]) {
    if (w == code) return true;
  }
  return false;
}

}  // namespace

TEST(BuildCache, StoresEveryOkFileInInputOrderAndReportsTheRest) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"effusion", "normal"}, 4);
  write_png(root + "/effusion/zcopy.png", 0);   // the same pixels as effusion/img0.png
  write_bytes(root + "/normal/empty.png", "");  // empty_file
  write_bytes(root + "/normal/junk.png", "not an image at all");
  cv::Mat blank(64, 64, CV_8UC1, cv::Scalar(7));
  cv::imwrite(root + "/normal/blank.png", blank);  // blank
  const std::string output = dir.path("cache.h5");
  const auto result = medload::loader::build_cache(small_options(root, output));

  EXPECT_EQ(result.sources, 12u);
  EXPECT_EQ(result.ok_files, 8u);
  EXPECT_EQ(result.rejected_files, 4u);
  EXPECT_EQ(result.images, 8u);
  EXPECT_EQ(result.decoded_files, 12u);
  EXPECT_FALSE(fs::exists(output + ".partial"));
  EXPECT_FALSE(fs::exists(output + ".tmp"));

  const CacheReader reader(output);
  ASSERT_EQ(reader.size(), 8u);
  EXPECT_EQ(reader.height(), 48);
  EXPECT_EQ(reader.width(), 48);
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"effusion", "normal"}));
  const std::vector<std::string> expected_paths{"effusion/img0.png", "effusion/img1.png", "effusion/img2.png",
                                                "effusion/img3.png", "normal/img4.png",   "normal/img5.png",
                                                "normal/img6.png",   "normal/img7.png"};
  EXPECT_EQ(reader.source_paths(), expected_paths);
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  for (std::size_t i = 0; i < reader.size(); ++i) EXPECT_TRUE(reader.verify(i)) << i;
  EXPECT_EQ(reader.source_hashes()[0].size(), 16u);
  EXPECT_GT(reader.geometry(0).original_width, 0);

  std::map<std::string, std::string> reasons;
  for (const auto& r : reader.rejected()) reasons[r.path] = r.reason;
  EXPECT_EQ(reasons["effusion/zcopy.png"], "duplicate");
  EXPECT_EQ(reasons["normal/empty.png"], "empty_file");
  EXPECT_EQ(reasons["normal/blank.png"], "blank");
  EXPECT_EQ(reasons.size(), 4u);

  const auto report = read_json(dir.path("cache.report.json"));
  EXPECT_EQ(report["files"].size(), 12u);
  EXPECT_EQ(report["counts"]["ok"], 8);
  EXPECT_EQ(report["counts"]["rejected"], 4);
  EXPECT_EQ(report["counts"]["by_reason"]["duplicate"], 1);
  EXPECT_GT(report["stage_cost_ns"]["preprocess"]["total_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(report["build"]["images"], 8);
}

TEST(BuildCache, DecoderWorkersPreprocessWhatTheyDecodeAndWriteWhatAnInProcessBuildWrites) {
  // The build preprocesses each frame inside the worker that decoded it and gets back only the
  // preprocessed image with its description (geometry, hashes, timings): the cache must not
  // depend on where that happened. 8-bit, 16-bit and colour inputs, one of them a duplicate.
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a", "b"}, 3);
  write_png(root + "/a/deep.png", 40, 120, 70, true);
  write_png(root + "/b/zcopy.png", 0);  // the same pixels as a/img0.png
  cv::Mat colour(90, 110, CV_8UC3);
  cv::RNG(5).fill(colour, cv::RNG::UNIFORM, 0, 64);
  for (int r = 0; r < colour.rows; ++r) colour.row(r) += cv::Scalar(2 * r, r, 150 - r);  // not only noise
  cv::imwrite(root + "/b/colour.png", colour);
  auto in_process = small_options(root, dir.path("in_process.h5"));
  auto workers = small_options(root, dir.path("workers.h5"));
  workers.config.validate.isolation = medload::loader::Isolation::kProcess;
  const auto a = medload::loader::build_cache(in_process);
  const auto b = medload::loader::build_cache(workers);
  EXPECT_EQ(a.images, 8u);
  EXPECT_EQ(b.images, a.images);
  EXPECT_EQ(b.rejected_files, 1u);
  medload::loader::test::expect_same_content(dir.path("in_process.h5"), dir.path("workers.h5"));
  const CacheReader x(dir.path("in_process.h5"));
  const CacheReader y(dir.path("workers.h5"));
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_TRUE(y.verify(i)) << i;
    EXPECT_EQ(x.geometry(i).to_json(), y.geometry(i).to_json()) << i;
  }
  // The cost of each preprocessing step still reaches the report from the workers.
  const auto report = read_json(dir.path("workers.report.json"));
  for (const char* step : {"letterbox_ns", "clahe_ns", "bilateral_ns", "total_ns"}) {
    EXPECT_GT(report["stage_cost_ns"]["preprocess"][step].get<std::int64_t>(), 0) << step;
  }
}

TEST(BuildCache, IncrementalRebuildDecodesOnlyNewFilesAndEqualsAFreshBuild) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a", "b"}, 5);
  const std::string output = dir.path("cache.h5");
  auto first = medload::loader::build_cache(small_options(root, output));
  EXPECT_EQ(first.decoded_files, 10u);
  write_png(root + "/a/new1.png", 100);
  write_png(root + "/b/new2.png", 101);
  write_png(root + "/b/new3.png", 102);
  const auto second = medload::loader::build_cache(small_options(root, output));
  EXPECT_EQ(second.decoded_files, 3u);
  EXPECT_EQ(second.reused_files, 10u);
  EXPECT_EQ(second.images, 13u);

  const std::string fresh = dir.path("fresh.h5");
  medload::loader::build_cache(small_options(root, fresh));
  medload::loader::test::expect_same_content(output, fresh);

  // A changed config rebuilds everything.
  auto changed = small_options(root, output);
  changed.config.preprocess.letterbox.size = 40;
  const auto third = medload::loader::build_cache(changed);
  EXPECT_EQ(third.decoded_files, 13u);
  EXPECT_EQ(third.reused_files, 0u);
  EXPECT_EQ(CacheReader(output).height(), 40);
}

TEST(BuildCache, ManifestLabelsMissingLabelsAndImputedMetadata) {
  TempDir dir;
  const std::string root = dir.path("in");
  for (int i = 0; i < 6; ++i) write_png(root + "/img" + std::to_string(i) + ".png", i);
  write_bytes(root + "/m.csv",
              "path,label,patient_id,age,sex\n"
              "img0.png,pneumonia,p0,30,F\n"
              "img1.png,pneumonia,p1,,M\n"   // age missing -> pneumonia median (30+50)/2 = 40
              "img2.png,pneumonia,p2,50,\n"  // sex missing -> pneumonia mode: F (tie F/M -> F)
              "img3.png,normal,p3,70,M\n"
              "img4.png,,p4,,M\n"  // unlabeled, age missing -> global median 55
              "img5.png,normal|pneumonia,p5,60,F\n");
  auto options = small_options(root, dir.path("m.h5"));
  options.manifest = root + "/m.csv";
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 6u);
  EXPECT_EQ(result.unlabeled, 1u);
  EXPECT_EQ(result.imputed.at("age"), 2u);
  EXPECT_EQ(result.imputed.at("sex"), 1u);

  const CacheReader reader(dir.path("m.h5"));
  EXPECT_EQ(reader.class_names(), (std::vector<std::string>{"normal", "pneumonia"}));
  EXPECT_EQ(reader.labels(), (std::vector<std::int64_t>{1, 1, 1, 0, -1, -1}));
  ASSERT_TRUE(reader.multi_label());
  // img4 is unlabeled: unknown (-1) for every class, not a negative.
  EXPECT_EQ(reader.label_matrix(), (std::vector<std::int8_t>{0, 1, 0, 1, 0, 1, 1, 0, -1, -1, 1, 1}));
  EXPECT_EQ(reader.patient_ids()[3], "p3");
  const auto age = reader.meta("age");
  ASSERT_TRUE(age.numeric);
  EXPECT_DOUBLE_EQ(age.values[1], 40.0);
  EXPECT_DOUBLE_EQ(age.values[4], 55.0);  // median of 30, 50, 70, 60
  EXPECT_EQ(age.imputed, (std::vector<std::uint8_t>{0, 1, 0, 0, 1, 0}));
  const auto sex = reader.meta("sex");
  EXPECT_FALSE(sex.numeric);
  EXPECT_EQ(sex.text[2], "F");
  EXPECT_EQ(sex.imputed, (std::vector<std::uint8_t>{0, 0, 1, 0, 0, 0}));

  // Dropping unlabeled samples, no imputation.
  options.output = dir.path("drop.h5");
  options.missing_labels = medload::loader::MissingLabelPolicy::kDrop;
  options.impute = medload::loader::ImputePolicy::kNone;
  const auto dropped = medload::loader::build_cache(options);
  EXPECT_EQ(dropped.images, 5u);
  EXPECT_EQ(dropped.dropped_unlabeled, 1u);
  const CacheReader drop_reader(dir.path("drop.h5"));
  EXPECT_TRUE(std::isnan(drop_reader.meta("age").values[1]));
  EXPECT_EQ(drop_reader.meta("age").imputed[1], 1);
}

TEST(BuildCache, MissingRootAndMissingOutputFolderAreClearErrors) {
  TempDir dir;
  try {
    medload::loader::build_cache(small_options(dir.path("nowhere"), dir.path("c.h5")));
    FAIL();
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
  write_tree(dir.path("in"), {"a"}, 2);
  try {
    medload::loader::build_cache(small_options(dir.path("in"), dir.path("no/such/folder/c.h5")));
    FAIL();
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  auto bad = small_options(dir.path("in"), dir.path("c.h5"));
  bad.shard_index = 3;
  bad.shard_count = 2;
  EXPECT_THROW(medload::loader::build_cache(bad), medload::ConfigError);
}

TEST(BuildCache, AWorkFolderThatIsALinkIsRefusedAndNothingIsWrittenWhereItPoints) {
  // A link named OUTPUT.partial had the build write its work files (decoded pixels) wherever it
  // pointed, and leave them there.
  TempDir dir;
  write_tree(dir.path("in"), {"a", "b"}, 2);
  fs::create_directories(dir.path("elsewhere"));
  fs::create_directory_symlink(dir.path("elsewhere"), dir.path("c.h5.partial"));
  try {
    medload::loader::build_cache(small_options(dir.path("in"), dir.path("c.h5")));
    FAIL() << "expected IoError";
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("c.h5.partial is a link, not a folder"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir.path("elsewhere")));
  EXPECT_FALSE(fs::exists(dir.path("c.h5")));
  // A link inside a real work folder, named as the lock or a batch's temporary, is not followed.
  fs::remove(dir.path("c.h5.partial"));
  fs::create_directories(dir.path("c.h5.partial"));
  fs::create_symlink(dir.path("elsewhere/lock"), dir.path("c.h5.partial/lock"));
  EXPECT_THROW(medload::loader::build_cache(small_options(dir.path("in"), dir.path("c.h5"))),
               medload::IoError);
  EXPECT_TRUE(fs::is_empty(dir.path("elsewhere")));
}

TEST(BuildCache, UnwritableOutputFolderIsAClearErrorNamingTheOutput) {
  TempDir dir;
  write_tree(dir.path("in"), {"a"}, 2);
  // Root writes through file modes, so as root the folder is /proc (nothing can be created there);
  // otherwise a read-only folder of our own.
  std::string folder = "/proc";
  if (::geteuid() != 0) {
    folder = dir.path("read-only");
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::string output = folder + "/medload-unwritable-test.h5";
  try {
    medload::loader::build_cache(small_options(dir.path("in"), output));
    FAIL() << "built " << output;
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(output), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(output));
  if (folder != "/proc") fs::permissions(folder, fs::perms::owner_all);
}

TEST(BuildCache, RefusesToReplaceANewerSchemaCacheAndLeavesItAlone) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a"}, 3);
  const std::string output = dir.path("cache.h5");
  medload::loader::build_cache(small_options(root, output));
  {
    auto file = medload::loader::h5::File::open(output, true);
    medload::loader::h5::write_attribute(file.id(), "schema_version", std::int64_t{9});
  }
  const auto before = medload::loader::test::file_bytes(output);
  try {
    medload::loader::build_cache(small_options(root, output));
    FAIL();
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("schema_version is 9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("refusing to replace"), std::string::npos) << e.what();
  }
  EXPECT_EQ(medload::loader::test::file_bytes(output), before);
}

TEST(BuildCache, ManifestInWindows1252BuildsWithUtf8TextAndSaysWhatWasConverted) {
  TempDir dir;
  const std::string root = dir.path("in");
  for (int i = 0; i < 4; ++i) write_structured_png(root + "/img" + std::to_string(i) + ".png", i);
  // Exported from a spreadsheet in Windows-1252: 0xF4 is o-circumflex, 0xE9 e-acute.
  write_bytes(root + "/m.csv",
              "path,label,patient_id,site,ward\n"
              "img0.png,normal,P001,H\xF4pital Nord,A\n"
              "img1.png,normal,P001 ,H\xF4pital Nord,A\n"
              "img2.png,pneumonia,P002,Clinique,\xE9t\xE9\n"
              "img3.png,pneumonia,P003,Clinique,A\n");
  auto options = small_options(root, dir.path("m.h5"));
  options.manifest = root + "/m.csv";
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 4u);

  const CacheReader reader(dir.path("m.h5"));
  EXPECT_EQ(reader.sites()[0], "H\xC3\xB4pital Nord");
  EXPECT_EQ(reader.patient_ids()[0], "P001");
  EXPECT_EQ(reader.patient_ids()[1], "P001");  // "P001 " is the same patient
  EXPECT_EQ(reader.meta("ward").text[2], "\xC3\xA9t\xC3\xA9");

  const std::string text = read_text(dir.path("m.report.json"));
  EXPECT_TRUE(medload::is_valid_utf8(text));
  const auto report = nlohmann::json::parse(text);
  EXPECT_TRUE(has_warning(report["files"][0], "text_converted:site"));
  EXPECT_TRUE(has_warning(report["files"][2], "text_converted:ward"));
  EXPECT_FALSE(report["files"][3].contains("warnings"));
  EXPECT_EQ(report["counts"]["warnings"]["text_converted:site"], 2);
  EXPECT_EQ(report["counts"]["warnings"]["text_converted:ward"], 1);
}

TEST(BuildCache, FileNameThatIsNotUtf8IsCachedUnderItsLosslessNameAndTheBuildCompletes) {
  for (const auto isolation :
       {medload::loader::Isolation::kInProcess, medload::loader::Isolation::kProcess}) {
    TempDir dir;
    const std::string root = dir.path("in");
    write_structured_png(root + "/normal/img0.png", 0);
    write_structured_png(root + "/normal/img1.png", 1);
    write_structured_png(root + "/normal/M\xFCller.png", 9);
    const std::string output = dir.path("cache.h5");
    auto options = small_options(root, output);
    options.config.validate.isolation = isolation;
    const auto result = medload::loader::build_cache(options);
    EXPECT_EQ(result.images, 3u);
    EXPECT_FALSE(fs::exists(output + ".partial"));
    EXPECT_FALSE(fs::exists(output + ".tmp"));

    const CacheReader reader(output);
    EXPECT_EQ(reader.source_paths(),
              (std::vector<std::string>{"normal/M%FCller.png", "normal/img0.png", "normal/img1.png"}));
    const std::string text = read_text(dir.path("cache.report.json"));
    EXPECT_TRUE(medload::is_valid_utf8(text));
    const auto report = nlohmann::json::parse(text);
    const auto& entry = report["files"][0];
    EXPECT_EQ(entry["path"], "normal/M\xC3\xBCller.png");
    EXPECT_EQ(entry["path_bytes"], "normal/M%FCller.png");
    EXPECT_EQ(entry["status"], "ok");
    EXPECT_TRUE(has_warning(entry, "path_not_utf8"));
    EXPECT_EQ(report["counts"]["warnings"]["path_not_utf8"], 1);

    // An incremental rebuild reuses the file and reports it the same way.
    const auto again = medload::loader::build_cache(options);
    EXPECT_EQ(again.reused_files, 3u);
    const auto reused = read_json(dir.path("cache.report.json"));
    EXPECT_EQ(reused["files"][0]["path_bytes"], "normal/M%FCller.png");
    EXPECT_TRUE(has_warning(reused["files"][0], "path_not_utf8"));
  }
}

TEST(BuildCache, DicomTextFollowsSpecificCharacterSetAndLatin1WithoutOneIsConverted) {
  TempDir dir;
  const std::string root = dir.path("in");
  // ISO_IR 100 is Latin-1: 0xFC is u-umlaut, 0xF4 o-circumflex, 0xC9 E-acute.
  write_text_dicom(root + "/latin1.dcm", 1, "ISO_IR 100", "M\xFCller-7 ", "H\xF4pital Saint-\xC9tienne");
  write_text_dicom(root + "/utf8.dcm", 2, "ISO_IR 192", "Z\xC3\xBC", "Z\xC3\xBCrich");
  write_text_dicom(root + "/none.dcm", 3, "", "P001", "Z\xFCrich");  // no charset, Latin-1 in practice
  const std::string output = dir.path("d.h5");
  const auto result = medload::loader::build_cache(small_options(root, output));
  EXPECT_EQ(result.images, 3u);

  const CacheReader reader(output);
  ASSERT_EQ(reader.source_paths(), (std::vector<std::string>{"latin1.dcm", "none.dcm", "utf8.dcm"}));
  EXPECT_EQ(reader.patient_ids()[0], "M\xC3\xBCller-7");
  EXPECT_EQ(reader.sites()[0], "H\xC3\xB4pital Saint-\xC3\x89tienne");
  EXPECT_EQ(reader.sites()[1], "Z\xC3\xBCrich");
  EXPECT_EQ(reader.patient_ids()[2], "Z\xC3\xBC");
  EXPECT_EQ(reader.sites()[2], "Z\xC3\xBCrich");

  const std::string text = read_text(dir.path("d.report.json"));
  EXPECT_TRUE(medload::is_valid_utf8(text));
  const auto report = nlohmann::json::parse(text);
  EXPECT_FALSE(report["files"][0].contains("warnings"));  // converted as its header says: no warning
  EXPECT_TRUE(has_warning(report["files"][1], "text_converted:site"));
  EXPECT_FALSE(report["files"][2].contains("warnings"));
}

TEST(BuildCache, AReportThatCannotBeWrittenFailsTheBuildBeforeAnythingIsPublished) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_tree(root, {"a"}, 2);
  const std::string output = dir.path("cache.h5");
  fs::create_directories(dir.path("cache.report.json/inside"));  // a folder where the report goes
  try {
    medload::loader::build_cache(small_options(root, output));
    FAIL() << "built " << output;
  } catch (const medload::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cache.report.json"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(output));
  EXPECT_FALSE(fs::exists(output + ".partial"));
  EXPECT_FALSE(fs::exists(output + ".tmp"));
}
