// The main job in miniature, through the real command line: generated PNGs with a manifest ->
// `medload build` -> `medload split` -> train_classifier on the cache for one epoch, straight and
// killed (SIGKILL) then resumed, which must end identical.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

const std::string kBin = std::string(MEDLOAD_BINARY_DIR) + "/bin/";

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  nlohmann::json j;
  in >> j;
  return j;
}

// 48 images of 64 px, 24 patients x 2 images; "finding" (a bright disc) in 12 of them.
fs::path make_corpus(const fs::path& dir) {
  fs::create_directories(dir / "images");
  std::mt19937 rng(11);
  std::ofstream manifest(dir / "manifest.csv");
  manifest << "path,label,patient_id\n";
  for (int i = 0; i < 48; ++i) {
    const bool finding = i % 4 == 0;
    cv::Mat img(64, 64, CV_8UC1);
    cv::randu(img, cv::Scalar(40), cv::Scalar(120));
    cv::GaussianBlur(img, img, cv::Size(5, 5), 0);
    if (finding)
      cv::circle(img, cv::Point(10 + static_cast<int>(rng() % 44), 10 + static_cast<int>(rng() % 44)), 5, 230,
                 -1);
    const std::string name = "images/img_" + std::to_string(i) + ".png";
    cv::imwrite((dir / name).string(), img);
    manifest << name << "," << (finding ? "finding" : "normal") << ",patient_" << i / 2 << "\n";
  }
  return dir / "manifest.csv";
}

}  // namespace

TEST(TrainClassifierOnACache, KilledAndResumedRunMatchesAnUninterruptedOne) {
  const auto dir = fs::temp_directory_path() / ("medload_examples_e2e_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto manifest = make_corpus(dir / "corpus");
  const auto cache = (dir / "cache.h5").string();
  ASSERT_EQ(run(kBin + "medload build " + (dir / "corpus").string() + " --manifest " + manifest.string() +
                " -o " + cache + " --size 32 --threads 2 --quiet"),
            0);
  ASSERT_EQ(run(kBin + "medload split " + cache + " --ratios 0.6,0.4 --seed 1"), 0);

  const std::string tc = kBin + "train_classifier --cache " + cache +
                         " --epochs 2 --batch 4 --threads 2 --seed 3 --sampler weighted --quiet";
  ASSERT_EQ(run(tc + " --checkpoint " + (dir / "a").string() + " --metrics-out " + (dir / "a.json").string()),
            0);
  const std::string b = tc + " --checkpoint " + (dir / "b").string() + " --checkpoint-every 3";
  const int killed = run(b + " --kill-after-steps 10");
  ASSERT_TRUE(WIFEXITED(killed) && WEXITSTATUS(killed) == 128 + 9) << "status " << killed;
  ASSERT_EQ(run(b + " --resume --metrics-out " + (dir / "b.json").string()), 0);

  const auto a = read_json(dir / "a.json"), r = read_json(dir / "b.json");
  ASSERT_EQ(a["epochs"].size(), 2u);
  EXPECT_EQ(a["classes"], (nlohmann::json{"finding", "normal"}));
  EXPECT_GT(a["epochs"][0]["val"]["samples"].get<int>(), 10);
  EXPECT_TRUE(r.contains("resumed_from"));
  EXPECT_EQ(r["param_checksum"], a["param_checksum"]);
  EXPECT_EQ(r["epochs"], a["epochs"]);
  fs::remove_all(dir);
}
