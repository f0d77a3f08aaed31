// `medload scan`: report, summary, exit codes.

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace medload::test {
namespace {

TEST(ScanCommand, WritesTheReportAndASummaryAndExitsZero) {
  TempDir dir("cmd");
  write_image(dir / "in/normal/a.png", textured(48, 48, CV_8UC1, 1));
  write_bytes(dir / "in/normal/empty.png", "");
  const std::string report = dir / "out/scan.json";
  const auto r = run_medload("scan " + (dir / "in") + " --report " + report + " --threads 2 -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 files: 1 ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("empty_file: 1"), std::string::npos) << r.output;
  std::ifstream in(report);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("counts").at("total"), 2);
  EXPECT_EQ(j.at("files")[0].at("path"), "normal/a.png");
}

TEST(ScanCommand, ManifestPathsAreRelativeToTheManifest) {
  TempDir dir("cmdmanifest");
  write_image(dir / "img/x.png", textured(48, 48, CV_8UC1, 2));
  write_bytes(dir / "m.csv", "path,label,patient_id\nimg/x.png,normal,P1\nimg/missing.png,,P2\n");
  const auto r = run_medload("scan " + dir.path().string() + " --manifest " + (dir / "m.csv") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 files: 1 ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unreadable: 1"), std::string::npos) << r.output;
}

TEST(ScanCommand, AReportNamingAnInputImageOrTheManifestIsRefusedAndTheInputKept) {
  TempDir dir("cmdoverwrite");
  write_image(dir / "in/a.png", textured(48, 48, CV_8UC1, 3));
  write_bytes(dir / "in/m.csv", "path,label\na.png,x\n");
  std::ifstream original_in(dir / "in/a.png", std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(original_in)), {});
  for (const std::string& report : {dir / "in/a.png", dir / "in/./a.png", dir / "in/m.csv"}) {
    const auto r = run_medload("scan " + (dir / "in") + " --manifest " + (dir / "in/m.csv") + " --report " +
                               report + " -q");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--report"), std::string::npos) << r.output;
  }
  std::ifstream after_in(dir / "in/a.png", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(after_in)), {}), before);
}

TEST(ScanCommand, UsageErrorsExitTwoNamingTheOption) {
  auto r = run_medload("scan /tmp --threads 999");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--threads"), std::string::npos) << r.output;
  r = run_medload("scan");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("ROOT"), std::string::npos) << r.output;
  r = run_medload("scan /tmp --min-side 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--min-side"), std::string::npos) << r.output;
}

TEST(ScanCommand, MissingRootFailsWithExitOneNamingIt) {
  const auto r = run_medload("scan /nonexistent/medload/root -q");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/medload/root"), std::string::npos) << r.output;
}

TEST(ScanCommand, HelpExplainsEveryOption) {
  const auto r = run_medload("scan --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option :
       {"--manifest", "--report", "--threads", "--max-pixels", "--min-side", "--in-process"}) {
    EXPECT_NE(r.output.find(option), std::string::npos) << option;
  }
}

}  // namespace
}  // namespace medload::test
