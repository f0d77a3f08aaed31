// train_segmenter end to end on the real mricron-data slices with a tiny budget (32 px, a narrow
// U-Net, a few epochs: seconds on 2 cores): the slice set, the cache with masks and boxes, the
// patient-level split, training on the masks the Loader serves, and Dice in the metrics file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "medload_test/require_data.h"
#include "medload_test/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const std::string kTemplates = "/usr/share/mricron/templates";

int run(const std::string& command, const std::string& log) {
  return std::system((command + " >" + log + " 2>&1").c_str());
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(TrainSegmenter, LearnsTheHemispheresOfRealMrSlicesAndReportsDicePerClass) {
  MEDLOAD_REQUIRE_DATA(fs::exists(kTemplates + "/ch2.nii.gz"),
                       "no " << kTemplates << " (scripts/setup.sh installs the Debian package mricron-data)");
  medload::test::TempDir dir("train_segmenter");
  const std::string metrics = dir / "metrics.json", log = dir / "log.txt";
  const std::string command =
      std::string(MEDLOAD_BINARY_DIR) + "/bin/train_segmenter --work " + dir.str() +
      " --size 32 --width 4 --epochs 6 --batch 4 --threads 2 --seed 1 --metrics-out " + metrics;
  ASSERT_EQ(run(command, log), 0) << slurp(log);
  std::ifstream in(metrics);
  const auto j = nlohmann::json::parse(in);

  EXPECT_EQ(j["classes"], (nlohmann::json{"background", "left_cerebrum", "right_cerebrum", "cerebellum"}));
  ASSERT_EQ(j["epochs"].size(), 6u);
  const auto& val = j["val"];
  EXPECT_EQ(val, j["epochs"][5]["val"]);
  // The validation part: whole blocks of slices (patients), 32 x 32 pixels each, every one counted.
  const auto images = val["images"].get<std::int64_t>();
  EXPECT_GT(images, 15);
  EXPECT_EQ(val["pixels"].get<std::int64_t>(), images * 32 * 32);
  std::int64_t support = 0;
  for (const auto& [name, n] : val["support"].items()) {
    EXPECT_GT(n.get<std::int64_t>(), 0) << name << " is absent from the validation part";
    support += n.get<std::int64_t>();
  }
  EXPECT_EQ(support, val["pixels"].get<std::int64_t>());
  for (const char* c : {"background", "left_cerebrum", "right_cerebrum", "cerebellum"}) {
    ASSERT_TRUE(val["dice"].contains(c)) << c;
    ASSERT_TRUE(val["dice"][c].is_number()) << c;  // present in the truth: defined
  }
  const auto& parts = j["split"]["parts"];
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]["samples"].get<int>() + parts[1]["samples"].get<int>(),
            j["slices"]["slices"].get<int>());
  EXPECT_EQ(parts[0]["patients"].get<int>() + parts[1]["patients"].get<int>(),
            j["slices"]["patients"].get<int>());
  // It learned: the training loss fell, and the hemispheres (a third of the pixels) are found.
  EXPECT_LT(j["epochs"][5]["train_loss"].get<double>(), j["epochs"][0]["train_loss"].get<double>());
  EXPECT_GT(val["dice"]["left_cerebrum"].get<double>(), 0.6) << val.dump();
  EXPECT_GT(val["dice"]["right_cerebrum"].get<double>(), 0.6) << val.dump();
  EXPECT_GT(val["pixel_accuracy"].get<double>(), 0.8) << val.dump();
}
