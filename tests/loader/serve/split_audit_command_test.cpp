// `medload split` and `medload audit` end to end (the binary a full build makes).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "medload/loader/serve/split_store.h"
#include "medload_test/command.h"
#include "synthetic_images.h"
#include "test_cache.h"

namespace medload::loader {
namespace {

using medload::test::CommandResult;

CommandResult medload(const std::string& args) { return medload::test::run_medload(args); }

std::vector<testing::TestSample> dataset(bool with_copy) {
  std::vector<testing::TestSample> out;
  for (int i = 0; i < 40; ++i) {
    testing::TestSample s;
    s.pixels = testing::chest_like(static_cast<std::uint32_t>(700 + i), 64, i % 4 == 0);
    s.label = i % 4 == 0 ? 1 : 0;
    s.patient = i % 10 == 9 ? "" : "P" + std::to_string(i / 2);
    s.path = std::string(s.label ? "pneumonia/" : "normal/") + std::to_string(i) + ".png";
    out.push_back(std::move(s));
  }
  if (with_copy) {
    testing::TestSample copy = out[2];
    copy.pixels = testing::noised_brightened(copy.pixels, 15, 4, 1);
    copy.patient = "COPY";
    copy.path = "normal/copy-of-2.png";
    out.push_back(std::move(copy));
  }
  return out;
}

TEST(SplitAuditCommands, SplitStoresASplitAndACleanAuditExitsZero) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 64, 64, dataset(false));
  const CommandResult split =
      medload("split " + path + " --ratios 0.6,0.2,0.2 --seed 3 --kfold 3 --threads 1");
  ASSERT_EQ(split.exit_code, 0) << split.output;
  EXPECT_NE(split.output.find("4 samples without a patient id"), std::string::npos) << split.output;
  EXPECT_EQ(list_splits(path), (std::vector<std::string>{"default", "kfold"}));
  EXPECT_EQ(read_split(path, "default").ratios, (std::vector<double>{0.6, 0.2, 0.2}));
  const CommandResult audit = medload("audit " + path + " --threads 1");
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("no leakage found"), std::string::npos) << audit.output;
}

TEST(SplitAuditCommands, AuditExitsThreeAndNamesThePathsOfALeak) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 64, 64, dataset(true));
  ASSERT_EQ(medload("split " + path + " --seed 1").exit_code, 0);
  // Put the copy in a different part from its original, whatever the split chose.
  StoredSplit split = read_split(path, "default");
  split.part[40] = split.part[2] == 0 ? 2 : 0;
  write_split(path, split);
  const CommandResult audit = medload("audit " + path);
  EXPECT_EQ(audit.exit_code, 3) << audit.output;
  EXPECT_NE(audit.output.find("normal/copy-of-2.png"), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find("normal/2.png"), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find("LEAKAGE FOUND"), std::string::npos) << audit.output;
}

TEST(SplitAuditCommands, BadRatiosAreAUsageErrorAndAnAuditWithoutSplitAFailure) {
  testing::TempDir dir;
  const std::string path = dir.path("c.h5");
  testing::write_test_cache(path, 64, 64, dataset(false));
  const CommandResult bad = medload("split " + path + " --ratios 0.7,0.7");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("ratios"), std::string::npos) << bad.output;
  const CommandResult none = medload("audit " + path);
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_NE(none.output.find("medload split"), std::string::npos) << none.output;
}

}  // namespace
}  // namespace medload::loader
