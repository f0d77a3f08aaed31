// `medload sample` end to end: a labels table in, a composition report (text and JSON) out.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

namespace {

struct Result {
  int status = -1;
  std::string output;
};

Result run(const std::string& arguments) {
  const std::string command = std::string(MEDLOAD_BINARY_DIR) + "/bin/medload sample " + arguments + " 2>&1";
  Result result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string write_labels() {
  const std::string path = ::testing::TempDir() + "medload_sample_labels.csv";
  std::ofstream out(path);
  out << "path,label,patient_id\n";
  // 60 normal, 15 pneumonia, 5 tb, one unlabelled.
  for (int i = 0; i < 80; ++i) {
    out << "img" << i << ".png," << (i < 60 ? "normal" : (i < 75 ? "pneumonia" : "tb")) << ",p" << i % 20 << "\n";
  }
  out << "img80.png,,p0\n";
  return path;
}

TEST(SampleCommand, ReportsExactOversampleCountsPerClassAndRankAsJson) {
  const Result r =
      run("--labels " + write_labels() + " --sampler oversample --split all --epochs 2 --world-size 3 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["class_names"], nlohmann::json({"normal", "pneumonia", "tb"}));
  EXPECT_EQ(j["dataset_size"], 80);
  ASSERT_EQ(j["epochs"].size(), 2u);
  EXPECT_EQ(j["epochs"][0]["class_counts"], nlohmann::json({60, 60, 60}));
  EXPECT_EQ(j["epochs"][1]["unique"], 80);
  ASSERT_EQ(j["epochs"][0]["ranks"].size(), 3u);
  for (const auto& rank : j["epochs"][0]["ranks"]) EXPECT_EQ(rank["draws"], 60);
}

TEST(SampleCommand, TextReportNamesTheUnlabelledSamples) {
  const Result r = run("--labels " + write_labels() + " --sampler sqrt --split all");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("80 labelled samples (1 unlabelled left out)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pneumonia"), std::string::npos) << r.output;
}

TEST(SampleCommand, BadSamplerIsAUsageError) {
  const Result r = run("--labels " + write_labels() + " --sampler smote");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("smote"), std::string::npos) << r.output;
}

}  // namespace
