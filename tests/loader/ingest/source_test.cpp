#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/loader/ingest/scanner.h"
#include "medload/loader/ingest/source.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
using test::textured;
using test::write_bytes;
using test::write_image;

bool has_warning(const std::vector<std::string>& warnings, const std::string& code) {
  return std::find(warnings.begin(), warnings.end(), code) != warnings.end();
}

bool contains_text(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ListSources, FolderTreeGivesClassesFromFirstLevelFoldersInSortedOrder) {
  TempDir dir("tree");
  write_bytes(dir / "pneumonia/b.png", "x");
  write_bytes(dir / "normal/sub/a.png", "x");
  write_bytes(dir / "normal/c.png", "x");
  write_bytes(dir / "loose.png", "x");
  write_bytes(dir / ".hidden/d.png", "x");
  write_bytes(dir / "normal/.DS_Store", "x");
  const auto sources = list_sources(dir.path().string());
  ASSERT_EQ(sources.size(), 4u);
  EXPECT_EQ(sources[0].report_path, "loose.png");
  EXPECT_TRUE(sources[0].info.labels.empty());
  EXPECT_EQ(sources[1].report_path, "normal/c.png");
  EXPECT_EQ(sources[1].info.labels, std::vector<std::string>{"normal"});
  EXPECT_EQ(sources[2].report_path, "normal/sub/a.png");
  EXPECT_EQ(sources[2].info.labels, std::vector<std::string>{"normal"});
  EXPECT_EQ(sources[3].info.labels, std::vector<std::string>{"pneumonia"});
  EXPECT_EQ(sources[3].path, (dir.path() / "pneumonia/b.png").string());
}

TEST(ListSources, ManifestGivesLabelsPatientsMetadataAndMultiLabel) {
  TempDir dir("manifest");
  write_bytes(dir / "m.csv",
              "path,label,patient_id,age,site\n"
              "img/1.png,effusion|nodule,P1,63,north\n"
              "img/2.png,,P2,,south\n"
              "\"img/with,comma.png\",normal,\"P\"\"3\",40,north\n");
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0].info.labels, (std::vector<std::string>{"effusion", "nodule"}));
  EXPECT_EQ(sources[0].info.patient_id, "P1");
  EXPECT_EQ(sources[0].info.metadata.at("age"), "63");
  EXPECT_EQ(sources[0].info.site, "north");
  EXPECT_EQ(sources[0].path, (dir.path() / "img/1.png").string());
  EXPECT_EQ(sources[0].report_path, "img/1.png");
  EXPECT_TRUE(sources[1].info.labels.empty());           // unlabeled
  EXPECT_EQ(sources[1].info.metadata.count("age"), 0u);  // missing metadata stays missing
  EXPECT_EQ(sources[2].report_path, "img/with,comma.png");
  EXPECT_EQ(sources[2].info.patient_id, "P\"3");
}

TEST(ListSources, ManifestUnknownLabelsColumnNamesClassesWhoseValueIsNotKnown) {
  TempDir dir("unknown_labels");
  write_bytes(dir / "m.csv",
              "path,unknown_labels,label,age\n"
              "1.png, nodule | mass ,effusion,63\n"  // split and trimmed as `label` is
              "2.png,,,40\n"                         // unlabeled
              "3.png,mass,,\n"                       // labeled: known negatives, one unknown
              "4.png,nodule,effusion|nodule,\n");    // nodule in both: unknown, with a warning
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 4u);
  EXPECT_EQ(sources[0].info.labels, std::vector<std::string>{"effusion"});
  EXPECT_EQ(sources[0].info.unknown_labels, (std::vector<std::string>{"nodule", "mass"}));
  EXPECT_EQ(sources[0].info.metadata.count("unknown_labels"), 0u);  // a reserved column, not metadata
  EXPECT_EQ(sources[0].info.metadata.at("age"), "63");
  EXPECT_FALSE(sources[0].info.unlabeled());
  EXPECT_TRUE(sources[0].warnings.empty());
  EXPECT_TRUE(sources[1].info.unknown_labels.empty());
  EXPECT_TRUE(sources[1].info.unlabeled());
  EXPECT_TRUE(sources[2].info.labels.empty());
  EXPECT_EQ(sources[2].info.unknown_labels, std::vector<std::string>{"mass"});
  EXPECT_FALSE(sources[2].info.unlabeled());
  EXPECT_EQ(sources[3].info.labels, std::vector<std::string>{"effusion"});
  EXPECT_EQ(sources[3].info.unknown_labels, std::vector<std::string>{"nodule"});
  EXPECT_EQ(sources[3].warnings, std::vector<std::string>{"label_conflict"});
  for (std::size_t i = 0; i < 3; ++i) EXPECT_FALSE(has_warning(sources[i].warnings, "label_conflict")) << i;
}

