#include <gtest/gtest.h>

#include "medload/core/error.h"
#include "medload/loader/ingest/source.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
using test::write_bytes;

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

TEST(ListSources, MissingFolderOrManifestIsAnIoErrorNamingIt) {
  try {
    list_sources("/nonexistent/medload/input");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/medload/input"), std::string::npos);
  }
  EXPECT_THROW(list_sources(".", std::string("/nonexistent/m.csv")), IoError);
}

}  // namespace
}  // namespace medload::loader
