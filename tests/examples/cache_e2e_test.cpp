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

// The corpus in `dir`, built into dir/cache.h5 (32 px) by the medload command and split 0.6/0.4
// by patient; the cache's path, or "" when a command failed.
std::string build_split_cache(const fs::path& dir) {
  fs::remove_all(dir);
  const auto manifest = make_corpus(dir / "corpus");
  const auto cache = (dir / "cache.h5").string();
  if (run(kBin + "medload build " + (dir / "corpus").string() + " --manifest " + manifest.string() + " -o " +
          cache + " --size 32 --threads 2 --quiet") != 0 ||
      run(kBin + "medload split " + cache + " --ratios 0.6,0.4 --seed 1") != 0) {
    return "";
  }
  return cache;
}

}  // namespace

TEST(TrainClassifierOnACache, KilledAndResumedRunMatchesAnUninterruptedOne) {
  const auto dir = fs::temp_directory_path() / ("medload_examples_e2e_" + std::to_string(::getpid()));
  const auto cache = build_split_cache(dir);
  ASSERT_FALSE(cache.empty());

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

// train_semisupervised on the same kind of cache: a few labelled patients, supervised and
// semi-supervised runs per seed, reproducible, with its bad options refused.
TEST(TrainSemiSupervisedOnACache, WritesBothRunsPerSeedReproduciblyAndRefusesBadOptions) {
  const auto dir = fs::temp_directory_path() / ("medload_examples_semi_" + std::to_string(::getpid()));
  const auto cache = build_split_cache(dir);
  ASSERT_FALSE(cache.empty());

  const std::string ts =
      kBin + "train_semisupervised --cache " + cache +
      " --seeds 0,1 --steps 4 --batch 2 --mu 3 --label-fraction 0.25 --unit-rows 0 --threads 2 --quiet";
  ASSERT_EQ(run(ts + " --metrics-out " + (dir / "a.json").string()), 0);
  ASSERT_EQ(run(ts + " --metrics-out " + (dir / "b.json").string()), 0);
  const auto a = read_json(dir / "a.json"), b = read_json(dir / "b.json");
  ASSERT_EQ(a["runs"].size(), 2u);
  EXPECT_EQ(a["mu"], 3);
  EXPECT_EQ(a["label_unit"], "patient");
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& r = a["runs"][i];
    EXPECT_LT(r["kept_units"].get<int>(), r["labelled_units"].get<int>());
    EXPECT_GT(r["unlabelled_rows"].get<int>(), r["labelled_rows"].get<int>());
    for (const char* run_name : {"supervised", "semi_supervised"}) {
      EXPECT_EQ(r[run_name]["steps"], 4) << run_name;
      EXPECT_GT(r[run_name]["val"]["samples"].get<int>(), 10) << run_name;
      EXPECT_TRUE(r[run_name]["val"]["balanced_accuracy"].is_number()) << run_name;
    }
    const double mask_rate = r["semi_supervised"]["mask_rate"].get<double>();
    EXPECT_GE(mask_rate, 0.0);
    EXPECT_LE(mask_rate, 1.0);
    // Same seeds, same runs (seconds aside).
    for (const char* run_name : {"supervised", "semi_supervised"}) {
      EXPECT_EQ(r[run_name]["val"], b["runs"][i][run_name]["val"]) << run_name;
    }
    EXPECT_EQ(r["semi_supervised"]["mask_rate"], b["runs"][i]["semi_supervised"]["mask_rate"]);
  }
  EXPECT_TRUE(a["val_balanced_accuracy"]["within_noise"].is_boolean());
  EXPECT_GE(a["val_roc_auc"]["seeds"].get<int>(), 1);

  // Bad options: usage errors (exit 2), never a silent supervised run.
  const std::string base = kBin + "train_semisupervised --cache " + cache + " --steps 2 --quiet";
  for (const std::string bad : {" --mu 0", " --label-fraction 0", " --label-fraction 1", " --batch 0",
                                " --threshold 0", " --label-fraction 0.99 --unit-rows 0"}) {
    const int status = run(base + bad);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << bad << ": status " << status;
  }
  fs::remove_all(dir);
}