TEST(ListSources, ManifestErrorsNameTheFileAndLine) {
  TempDir dir("badmanifest");
  write_bytes(dir / "m.csv", "path,label\na.png,x\nb.png,y,extra\n");
  try {
    list_sources(dir.path().string(), dir / "m.csv");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    {
      const std::string what = e.what();
      EXPECT_NE(what.find("m.csv line 3"), std::string::npos) << what;
      EXPECT_NE(what.find("3 fields, the header has 2"), std::string::npos) << what;
    }
  }
  write_bytes(dir / "n.csv", "file,label\na.png,x\n");
  EXPECT_THROW(list_sources(dir.path().string(), dir / "n.csv"), FormatError);
  write_bytes(dir / "q.csv", "path,label\n\"a.png,x\n");
  EXPECT_THROW(list_sources(dir.path().string(), dir / "q.csv"), FormatError);
}

TEST(ListSources, AColumnNamedTwiceIsAnErrorNamingIt) {
  // path,label,path used the last path column without a word.
  TempDir dir("twice");
  write_bytes(dir / "m.csv", "path,label,path\na.png,x,b.png\n");
  try {
    list_sources(dir.path().string(), dir / "m.csv");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'path' twice"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("m.csv line 1"), std::string::npos) << e.what();
  }
}

TEST(ListSources, LinkLoopsEndWhereTheyCloseAndEachFolderIsListedOnce) {
  // One loop used to list files 40 levels deep (and relabel a real image with the wrong class);
  // two loops never ended.
  TempDir dir("loops");
  write_image(dir / "normal/a.png", textured(48, 48, CV_8UC1, 1));
  write_image(dir / "pneumonia/b.png", textured(48, 48, CV_8UC1, 2));
  std::filesystem::create_directory_symlink("..", dir / "normal/up");
  std::filesystem::create_directory_symlink("../normal", dir / "pneumonia/sideways");
  std::filesystem::create_directory_symlink(".", dir / "pneumonia/self");
  std::filesystem::create_directory_symlink(dir / "pneumonia", dir / "z_alias");  // the same folder again
  const auto sources = list_sources(dir.path().string());
  std::vector<std::string> listed;
  for (const auto& s : sources) listed.push_back(s.report_path + "=" + (s.info.labels.empty() ? "" : s.info.labels[0]));
  EXPECT_EQ(listed, (std::vector<std::string>{"normal/a.png=normal", "pneumonia/b.png=pneumonia"}));
}

