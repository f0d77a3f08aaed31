#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/source.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
using test::write_bytes;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The FormatError message read_target_classes gives for a class map holding `json`.
std::string class_map_error(const std::string& json) {
  TempDir dir("classmap");
  write_bytes(dir / "classes.json", json);
  try {
    read_target_classes(dir / "classes.json");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no FormatError";
}

TargetSources boxes_from_json(const std::string& json) {
  TargetSources t;
  parse_boxes_json(json, t);
  return t;
}

TargetSources boxes_from_csv(const std::string& text) {
  TargetSources t;
  std::istringstream in(text);
  parse_boxes_csv(in, "b.csv", t);
  return t;
}

// ---- The class map ---------------------------------------------------------------------------

TEST(ReadTargetClasses, NamesIdsAndFillsTheGapsWithTheirNumbers) {
  TempDir dir("classmap");
  write_bytes(dir / "classes.json", "{\"1\": \"liver\", \"3\": \" tumour \", \"2\": \"2\"}");
  const TargetClasses classes = read_target_classes(dir / "classes.json");
  EXPECT_EQ(classes.names, (std::vector<std::string>{"background", "liver", "2", "tumour"}));
  EXPECT_EQ(classes.find("liver"), 1);
  EXPECT_EQ(classes.find("tumour"), 3);
  EXPECT_EQ(classes.find("background"), 0);
  EXPECT_EQ(classes.find("2"), 2);
  EXPECT_EQ(classes.find("3"), 3);  // an id names itself too
  EXPECT_EQ(classes.find("4"), std::nullopt);
  EXPECT_EQ(classes.find("Liver"), std::nullopt);
  EXPECT_EQ(classes.find("-1"), std::nullopt);
  EXPECT_EQ(classes.find(""), std::nullopt);
  EXPECT_TRUE(classes.contains(3));
  EXPECT_FALSE(classes.contains(4));
}

TEST(ReadTargetClasses, TheMapMayNameTheBackgroundAndMayBeEmpty) {
  TempDir dir("classmap");
  write_bytes(dir / "a.json", "{\"0\": \"normal tissue\", \"65535\": \"last\"}");
  const TargetClasses a = read_target_classes(dir / "a.json");
  ASSERT_EQ(a.names.size(), 65536u);
  EXPECT_EQ(a.names[0], "normal tissue");
  EXPECT_EQ(a.names[65535], "last");
  EXPECT_EQ(a.find("last"), 65535);
  write_bytes(dir / "b.json", "{}");
  EXPECT_EQ(read_target_classes(dir / "b.json").names, std::vector<std::string>{"background"});
}

TEST(ReadTargetClasses, HostileMapsAreFormatErrorsNamingTheFileAndEntry) {
  struct Case {
    std::string json, expected;
  };
  const std::vector<Case> cases = {
      {"{\"1\": \"caf\xE9\"}", "is not UTF-8 text"},
      {"\xFF\xFE{}", "is not UTF-8 text"},
      {"{\"65536\": \"too big\"}", "the entry '65536': the id is not a whole number 0..65535"},
      {"{\"-1\": \"negative\"}", "the entry '-1': the id is not a whole number"},
      {"{\"1.5\": \"fraction\"}", "the entry '1.5': the id is not a whole number"},
      {"{\"liver\": \"1\"}", "the entry 'liver': the id is not a whole number"},
      {"{\"99999999999999999999\": \"x\"}", "the id is not a whole number"},
      {"{\"1\": \"a\", \"2\": \"a\"}", "the name 'a' names both id 1 and id 2"},
      {"{\"2\": \"background\"}", "the name 'background' names both id 0 and id 2"},
      {"{\"1\": \"a\", \"1\": \"b\"}", "the entry '1' is there twice"},
      {"{\"1\": \"a\", \"01\": \"b\"}", "id 1 is named twice"},
      {"{\"1\": \"\"}", "the entry '1': the name is empty"},
      {"{\"1\": \"  \"}", "the entry '1': the name is empty"},
      {"{\"1\": 5}", "the entry '1': the name is not a string"},
      {"{\"1\": null}", "the name is not a string"},
      {"{\"2\": \"7\"}", "the name '7' is a number"},
      {"{\"2\": \"nan\"}", "the name 'nan' is a number"},
      {"[\"liver\"]", "a JSON object of id -> name expected"},
      {"\"liver\"", "a JSON object of id -> name expected"},
      {"42", "a JSON object of id -> name expected"},
      {"", "not valid JSON"},
      {"{\"1\": \"liver\"", "not valid JSON"},
      {"{\"1\": 1e400}", "not valid JSON"},
      {std::string(100000, '[') + std::string(100000, ']'), "nested deeper than 64 levels"},
      {std::string(64, '[') + std::string(64, ']'), "a JSON object of id -> name expected"},
  };
  for (const Case& c : cases) {
    const std::string what = class_map_error(c.json);
    EXPECT_TRUE(contains(what, c.expected)) << "for " << c.json.substr(0, 60) << ": " << what;
    EXPECT_TRUE(contains(what, "classes.json")) << what;
  }
}

TEST(ReadTargetClasses, AFileLargerThanTheCapIsAFormatErrorAndAMissingOneAnIoError) {
  TempDir dir("classmap");
  write_bytes(dir / "big.json", "{}");
  std::filesystem::resize_file(dir / "big.json", kMaxClassMapBytes + 1);
  try {
    read_target_classes(dir / "big.json");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_TRUE(contains(e.what(), "big.json is larger than 16 MiB")) << e.what();
  }
  EXPECT_THROW(read_target_classes(dir / "missing.json"), IoError);
  EXPECT_THROW(read_target_classes(dir.str()), IoError);  // a folder
}

// ---- Boxes and landmarks as JSON -------------------------------------------------------------

TEST(ParseBoxesJson, ReadsCoordinatesIdsAndNames) {
  const TargetSources t = boxes_from_json(
      "[[1, 2, 30, 40, 1], [0.5, -3, 10.25, 8, \"liver\"], [-0, 0, 1e2, 1, \"7\"], [0, 0, 1, 1, \"3D "
      "lesion\"]]");
  EXPECT_TRUE(t.boxes_given);
  EXPECT_TRUE(t.boxes_problem.empty()) << t.boxes_problem;
  ASSERT_EQ(t.boxes.size(), 4u);
  EXPECT_EQ(t.boxes[0].x0, 1);
  EXPECT_EQ(t.boxes[0].y0, 2);
  EXPECT_EQ(t.boxes[0].x1, 30);
  EXPECT_EQ(t.boxes[0].y1, 40);
  EXPECT_EQ(t.boxes[0].label, 1);
  EXPECT_EQ(t.boxes[1].x0, 0.5);
  EXPECT_EQ(t.boxes[1].y0, -3);  // partly outside: clipped when checked against the image
  EXPECT_EQ(t.boxes[1].x1, 10.25);
  EXPECT_EQ(t.boxes[1].label, 0);  // a name, until resolve_target_classes
  ASSERT_EQ(t.box_names.size(), 2u);
  EXPECT_EQ(t.box_names[0].index, 1u);
  EXPECT_EQ(t.box_names[0].name, "liver");
  EXPECT_EQ(t.box_names[1].index, 3u);
  EXPECT_EQ(t.box_names[1].name, "3D lesion");  // a name that starts with a digit
  EXPECT_EQ(t.boxes[2].x0, 0);
  EXPECT_EQ(t.boxes[2].x1, 100);
  EXPECT_EQ(t.boxes[2].label, 7);  // a number in a string is an id
  EXPECT_FALSE(t.landmarks_given);
}

TEST(ParseBoxesJson, AnEmptyListIsANegativeImage) {
  const TargetSources t = boxes_from_json(" [] ");
  EXPECT_TRUE(t.boxes_given);
  EXPECT_TRUE(t.boxes_problem.empty());
  EXPECT_TRUE(t.boxes.empty());
}

TEST(ParseBoxesJson, BadTextIsAProblemNamingTheRowAndLeavesNoBoxes) {
  struct Case {
    std::string json, expected;
  };
  std::string long_row = "[[0, 0, 1, 1, 1], [";
  for (int i = 0; i < 1000; ++i) long_row += "1,";
  long_row += "1]]";
  const std::vector<Case> cases = {
      {"[[1, 2, 3, 4]]", "boxes: row 1: 4 numbers and a label expected, got 4 values"},
      {"[[0, 0, 1, 1, 1], [1, 2, 3, 4, 5, 6]]", "boxes: row 2: 4 numbers and a label expected, got 6 values"},
      {long_row, "boxes: row 2: 4 numbers and a label expected, got 1001 values"},
      {"[[0, 0, 1, 1, 1], 7]", "boxes: row 2: 4 numbers and a label expected, got number"},
      {"[[5, 0, 5, 10, 1]]", "boxes: row 1: x1 (5) is not greater than x0 (5)"},
      {"[[0, 10, 5, 2, 1]]", "boxes: row 1: y1 (2) is not greater than y0 (10)"},
      {"[[\"1\", 2, 3, 4, 1]]", "boxes: row 1: x0 is not a number (string)"},
      {"[[0, 0, 1, null, 1]]", "boxes: row 1: y1 is not a number (null)"},
      {"[[0, 0, 1, 1, 0]]", "row 1: the label 0 is the background"},
      {"[[0, 0, 1, 1, -2]]", "row 1: the label '-2' is not a class id (1..65535)"},
      {"[[0, 0, 1, 1, 65536]]", "the label '65536' is not a class id"},
      {"[[0, 0, 1, 1, 2.5]]", "the label '2.5' is not a whole number"},
      {"[[0, 0, 1, 1, \"\"]]", "row 1: the label is empty"},
      {"[[0, 0, 1, 1, \"nan\"]]", "the label 'nan' is not a class id"},
      {"[[0, 0, 1, 1, \"1e400\"]]", "the label '1e400' is not a class id"},
      {"[[0, 0, 1, 1, \"-Inf\"]]", "the label '-Inf' is not a class id"},
      {"[[0, 0, 1, 1, \" +7.5 \"]]", "the label '+7.5' is not a whole number"},
      {"[[0, 0, 1, 1, \"-0\"]]", "the label 0 is the background"},
      {"[[0, 0, 1, 1, null]]", "row 1: the label is neither an id nor a name (null)"},
      {"[[0, 0, 1, 1, [1]]]", "the label is neither an id nor a name (array)"},
      {"[[0, 0, 1e400, 1, 1]]", "boxes: not valid JSON (number overflow parsing '1e400')"},
      {"[[0, 0, nan, 1, 1]]", "boxes: not valid JSON"},
      {"[[0, 0, 1, 1, 1]", "boxes: not valid JSON"},
      {"{\"x0\": 1}", "boxes: a JSON list of rows expected"},
      {"[[0, 0, 1, 1, 1]] [", "boxes: not valid JSON"},
  };
  for (const Case& c : cases) {
    const TargetSources t = boxes_from_json(c.json);
    EXPECT_TRUE(contains(t.boxes_problem, c.expected))
        << "for " << c.json.substr(0, 60) << ": " << t.boxes_problem;
    EXPECT_TRUE(t.boxes_given);
    EXPECT_TRUE(t.boxes.empty()) << c.json.substr(0, 60);
    EXPECT_TRUE(t.box_names.empty());
  }
}

TEST(ParseBoxesJson, MoreBoxesThanTheCapIsAProblem) {
  std::string json = "[";
  for (std::size_t i = 0; i <= kMaxTargetsPerImage; ++i) json += (i ? ",[0,0,1,1,1]" : "[0,0,1,1,1]");
  json += "]";
  const TargetSources over = boxes_from_json(json);
  EXPECT_TRUE(contains(over.boxes_problem, "more than 100000 boxes for one image")) << over.boxes_problem;
  EXPECT_TRUE(over.boxes.empty());
  json.erase(json.rfind(",["), std::string::npos);
  json += "]";
  EXPECT_EQ(boxes_from_json(json).boxes.size(), kMaxTargetsPerImage);
}

TEST(ParseLandmarksJson, ReadsPointsAndChecksTheirArity) {
  TargetSources t;
  parse_landmarks_json("[[3, 4, 1], [5.5, -0.5, \"left eye\"]]", t);
  EXPECT_TRUE(t.landmarks_given);
  EXPECT_TRUE(t.landmarks_problem.empty()) << t.landmarks_problem;
  ASSERT_EQ(t.landmarks.size(), 2u);
  EXPECT_EQ(t.landmarks[0].x, 3);
  EXPECT_EQ(t.landmarks[0].y, 4);
  EXPECT_EQ(t.landmarks[0].label, 1);
  EXPECT_EQ(t.landmarks[1].y, -0.5);
  ASSERT_EQ(t.landmark_names.size(), 1u);
  EXPECT_EQ(t.landmark_names[0].name, "left eye");
  EXPECT_FALSE(t.boxes_given);

  TargetSources bad;
  parse_landmarks_json("[[1, 2, 1], [1, 2]]", bad);
  EXPECT_EQ(bad.landmarks_problem, "landmarks: row 2: 2 numbers and a label expected, got 2 values");
  EXPECT_TRUE(bad.landmarks.empty());
  EXPECT_TRUE(bad.boxes_problem.empty());
}

// ---- Boxes and landmarks as CSV --------------------------------------------------------------

TEST(ParseBoxesCsv, ColumnsInAnyOrderExtraColumnsIgnoredBomAndCrlf) {
  const TargetSources t = boxes_from_csv(
      "\xEF\xBB\xBFlabel, x1,y1,x0,y0,note\r\n"
      "1,10,20,0,5,first\r\n"
      "\r\n"
      "\"liver\",5,6,1,2,\"multi\nline\"\r\n"
      "M\xFCller,5,6,1,2,\r\n");
  EXPECT_TRUE(t.boxes_problem.empty()) << t.boxes_problem;
  ASSERT_EQ(t.boxes.size(), 3u);
  EXPECT_EQ(t.boxes[0].x0, 0);
  EXPECT_EQ(t.boxes[0].y0, 5);
  EXPECT_EQ(t.boxes[0].x1, 10);
  EXPECT_EQ(t.boxes[0].y1, 20);
  EXPECT_EQ(t.boxes[0].label, 1);
  ASSERT_EQ(t.box_names.size(), 2u);
  EXPECT_EQ(t.box_names[0].index, 1u);
  EXPECT_EQ(t.box_names[0].name, "liver");
  EXPECT_EQ(t.box_names[1].name, "M\xC3\xBCller");  // Windows-1252, read as UTF-8
}

TEST(ParseBoxesCsv, AHeaderAloneIsANegativeImage) {
  const TargetSources t = boxes_from_csv("x0,y0,x1,y1,label\n");
  EXPECT_TRUE(t.boxes_given);
  EXPECT_TRUE(t.boxes_problem.empty()) << t.boxes_problem;
  EXPECT_TRUE(t.boxes.empty());
}

TEST(ParseBoxesCsv, BadTextIsAProblemNamingTheFileAndLine) {
  struct Case {
    std::string csv, expected;
  };
  const std::string header = "x0,y0,x1,y1,label\n";
  const std::vector<Case> cases = {
      {"", "boxes: b.csv: the file is empty"},
      {"x0,y0,x1,label\n", "boxes: b.csv line 1: the header has no column 'y1'"},
      {"x0,y0,x1,y1,label,x0\n", "boxes: b.csv line 1: the header names the column 'x0' twice"},
      {header + "0,0,1,1,1\n0,0,1,1\n", "boxes: b.csv line 3: 4 fields, the header has 5"},
      {header + "abc,0,1,1,1\n", "boxes: b.csv line 2: x0 'abc' is not a finite number"},
      {header + "nan,0,1,1,1\n", "x0 'nan' is not a finite number"},
      {header + "0,inf,1,1,1\n", "y0 'inf' is not a finite number"},
      {header + "0,0,1e400,1,1\n", "x1 '1e400' is not a finite number"},
      {header + "0x10,0,1,1,1\n", "x0 '0x10' is not a finite number"},
      {header + "0,0,,1,1\n", "x1 '' is not a finite number"},
      {header + "0,0,1,1,0\n", "boxes: b.csv line 2: the label 0 is the background"},
      {header + "0,0,1,1,-1\n", "the label '-1' is not a class id"},
      {header + "0,0,1,1,\n", "b.csv line 2: the label is empty"},
      {header + "3,0,1,1,1\n", "b.csv line 2: x1 (1) is not greater than x0 (3)"},
      {header + "0,0,1,1,\"open\n", "b.csv line 2: unterminated quoted field"},
  };
  for (const Case& c : cases) {
    const TargetSources t = boxes_from_csv(c.csv);
    EXPECT_TRUE(contains(t.boxes_problem, c.expected)) << "for " << c.csv << ": " << t.boxes_problem;
    EXPECT_TRUE(t.boxes_given);
    EXPECT_TRUE(t.boxes.empty());
  }
}

TEST(ParseLandmarksCsv, ReadsPointsByColumnName) {
  TargetSources t;
  std::istringstream in("y,label,x\n4,1,3\n-0,apex,1.5e1\n");
  parse_landmarks_csv(in, "l.csv", t);
  EXPECT_TRUE(t.landmarks_problem.empty()) << t.landmarks_problem;
  ASSERT_EQ(t.landmarks.size(), 2u);
  EXPECT_EQ(t.landmarks[0].x, 3);
  EXPECT_EQ(t.landmarks[0].y, 4);
  EXPECT_EQ(t.landmarks[1].x, 15);
  EXPECT_EQ(t.landmarks[1].y, 0);
  ASSERT_EQ(t.landmark_names.size(), 1u);
  EXPECT_EQ(t.landmark_names[0].name, "apex");

  TargetSources bad;
  std::istringstream bad_in("x0,y0,x1,y1,label\n");
  parse_landmarks_csv(bad_in, "l.csv", bad);
  EXPECT_EQ(bad.landmarks_problem, "landmarks: l.csv line 1: the header has no column 'x'");
}

// ---- The annotations CSV ---------------------------------------------------------------------

// A manifest of a.png, b.png and sub/c.png in `dir` (the files need not exist).
std::vector<SourceFile> three_inputs(const TempDir& dir) {
  write_bytes(dir / "m.csv", "path,label\na.png,x\nb.png,x\nsub/c.png,y\n");
  return list_sources(dir.str(), dir / "m.csv");
}

TEST(ReadAnnotations, RowsAddBoxesImagesWithoutRowsAreNegativesUnmatchedRowsAreCounted) {
  TempDir dir("annotations");
  std::vector<SourceFile> sources = three_inputs(dir);
  write_bytes(dir / "ann.csv",
              "label,height,width,y,x,path,reader\n"
              "1,20,10,2,1,a.png,r1\n"
              "lesion,1,1,5,5,a.png,r2\n"
              "2,3,3,0,0,./sub/x/../c.png,r1\n"
              "1,1,1,1,1,missing.png,r1\n"
              "1,1,1,1,1,missing.png,r2\n"
              "1,1,1,1,1,other.png,r1\n");
  const AnnotationsSummary summary = read_annotations(dir / "ann.csv", sources);
  EXPECT_EQ(summary.rows, 6u);
  EXPECT_EQ(summary.boxes, 3u);
  EXPECT_EQ(summary.unmatched_rows, 3u);
  EXPECT_EQ(summary.unmatched_paths, (std::vector<std::string>{"missing.png", "other.png"}));

  const TargetSources& a = sources[0].targets;
  EXPECT_TRUE(a.boxes_given);
  EXPECT_TRUE(a.boxes_problem.empty()) << a.boxes_problem;
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_EQ(a.boxes[0].x0, 1);
  EXPECT_EQ(a.boxes[0].y0, 2);
  EXPECT_EQ(a.boxes[0].x1, 11);
  EXPECT_EQ(a.boxes[0].y1, 22);
  EXPECT_EQ(a.boxes[0].label, 1);
  ASSERT_EQ(a.box_names.size(), 1u);
  EXPECT_EQ(a.box_names[0].index, 1u);
  EXPECT_EQ(a.box_names[0].name, "lesion");
  const TargetSources& b = sources[1].targets;  // no row: a negative
  EXPECT_TRUE(b.boxes_given);
  EXPECT_TRUE(b.boxes.empty());
  EXPECT_TRUE(b.boxes_problem.empty());
  ASSERT_EQ(sources[2].targets.boxes.size(), 1u);
  EXPECT_EQ(sources[2].targets.boxes[0].label, 2);
}

TEST(ReadAnnotations, ACsvElsewhereMatchesByItsFolderOrByReportPath) {
  TempDir dir("annotations");
  std::vector<SourceFile> sources = three_inputs(dir);
  write_bytes(dir / "labels/ann.csv",
              "path,x,y,width,height,label\n"
              "a.png,0,0,1,1,1\n"     // the report path
              "../b.png,0,0,2,2,1\n"  // joined to the CSV's folder
                  + (dir / "sub/c.png") +
                  ",0,0,3,3,1\n"                // absolute
                  "labels/a.png,0,0,1,1,1\n");  // dir/labels/labels/a.png, nor a report path
  const AnnotationsSummary summary = read_annotations(dir / "labels/ann.csv", sources);
  EXPECT_EQ(summary.unmatched_rows, 1u);
  ASSERT_EQ(sources[0].targets.boxes.size(), 1u);
  ASSERT_EQ(sources[1].targets.boxes.size(), 1u);
  EXPECT_EQ(sources[1].targets.boxes[0].x1, 2);
  ASSERT_EQ(sources[2].targets.boxes.size(), 1u);
  EXPECT_EQ(sources[2].targets.boxes[0].x1, 3);
}

TEST(ReadAnnotations, FolderTreeInputsAndNamesThatAreNotUtf8Match) {
  TempDir dir("annotations");
  write_bytes(dir / "normal/a.png", "x");
  write_bytes(dir / "normal/M\xFCller.png", "x");
  std::vector<SourceFile> sources = list_sources(dir.str());
  ASSERT_EQ(sources.size(), 2u);
  ASSERT_EQ(sources[0].path_bytes, "normal/M%FCller.png");  // sorted by report path: 'M' < 'a'
  write_bytes(dir / "ann.csv", "path,x,y,width,height,label\nnormal/M\xFCller.png,0,0,4,4,1\n");
  const AnnotationsSummary summary = read_annotations(dir / "ann.csv", sources);
  EXPECT_EQ(summary.unmatched_rows, 0u);
  ASSERT_EQ(sources[0].targets.boxes.size(), 1u);
  EXPECT_TRUE(sources[1].targets.boxes.empty());
  EXPECT_TRUE(sources[1].targets.boxes_given);
}

TEST(ReadAnnotations, ARowWithoutABoxListsANegativeImage) {
  TempDir dir("annotations");
  std::vector<SourceFile> sources = three_inputs(dir);
  write_bytes(dir / "ann.csv", "path,x,y,width,height,label\nb.png,,,,,\na.png, , , , ,\n");
  const AnnotationsSummary summary = read_annotations(dir / "ann.csv", sources);
  EXPECT_EQ(summary.rows, 2u);
  EXPECT_EQ(summary.boxes, 0u);
  EXPECT_EQ(summary.unmatched_rows, 0u);
  for (const SourceFile& s : sources) {
    EXPECT_TRUE(s.targets.boxes_given);
    EXPECT_TRUE(s.targets.boxes.empty());
    EXPECT_TRUE(s.targets.boxes_problem.empty()) << s.targets.boxes_problem;
  }
}

TEST(ReadAnnotations, ABadRowIsAProblemOfItsImageOnly) {
  struct Case {
    std::string row, expected;
  };
  const std::vector<Case> cases = {
      {"a.png,0,0,0,5,1", "width 0 is not positive"},
      {"a.png,0,0,5,-1,1", "height -1 is not positive"},
      {"a.png,nan,0,5,5,1", "x 'nan' is not a finite number"},
      {"a.png,0,1e400,5,5,1", "y '1e400' is not a finite number"},
      {"a.png,1e308,0,1e308,5,1", "x + width or y + height is not a finite number"},
      {"a.png,0,0,5,5,0", "the label 0 is the background"},
      {"a.png,0,0,5,5,-3", "the label '-3' is not a class id"},
      {"a.png,0,0,5,5,", "the label is empty"},
      {"a.png,0,0,5,,1", "height '' is not a finite number"},
  };
  for (const Case& c : cases) {
    TempDir dir("annotations");
    std::vector<SourceFile> sources = three_inputs(dir);
    write_bytes(dir / "ann.csv", "path,x,y,width,height,label\na.png,0,0,1,1,1\n" + c.row +
                                     "\na.png,0,0,1,1,1\nb.png,0,0,1,1,1\n");
    const AnnotationsSummary summary = read_annotations(dir / "ann.csv", sources);
    const TargetSources& a = sources[0].targets;
    EXPECT_TRUE(contains(a.boxes_problem, "boxes: " + (dir / "ann.csv") + " line 3: " + c.expected))
        << c.row << ": " << a.boxes_problem;
    EXPECT_TRUE(a.boxes_given);
    EXPECT_TRUE(a.boxes.empty());  // the whole kind is left out, rows before and after too
    EXPECT_TRUE(sources[1].targets.boxes_problem.empty());
    EXPECT_EQ(sources[1].targets.boxes.size(), 1u);
    EXPECT_EQ(summary.boxes, 1u);  // b's: a's boxes are left out whole
  }
}

TEST(ReadAnnotations, BoxesGivenByTheManifestAndTheCsvAreAProblemWhereBothSpeak) {
  TempDir dir("annotations");
  write_bytes(dir / "m.csv", "path,boxes\na.png,\"[[0,0,1,1,1]]\"\nb.png,\"[[0,0,2,2,1]]\"\nc.png,\n");
  std::vector<SourceFile> sources = list_sources(dir.str(), dir / "m.csv");
  write_bytes(dir / "ann.csv", "path,x,y,width,height,label\na.png,0,0,5,5,1\n");
  read_annotations(dir / "ann.csv", sources);
  EXPECT_TRUE(
      contains(sources[0].targets.boxes_problem, "the manifest's boxes column gives this image's boxes too"))
      << sources[0].targets.boxes_problem;
  EXPECT_TRUE(sources[0].targets.boxes.empty());
  ASSERT_EQ(sources[1].targets.boxes.size(), 1u);  // the manifest's, untouched
  EXPECT_EQ(sources[1].targets.boxes[0].x1, 2);
  EXPECT_TRUE(sources[2].targets.boxes_given);  // a negative
}

TEST(ReadAnnotations, StructuralErrorsAreFormatErrorsNamingTheFileAndLine) {
  struct Case {
    std::string csv, expected;
  };
  const std::vector<Case> cases = {
      {"", "ann.csv is empty (expected a header line"},
      {"\n\n", "ann.csv is empty"},
      {"path,x,y,width,label\na.png,0,0,1,1\n",
       "ann.csv line 1: the annotations header has no 'height' column"},
      {"path,x,y,width,height,label,x\n",
       "ann.csv line 1: the annotations header names the column 'x' twice"},
      {"path,x,y,width,height,label\na.png,0,0,1,1\n", "ann.csv line 2: 5 fields, the header has 6"},
      {"path,x,y,width,height,label\na.png,0,0,1,1,1\n\"b.png,0,0,1,1,1\n",
       "ann.csv line 3: unterminated quoted field"},
  };
  for (const Case& c : cases) {
    TempDir dir("annotations");
    std::vector<SourceFile> sources = three_inputs(dir);
    write_bytes(dir / "ann.csv", c.csv);
    try {
      read_annotations(dir / "ann.csv", sources);
      ADD_FAILURE() << "expected FormatError for " << c.csv;
    } catch (const FormatError& e) {
      EXPECT_TRUE(contains(e.what(), c.expected)) << e.what();
    }
  }
  TempDir dir("annotations");
  std::vector<SourceFile> sources = three_inputs(dir);
  EXPECT_THROW(read_annotations(dir / "missing.csv", sources), IoError);
}

// ---- Label names to ids ----------------------------------------------------------------------

TEST(ResolveTargetClasses, WithoutAMapNamesGetIdsInSortedOrderAcrossBoxesAndLandmarks) {
  std::vector<SourceFile> sources(2);
  parse_boxes_json("[[0,0,1,1,\"tumour\"],[0,0,1,1,\"cyst\"]]", sources[0].targets);
  parse_landmarks_json("[[1,1,\"apex\"]]", sources[0].targets);
  parse_boxes_json("[[0,0,1,1,\"cyst\"]]", sources[1].targets);
  const TargetClasses classes = resolve_target_classes(sources, std::nullopt);
  EXPECT_EQ(classes.names, (std::vector<std::string>{"background", "apex", "cyst", "tumour"}));
  const TargetSources& t = sources[0].targets;
  EXPECT_TRUE(t.boxes_problem.empty()) << t.boxes_problem;
  ASSERT_EQ(t.boxes.size(), 2u);
  EXPECT_EQ(t.boxes[0].label, 3);
  EXPECT_EQ(t.boxes[1].label, 2);
  EXPECT_EQ(t.landmarks[0].label, 1);
  EXPECT_TRUE(t.box_names.empty());
  EXPECT_TRUE(t.landmark_names.empty());
  EXPECT_EQ(t.class_count, 0);
  EXPECT_EQ(sources[1].targets.boxes[0].label, 2);
  // A second call keeps the ids (and, with no names left, names them by their numbers).
  EXPECT_EQ(resolve_target_classes(sources, std::nullopt).names.size(), 4u);
  EXPECT_EQ(sources[0].targets.boxes[0].label, 3);
  EXPECT_EQ(sources[0].targets.landmarks[0].label, 1);
}

TEST(ResolveTargetClasses, WithoutAMapIdsNameThemselvesAndMixingIdsWithNamesIsAProblem) {
  std::vector<SourceFile> ids(2);
  parse_boxes_json("[[0,0,1,1,2]]", ids[0].targets);
  parse_landmarks_json("[[0,0,5]]", ids[1].targets);
  EXPECT_EQ(resolve_target_classes(ids, std::nullopt).names,
            (std::vector<std::string>{"background", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(ids[0].targets.boxes[0].label, 2);

  std::vector<SourceFile> mixed(2);
  parse_boxes_json("[[0,0,1,1,\"liver\"],[0,0,1,1,2]]", mixed[0].targets);
  parse_boxes_json("[[0,0,1,1,\"liver\"]]", mixed[1].targets);
  parse_landmarks_json("[[0,0,\"background\"]]", mixed[1].targets);
  const TargetClasses classes = resolve_target_classes(mixed, std::nullopt);
  EXPECT_EQ(classes.names, (std::vector<std::string>{"background", "liver"}));
  EXPECT_EQ(
      mixed[0].targets.boxes_problem,
      "boxes: box 2: the label 2 is an id while other labels are names; a class map (id -> name) says which "
      "name it is");
  EXPECT_TRUE(mixed[0].targets.boxes.empty());
  EXPECT_TRUE(mixed[1].targets.boxes_problem.empty());
  EXPECT_EQ(mixed[1].targets.boxes[0].label, 1);
  EXPECT_EQ(mixed[1].targets.landmarks_problem,
            "landmarks: landmark 1: the label 'background' is the background (id 0), which no landmark is");
}

TEST(ResolveTargetClasses, WithAMapNamesAndIdsMustBeInIt) {
  TempDir dir("classmap");
  write_bytes(dir / "classes.json", "{\"1\": \"liver\", \"3\": \"tumour\"}");
  const TargetClasses map = read_target_classes(dir / "classes.json");
  std::vector<SourceFile> sources(4);
  parse_boxes_json("[[0,0,1,1,\"tumour\"],[0,0,1,1,2],[0,0,1,1,\"liver\"]]", sources[0].targets);
  parse_boxes_json("[[0,0,1,1,1],[0,0,1,1,\"polyp\"]]", sources[1].targets);
  parse_boxes_json("[[0,0,1,1,4]]", sources[2].targets);
  parse_landmarks_json("[[0,0,\"3\"]]", sources[3].targets);
  const TargetClasses classes = resolve_target_classes(sources, map);
  EXPECT_EQ(classes.names, map.names);
  const TargetSources& first = sources[0].targets;
  EXPECT_TRUE(first.boxes_problem.empty()) << first.boxes_problem;
  EXPECT_EQ(first.boxes[0].label, 3);
  EXPECT_EQ(first.boxes[1].label, 2);  // unnamed, but within the map's ids
  EXPECT_EQ(first.boxes[2].label, 1);
  EXPECT_EQ(first.class_count, 4);
  EXPECT_EQ(sources[1].targets.boxes_problem, "boxes: box 2: the label 'polyp' is not in the class map");
  EXPECT_TRUE(sources[1].targets.boxes.empty());
  EXPECT_EQ(sources[2].targets.boxes_problem, "boxes: box 1: the label 4 is not in the class map (ids 0..3)");
  EXPECT_EQ(sources[3].targets.landmarks[0].label, 3);
}

}  // namespace
}  // namespace medload::loader
