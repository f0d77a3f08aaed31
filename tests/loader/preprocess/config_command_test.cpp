// The `medload config` command, run as a user runs it.

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "medload_test/command.h"

namespace {

using medload::test::run_medload;
using Result = medload::test::CommandResult;

TEST(ConfigCommand, WithoutAnActionIsAUsageError) {
  const Result r = run_medload("config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--print-default"), std::string::npos) << r.output;
}

TEST(ConfigCommand, PrintsTheDefaultConfig) {
  Result r = run_medload("config --print-default", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("preprocess").at("letterbox").at("size"), 256);
  EXPECT_EQ(j.at("preprocess").at("output_dtype"), "uint8");
  EXPECT_TRUE(j.contains("validate"));
  EXPECT_TRUE(j.contains("augment"));
}

TEST(ConfigCommand, ChecksAConfigAndPrintsItsHash) {
  const std::string path =
      ::testing::TempDir() + "medload_config_command_test_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"letterbox": {"size": 512}}})";
  }
  Result r = run_medload("config --check " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("config hash: "), std::string::npos) << r.output;
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"letterbox": {"size": 3}}})";
  }
  r = run_medload("config --check " + path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("preprocess.letterbox.size is 3; allowed 16..4096"), std::string::npos) << r.output;
  std::remove(path.c_str());
}

}  // namespace