TEST(ListSources, FilesPastPathMaxOrTheDepthLimitAreReportedNotDropped) {
  // A file whose path is longer than PATH_MAX (4096) used to vanish from the listing (stat failed
  // and the entry was skipped), as did every folder deeper than 64 levels: images gone from the
  // report without an outcome.
  TempDir dir("deep");
  write_image(dir / "x/a.png", textured(48, 48, CV_8UC1, 1));
  // Made one folder at a time from inside the last: the whole path is too long for the system
  // calls that take one.
  const std::filesystem::path here = std::filesystem::current_path();
  std::filesystem::path long_folder = dir.path() / "x";
  std::filesystem::current_path(long_folder);
  for (int i = 0; i < 20; ++i) {
    const std::string name(250, static_cast<char>('a' + i));
    std::filesystem::create_directory(name);
    std::filesystem::current_path(name);
    long_folder /= name;
  }
  ASSERT_TRUE(cv::imwrite("b.png", textured(48, 48, CV_8UC1, 2)));
  std::filesystem::current_path(here);
  const std::string long_path = (long_folder / "b.png").string();
  ASSERT_GT(long_path.size(), 4096u);
  std::filesystem::path deep_folder = dir.path() / "y";
  for (int i = 0; i < 70; ++i) deep_folder /= "d";
  std::filesystem::create_directories(deep_folder);
  write_image((deep_folder / "c.png").string(), textured(48, 48, CV_8UC1, 3));

  const auto sources = list_sources(dir.path().string());
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0].report_path, "x/a.png");
  // The first folder on the way whose path passes PATH_MAX stands for what is below it.
  EXPECT_EQ(long_path.rfind(sources[1].path, 0), 0u) << sources[1].path;
  EXPECT_GT(sources[1].path.size(), 4095u);
  std::string deepest = "y";
  for (int i = 1; i < 64; ++i) deepest += "/d";  // the folder at depth 64: listed, not entered
  EXPECT_EQ(sources[2].report_path, deepest);
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  const ScanReport report = Scanner(options).scan(sources);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
  for (std::size_t i : {1u, 2u}) {
    ASSERT_TRUE(report.files[i].reason) << report.files[i].path;
    EXPECT_EQ(reason_code(*report.files[i].reason), "unreadable") << report.files[i].path;
  }
  EXPECT_NE(report.files[1].detail.find("File name too long"), std::string::npos) << report.files[1].detail;
  EXPECT_NE(report.files[2].detail.find("a folder"), std::string::npos) << report.files[2].detail;
}

TEST(ListSources, ManifestRowsOfEmptyFieldsAreBlankAndANulInAPathNamesNoFile) {
  // A spreadsheet's blank row (",") stopped the whole manifest ("the path is empty"); a path with a
  // NUL byte read the file named by what came before the NUL, labelled as the row said.
  TempDir dir("manifest-rows");
  write_image(dir / "a.png", textured(48, 48, CV_8UC1, 1));
  write_image(dir / "b.png", textured(48, 48, CV_8UC1, 2));
  write_bytes(dir / "m.csv", std::string("path,label\na.png,x\n,\n , \nb.png\0junk,y\n", 38));
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].report_path, "a.png");
  EXPECT_EQ(sources[1].path, dir / std::string("b.png\0junk", 10));
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  const ScanReport report = Scanner(options).scan(sources);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
  ASSERT_TRUE(report.files[1].reason);
  EXPECT_EQ(reason_code(*report.files[1].reason), "unreadable");
  EXPECT_NE(report.files[1].detail.find("holds a NUL byte"), std::string::npos) << report.files[1].detail;
}

