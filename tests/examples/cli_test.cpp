// train_classifier and ddp_train as a user runs them: a run killed by SIGKILL and resumed ends
// exactly where an uninterrupted one does; ranks of ddp_train end with identical parameters and
// together consume the one-process sample stream.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

const std::string kBin = std::string(MEDLOAD_BINARY_DIR) + "/bin/";

fs::path fresh_dir(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("medload_examples_cli_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs a command line; returns its wait status.
int run(const std::string& command) { return std::system((command + " 2>>" + "/dev/null").c_str()); }

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  nlohmann::json j;
  in >> j;
  return j;
}

// 96 generated images of 24 px (72 train / 24 val), small enough for a few seconds per run.
const std::string kData = " --synthetic 96 --size 24 --batch 8 --threads 2 --seed 4 --quiet";

}  // namespace

TEST(TrainClassifier, KilledAndResumedRunMatchesAnUninterruptedOne) {
  const auto dir = fresh_dir("kill");
  const std::string tc = kBin + "train_classifier" + kData + " --epochs 2 --sampler balanced";
  ASSERT_EQ(run(tc + " --checkpoint " + (dir / "a").string() + " --metrics-out " + (dir / "a.json").string()),
            0);

  // SIGKILL after step 13 (epoch 2), the last checkpoint was step 12: nothing runs at exit.
  const std::string b = tc + " --checkpoint " + (dir / "b").string() + " --checkpoint-every 4";
  const int killed = run(b + " --kill-after-steps 13 --metrics-out " + (dir / "never.json").string());
  ASSERT_TRUE(WIFEXITED(killed) && WEXITSTATUS(killed) == 128 + 9) << "status " << killed;
  EXPECT_FALSE(fs::exists(dir / "never.json"));
  ASSERT_EQ(run(b + " --resume --metrics-out " + (dir / "b.json").string()), 0);

  const auto a = read_json(dir / "a.json"), r = read_json(dir / "b.json");
  EXPECT_EQ(r["resumed_from"]["epoch"], 2);
  EXPECT_EQ(r["resumed_from"]["batch"], 12 - a["epochs"][0]["steps"].get<int>());
  EXPECT_EQ(r["param_checksum"], a["param_checksum"]);
  EXPECT_EQ(r["epochs"], a["epochs"]);  // losses and every metric, bit for bit
  fs::remove_all(dir);
}

TEST(TrainClassifier, WritesTheDocumentedMetricsFile) {
  const auto dir = fresh_dir("metrics");
  ASSERT_EQ(run(kBin + "train_classifier" + kData + " --epochs 1 --metrics-out " + (dir / "m.json").string()),
            0);
  const auto j = read_json(dir / "m.json");
  ASSERT_EQ(j["epochs"].size(), 1u);
  const auto& e = j["epochs"][0];
  EXPECT_EQ(e["epoch"], 1);
  EXPECT_TRUE(e["train_loss"].is_number());
  for (const char* key : {"accuracy", "balanced_accuracy", "roc_auc"})
    EXPECT_TRUE(e["val"].contains(key)) << key;
  EXPECT_TRUE(e["val"]["recall"].contains("normal"));
  EXPECT_TRUE(e["val"]["recall"].contains("nodule"));
  EXPECT_EQ(j["param_checksum"].get<std::string>().size(), 16u);
  fs::remove_all(dir);
}

TEST(TrainClassifier, ExitsWithTwoOnABadFlag) {
  const int status = run(kBin + "train_classifier --synthetic 96 --sampler random");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const int both = run(kBin + "train_classifier --synthetic 96 --cache x.h5");
  EXPECT_TRUE(WIFEXITED(both) && WEXITSTATUS(both) == 2);
}

TEST(TrainClassifier, IntegerFlagsTakeDecimalDigitsOnly) {
  // CLI11 read --batch 0x8 as 8, --epochs 010 as octal 8 and a count past 2^64 - 1 as 2^64 - 1
  // (which then asked for a vector larger than max_size()).
  for (const std::string flags :
       {"--batch 0x8", "--synthetic 18446744073709551617", "--seed -1", "--epochs 1e3"}) {
    const int status = run(kBin + "train_classifier --synthetic 96 --size 24 --quiet " + flags);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << flags;
  }
  const fs::path dir = fresh_dir("decimal");
  ASSERT_EQ(
      run(kBin + "train_classifier" + kData + " --epochs 02 --metrics-out " + (dir / "m.json").string()), 0);
  EXPECT_EQ(read_json(dir / "m.json").at("epochs").size(), 2u);  // 02 is two, in decimal
  fs::remove_all(dir);
}

#ifdef MEDLOAD_HAVE_DDP_TRAIN
TEST(DdpTrain, RanksEndIdenticalAndTogetherSeeTheOneProcessStream) {
  const auto dir = fresh_dir("ddp");
  const std::string flags = kData + " --epochs 2 --sampler balanced --record-samples";
  // Two ranks of batch 8 take the global stream 16 positions per step; one process of batch 16
  // takes the same 16 positions per step.
  ASSERT_EQ(run(kBin + "ddp_train --world-size 2" + flags + " --metrics-out " + (dir / "ddp.json").string()),
            0);
  ASSERT_EQ(run(kBin + "train_classifier" + flags + " --metrics-out " + (dir / "one.json").string()), 0);
  const auto ddp = read_json(dir / "ddp.json"), one = read_json(dir / "one.json");
  EXPECT_EQ(ddp["world_size"], 2);
  EXPECT_EQ(ddp["params_identical"], true);
  ASSERT_EQ(ddp["ranks"].size(), 2u);
  EXPECT_EQ(ddp["ranks"][0]["param_checksum"], ddp["ranks"][1]["param_checksum"]);
  // Validation metrics agree too: every rank evaluates the same model.
  EXPECT_EQ(ddp["ranks"][0]["epochs"].back()["val"], ddp["ranks"][1]["epochs"].back()["val"]);
  for (std::size_t e = 0; e < 2; ++e) {
    const auto r0 = ddp["ranks"][0]["samples"][e].get<std::vector<std::int64_t>>();
    const auto r1 = ddp["ranks"][1]["samples"][e].get<std::vector<std::int64_t>>();
    const auto global = one["samples"][e].get<std::vector<std::int64_t>>();
    ASSERT_EQ(r0.size(), r1.size());
    ASSERT_EQ(r0.size() + r1.size(), global.size()) << "epoch " << e + 1;
    // Rank r holds global positions r, r + 2, r + 4, ...
    for (std::size_t k = 0; k < r0.size(); ++k) {
      EXPECT_EQ(r0[k], global[2 * k]) << "epoch " << e + 1 << " position " << 2 * k;
      EXPECT_EQ(r1[k], global[2 * k + 1]) << "epoch " << e + 1 << " position " << 2 * k + 1;
    }
  }
  fs::remove_all(dir);
}

TEST(DdpTrain, AFailingRankFailsTheLaunch) {
  // Rank processes get a cache that does not exist: every rank fails, the launcher exits 1.
  const int status = run(kBin + "ddp_train --world-size 2 --cache /nonexistent/cache.h5 --quiet");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
}
#endif
