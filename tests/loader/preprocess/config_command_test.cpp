// The `medload config` command, run as a user runs it.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

namespace {

struct Result {
  int exit_code = -1;
  std::string out;
};

// `with_stderr`: capture stderr too (else it goes to the test's stderr).
Result run_medload(const std::string& args, bool with_stderr = true) {
  const std::string command =
      std::string(MEDLOAD_BINARY_DIR) + "/bin/medload " + args + (with_stderr ? " 2>&1" : "");
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(ConfigCommand, WithoutAnActionIsAUsageError) {
  const Result r = run_medload("config");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--print-default"), std::string::npos) << r.out;
}

TEST(ConfigCommand, PrintsTheDefaultConfig) {
  Result r = run_medload("config --print-default", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("preprocess").at("letterbox").at("size"), 256);
  EXPECT_EQ(j.at("preprocess").at("output_dtype"), "uint8");
  EXPECT_TRUE(j.contains("validate"));
  EXPECT_TRUE(j.contains("augment"));
}

TEST(ConfigCommand, ChecksAConfigAndPrintsItsHash) {
  const std::string path = ::testing::TempDir() + "medload_config_command_test.json";
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"letterbox": {"size": 512}}})";
  }
  Result r = run_medload("config --check " + path);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("config hash: "), std::string::npos) << r.out;
  {
    std::ofstream out(path);
    out << R"({"preprocess": {"letterbox": {"size": 3}}})";
  }
  r = run_medload("config --check " + path);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("preprocess.letterbox.size is 3; allowed 16..4096"), std::string::npos) << r.out;
  std::remove(path.c_str());
}

}  // namespace