TEST(ListSources, SpreadsheetExportsThatAreNoManifestSayWhy) {
  // UTF-16 ("Unicode text") and ';'- or tab-separated exports were told only "no 'path' column".
  TempDir dir("exports");
  const std::string utf16("\xFF\xFEp\0a\0t\0h\0,\0l\0a\0b\0e\0l\0\n\0", 24);
  const std::pair<std::string, std::string> cases[] = {
      {utf16, "as UTF-16 text does"},
      {"path;label\na.png;x\n", "it is one column, separated by ';'"},
      {"path\tlabel\na.png\tx\n", "it is one column, separated by tabs"},
      {"file,label\na.png,x\n", "no 'path' column (columns: path,label,patient_id[,metadata...])"},
  };
  for (const auto& [text, expected] : cases) {
    write_bytes(dir / "m.csv", text);
    try {
      list_sources(dir.path().string(), dir / "m.csv");
      ADD_FAILURE() << "expected FormatError for " << expected;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

TEST(ListSources, ManifestPathsThatLeaveTheManifestsFolderAreNotReadUnlessAllowed) {
  TempDir dir("outside");
  write_image(dir / "data/a.png", textured(48, 48, CV_8UC1, 3));
  write_image(dir / "data/b.png", textured(48, 48, CV_8UC1, 5));
  write_image(dir / "elsewhere.png", textured(48, 48, CV_8UC1, 4));
  write_bytes(dir / "data/m.csv",
              "path,label\na.png,x\n../elsewhere.png,x\n./sub/../b.png,x\n" + (dir / "elsewhere.png") +
                  ",x\n/etc/hostname,x\n../../../../etc/passwd,x\n");
  const auto sources = list_sources(dir.path().string(), dir / "data/m.csv");
  ASSERT_EQ(sources.size(), 6u);
  const std::vector<bool> outside = {false, true, false, true, true, true};
  for (std::size_t i = 0; i < sources.size(); ++i) EXPECT_EQ(sources[i].outside_root, outside[i]) << sources[i].report_path;
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  const ScanReport report = Scanner(options).scan(sources);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
  for (std::size_t i : {1u, 3u, 4u, 5u}) {
    ASSERT_TRUE(report.files[i].reason) << report.files[i].path;
    EXPECT_EQ(reason_code(*report.files[i].reason), "outside_root") << report.files[i].path;
    EXPECT_NE(report.files[i].detail.find("validate.allow_outside_root"), std::string::npos);
  }
  options.allow_outside_root = true;
  options.reject_duplicates = false;
  const ScanReport allowed = Scanner(options).scan(sources);
  EXPECT_TRUE(allowed.files[1].ok) << allowed.files[1].detail;
  EXPECT_TRUE(allowed.files[3].ok) << allowed.files[3].detail;
}

TEST(ListSources, MissingFolderOrManifestIsAnIoErrorNamingIt) {
  try {
    list_sources("/nonexistent/medload/input");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/medload/input"), std::string::npos);
  }
  EXPECT_THROW(list_sources(".", std::string("/nonexistent/m.csv")), IoError);
}

TEST(ListSources, ManifestInWindows1252IsReadAsUtf8FieldByFieldWithAWarning) {
  TempDir dir("cp1252");
  // A spreadsheet's export: 0xF4 is o-circumflex, 0x93/0x94 are curly quotes in Windows-1252.
  write_bytes(dir / "m.csv",
              "path,label,patient_id,site,note\n"
              "a.png,normal,P1,H\xF4pital Nord,\x93urgent\x94\n"
              "b.png,normal,P2,Z\xC3\xBCrich,plain\n");
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].info.site, "H\xC3\xB4pital Nord");
  EXPECT_EQ(sources[0].info.metadata.at("note"), "\xE2\x80\x9Curgent\xE2\x80\x9D");
  EXPECT_TRUE(has_warning(sources[0].warnings, "text_converted:site"));
  EXPECT_TRUE(has_warning(sources[0].warnings, "text_converted:note"));
  EXPECT_EQ(sources[0].warnings.size(), 2u);
  EXPECT_EQ(sources[1].info.site, "Z\xC3\xBCrich");  // already UTF-8: kept as it is
  EXPECT_TRUE(sources[1].warnings.empty());
}

TEST(ListSources, FileNameThatIsNotUtf8IsFoundAndReportedReadablyAndLosslessly) {
  TempDir dir("latin1name");
  write_image(dir / "normal/plain.png", textured(48, 48, CV_8UC1, 1));
  write_image(dir / "normal/M\xFCller.png", textured(48, 48, CV_8UC1, 2));
  write_image(dir / "K\xE4se/x.png", textured(48, 48, CV_8UC1, 3));
  const auto sources = list_sources(dir.path().string());
  ASSERT_EQ(sources.size(), 3u);
  const SourceFile& cheese = sources[0];
  EXPECT_EQ(cheese.report_path, "K\xC3\xA4se/x.png");
  EXPECT_EQ(cheese.path_bytes, "K%E4se/x.png");
  EXPECT_EQ(cheese.info.labels, std::vector<std::string>{"K\xC3\xA4se"});
  const SourceFile& mueller = sources[1];
  EXPECT_EQ(mueller.report_path, "normal/M\xC3\xBCller.png");
  EXPECT_EQ(mueller.path_bytes, "normal/M%FCller.png");
  EXPECT_EQ(mueller.path, dir / "normal/M\xFCller.png");  // the raw bytes, to open the file
  EXPECT_EQ(mueller.cache_path(), "normal/M%FCller.png");
  EXPECT_TRUE(has_warning(mueller.warnings, "path_not_utf8"));
  EXPECT_TRUE(sources[2].path_bytes.empty());
  EXPECT_EQ(sources[2].cache_path(), "normal/plain.png");

  // Decoded in this process and in worker processes (where the name crosses a JSON message).
  for (const Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    ValidationOptions options;
    options.threads = 2;
    options.isolation = isolation;
    const ScanReport report = Scanner(options).scan(sources);
    ASSERT_EQ(report.files.size(), 3u);
    const FileOutcome& outcome = report.files[1];
    EXPECT_TRUE(outcome.ok) << outcome.detail;
    EXPECT_EQ(outcome.path, "normal/M\xC3\xBCller.png");
    EXPECT_EQ(outcome.path_bytes, "normal/M%FCller.png");
    EXPECT_TRUE(has_warning(outcome.warnings, "path_not_utf8"));
    const std::string text = report.to_json().dump(2);
    EXPECT_TRUE(is_valid_utf8(text));
    const auto parsed = nlohmann::json::parse(text);
    EXPECT_EQ(parsed["files"][1]["path_bytes"], "normal/M%FCller.png");
    EXPECT_EQ(parsed["counts"]["warnings"]["path_not_utf8"], 2);
    EXPECT_EQ(percent_unescape(parsed["files"][1]["path_bytes"].get<std::string>()), "normal/M\xFCller.png");
  }
}

TEST(ListSources, ManifestPathNotUtf8NamesTheRawFileOrItsUtf8Reading) {
  TempDir dir("manifestname");
  write_bytes(dir / "raw/M\xFCller.png", "x");       // a Latin-1 name on disk
  write_bytes(dir / "utf8/M\xC3\xBCller.png", "x");  // a UTF-8 name on disk
  write_bytes(dir / "m.csv", "path,label\nraw/M\xFCller.png,a\nutf8/M\xFCller.png,a\n");
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].path, dir / "raw/M\xFCller.png");
  EXPECT_EQ(sources[0].report_path, "raw/M\xC3\xBCller.png");
  EXPECT_EQ(sources[0].path_bytes, "raw/M%FCller.png");
  EXPECT_TRUE(has_warning(sources[0].warnings, "path_not_utf8"));
  EXPECT_EQ(sources[1].path, dir / "utf8/M\xC3\xBCller.png");
  EXPECT_EQ(sources[1].report_path, "utf8/M\xC3\xBCller.png");
  EXPECT_TRUE(sources[1].path_bytes.empty());
  EXPECT_TRUE(has_warning(sources[1].warnings, "text_converted:path"));
}

TEST(ListSources, ManifestPatientIdsDifferingOnlyBySurroundingWhitespaceAreOnePatient) {
  TempDir dir("patients");
  write_bytes(dir / "m.csv",
              "path,patient_id\n"
              "a.png,P001\n"
              "b.png,P001 \n"
              "c.png,\" P001\t\"\n"
              "d.png,p001\n");
  const auto sources = list_sources(dir.path().string(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 4u);
  EXPECT_EQ(sources[0].info.patient_id, "P001");
  EXPECT_EQ(sources[1].info.patient_id, "P001");
  EXPECT_EQ(sources[2].info.patient_id, "P001");
  EXPECT_EQ(sources[3].info.patient_id, "p001");  // case is kept: another system's id may differ by case
}

TEST(ListSources, ManifestTargetColumnsGiveMasksBoxesAndLandmarksNotMetadata) {
  TempDir dir("targets");
  write_bytes(dir / "boxes/c.csv", "x0,y0,x1,y1,label\n1,1,9,9,2\n");
  write_bytes(dir / "points/c.csv", "x,y,label\n3,4,1\n");
  write_bytes(dir / "m.csv",
              "path,label,mask,boxes,landmarks,age\n"
              "a.png,x,masks/a.png,\"[[1,2,3,4,1],[0,0,5,5,\"\"liver\"\"]]\",\"[[1,1,2]]\",40\n"
              "b.png,x,,,,41\n"
              "c.png,x,,boxes/c.csv,points/c.csv,42\n"
              "d.png,x,,[],\" []\",43\n");
  const auto sources = list_sources(dir.str(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 4u);
  for (const SourceFile& s : sources) {
    EXPECT_EQ(s.info.metadata.size(), 1u) << s.report_path;  // age only
    EXPECT_TRUE(s.warnings.empty()) << s.report_path;
  }
  const TargetSources& a = sources[0].targets;
  EXPECT_EQ(a.mask_path, dir / "masks/a.png");
  EXPECT_EQ(a.mask_report_path, "masks/a.png");
  EXPECT_TRUE(a.mask_problem.empty());
  EXPECT_TRUE(a.boxes_given);
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_EQ(a.boxes[0].x1, 3);
  EXPECT_EQ(a.boxes[0].label, 1);
  ASSERT_EQ(a.box_names.size(), 1u);
  EXPECT_EQ(a.box_names[0].name, "liver");
  ASSERT_EQ(a.landmarks.size(), 1u);
  EXPECT_EQ(a.landmarks[0].label, 2);

  const TargetSources& b = sources[1].targets;  // empty cells: nothing given
  EXPECT_FALSE(b.any());
  EXPECT_FALSE(b.boxes_given);
  EXPECT_FALSE(b.landmarks_given);

  const TargetSources& c = sources[2].targets;
  EXPECT_TRUE(c.mask_path.empty());
  EXPECT_TRUE(c.boxes_problem.empty()) << c.boxes_problem;
  ASSERT_EQ(c.boxes.size(), 1u);
  EXPECT_EQ(c.boxes[0].x0, 1);
  EXPECT_EQ(c.boxes[0].y1, 9);
  EXPECT_EQ(c.boxes[0].label, 2);
  ASSERT_EQ(c.landmarks.size(), 1u);
  EXPECT_EQ(c.landmarks[0].x, 3);
  EXPECT_EQ(c.landmarks[0].y, 4);

  const TargetSources& d = sources[3].targets;  // given, zero of them: a negative image
  EXPECT_TRUE(d.boxes_given);
  EXPECT_TRUE(d.landmarks_given);
  EXPECT_TRUE(d.boxes.empty());
  EXPECT_TRUE(d.boxes_problem.empty());
  EXPECT_TRUE(d.landmarks_problem.empty());
}

TEST(ListSources, BadTargetTextIsAProblemOfItsKindAndTheManifestGoesOn) {
  TempDir dir("badtargets");
  write_bytes(dir / "outside.csv", "x,y,label\n1,1,1\n");
  write_bytes(dir / "data/big.csv", "x0,y0,x1,y1,label\n");
  std::filesystem::resize_file(dir / "data/big.csv", kMaxTargetCsvBytes + 1);
  std::filesystem::create_directory(dir / "data/folder.csv");
  write_bytes(dir / "data/m.csv",
              "path,mask,boxes,landmarks\n"
              "a.png,,\"[[1,2,3]]\",\n"
              "b.png,,missing.csv,\n"
              "c.png,,,../outside.csv\n"
              "d.png,../m.png,,\n"
              "e.png,,big.csv,\n"
              "f.png,,folder.csv,\"[[1, 2, 0]]\"\n"
              "g.png,m.png,\"[[0,0,1,1,1]]\",\"[[1,2,3]]\"\n");
  const auto sources = list_sources(dir.str(), dir / "data/m.csv");
  ASSERT_EQ(sources.size(), 7u);
  EXPECT_EQ(sources[0].targets.boxes_problem, "boxes: row 1: 4 numbers and a label expected, got 3 values");
  EXPECT_EQ(sources[1].targets.boxes_problem, "boxes: the file missing.csv does not exist or is not a file");
  EXPECT_TRUE(sources[1].targets.boxes_given);
  EXPECT_EQ(sources[2].targets.landmarks_problem,
            "landmarks: the file ../outside.csv leaves the manifest's folder");
  EXPECT_TRUE(sources[2].targets.landmarks.empty());
  EXPECT_EQ(sources[3].targets.mask_problem, "mask: the path leaves the manifest's folder");
  EXPECT_TRUE(sources[3].targets.mask_path.empty());  // not to be read
  EXPECT_EQ(sources[3].targets.mask_report_path, "../m.png");
  EXPECT_TRUE(sources[3].targets.any());
  EXPECT_FALSE(sources[3].outside_root);  // the image itself is inside
  EXPECT_EQ(sources[4].targets.boxes_problem, "boxes: the file big.csv is larger than 64 MiB");
  EXPECT_EQ(sources[5].targets.boxes_problem, "boxes: the file folder.csv does not exist or is not a file");
  EXPECT_TRUE(contains_text(sources[5].targets.landmarks_problem, "the label 0 is the background"))
      << sources[5].targets.landmarks_problem;
  const TargetSources& fine = sources[6].targets;
  EXPECT_TRUE(fine.boxes_problem.empty());
  EXPECT_EQ(fine.boxes.size(), 1u);
  EXPECT_EQ(fine.landmarks.size(), 1u);
  EXPECT_EQ(fine.mask_path, dir / "data/m.png");
}

TEST(ListSources, TargetTextThatIsNotUtf8IsReadAsWindows1252AndMaskNamesAsPathsAre) {
  TempDir dir("targettext");
  write_bytes(dir / "raw/M\xFCller.png", "x");       // a Latin-1 name on disk
  write_bytes(dir / "utf8/M\xC3\xBCller.png", "x");  // a UTF-8 name on disk
  write_bytes(dir / "b\xE9.csv", "x0,y0,x1,y1,label\n0,0,1,1,caf\xE9\n");
  write_bytes(dir / "m.csv",
              "path,mask,boxes\n"
              "a.png,raw/M\xFCller.png,\"[[0,0,1,1,\"\"caf\xE9\"\"]]\"\n"
              "b.png,utf8/M\xFCller.png,b\xE9.csv\n");
  const auto sources = list_sources(dir.str(), dir / "m.csv");
  ASSERT_EQ(sources.size(), 2u);
  const SourceFile& a = sources[0];
  EXPECT_EQ(a.targets.mask_path, dir / "raw/M\xFCller.png");
  EXPECT_EQ(a.targets.mask_report_path, "raw/M%FCller.png");  // lossless, and UTF-8
  EXPECT_TRUE(has_warning(a.warnings, "mask_path_not_utf8"));
  EXPECT_TRUE(has_warning(a.warnings, "text_converted:boxes"));
  ASSERT_EQ(a.targets.box_names.size(), 1u);
  EXPECT_EQ(a.targets.box_names[0].name, "caf\xC3\xA9");
  const SourceFile& b = sources[1];
  EXPECT_EQ(b.targets.mask_path, dir / "utf8/M\xC3\xBCller.png");
  EXPECT_EQ(b.targets.mask_report_path, "utf8/M\xC3\xBCller.png");
  EXPECT_TRUE(has_warning(b.warnings, "text_converted:mask"));
  EXPECT_TRUE(b.targets.boxes_problem.empty()) << b.targets.boxes_problem;
  ASSERT_EQ(b.targets.box_names.size(), 1u);
  EXPECT_EQ(b.targets.box_names[0].name, "caf\xC3\xA9");
}

TEST(NormalizePatientId, TrimsWhitespaceAndDicomPaddingButKeepsCaseAndInnerSpaces) {
  EXPECT_EQ(normalize_patient_id("  P001 "), "P001");
  EXPECT_EQ(normalize_patient_id(std::string("P001\0", 5)), "P001");
  EXPECT_EQ(normalize_patient_id("\xC2\xA0P001\r\n"), "P001");
  EXPECT_EQ(normalize_patient_id("AB 12"), "AB 12");
  EXPECT_EQ(normalize_patient_id("   "), "");
  EXPECT_EQ(loose_patient_id(" AB\t12 "), "ab12");
  EXPECT_EQ(loose_patient_id("ab12"), loose_patient_id("AB 12"));
  EXPECT_NE(loose_patient_id("ab12"), loose_patient_id("ab13"));
}

}  // namespace
}  // namespace medload::loader
