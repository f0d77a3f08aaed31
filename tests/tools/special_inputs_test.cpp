// The medload command with special files and malformed numbers where files and numbers belong:
// every one a clear error at once, naming the option or the file, nothing replaced. A FIFO given
// as an input used to block a command forever (libhdf5, std::ifstream and cv::imwrite open
// without O_NONBLOCK); one given as an output was replaced by a file (as root, `--report
// /dev/null` would have replaced the device); CLI11 read "-1" as 2^64 - 1 and "010" as 8.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "medload_test/command.h"
#include "medload_test/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using medload::test::run_medload;
using medload::test::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A `medload sample --json` report without its one measured line (ns_per_index).
std::string without_timing(const std::string& report) {
  const std::size_t at = report.find("\"ns_per_index\"");
  return at == std::string::npos ? report : report.substr(0, at) + report.substr(report.find('\n', at));
}

bool is_fifo(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// One small cache built from the committed DICOM fixtures (two classes), shared by the tests.
class SpecialInputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("special-inputs");
    const fs::path fixtures = fs::path(MEDLOAD_FIXTURES_DIR) / "dicom";
    const std::vector<std::pair<std::string, std::string>> files = {{"ct", "CT_small.dcm"},
                                                                    {"ct", "CR_monochrome1.dcm"},
                                                                    {"mr", "MR_small.dcm"},
                                                                    {"mr", "MR_small_RLE.dcm"}};
    for (const auto& [label, name] : files) {
      fs::create_directories(dir_->path() / "images" / label);
      fs::copy_file(fixtures / name, dir_->path() / "images" / label / name);
    }
    const auto built = run_medload("build " + (*dir_ / "images") + " -o " + (*dir_ / "cache.h5") + " -q");
    ASSERT_EQ(built.exit_code, 0) << built.output;
    ASSERT_EQ(::mkfifo((*dir_ / "fifo").c_str(), 0600), 0);
    std::ofstream(*dir_ / "deep.json") << std::string(100000, '[') << std::string(100000, ']');
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string path(const std::string& name) { return *dir_ / name; }

  static TempDir* dir_;
};

TempDir* SpecialInputs::dir_ = nullptr;

TEST_F(SpecialInputs, EveryFileInputThatIsAFifoIsRefusedAtOnce) {
  const std::string images = path("images"), cache = path("cache.h5"), fifo = path("fifo");
  // No writer ever opens the FIFO: a command that opened it as a file would hang here (and the
  // test fail on its timeout).
  const std::vector<std::string> commands = {
      "scan " + images + " --manifest " + fifo,
      "scan " + images + " --annotations " + fifo,
      "scan " + images + " --target-classes " + fifo,
      "build " + images + " -o " + path("new.h5") + " --config " + fifo,
      "build " + images + " -o " + path("new.h5") + " --site-map " + fifo,
      "config --check " + fifo,
      "inspect " + fifo,
      "inspect --verify " + fifo,
      "split " + fifo,
      "audit " + fifo,
      "merge " + fifo + " " + cache + " -o " + path("merged.h5"),
      "preview " + fifo + " -o " + path("p.png"),
      "preview " + cache + " -o " + path("p.png") + " --augment " + fifo,
      "sample " + fifo + " --sampler weighted",
      "sample --labels " + fifo + " --sampler weighted",
  };
  for (const std::string& command : commands) {
    const auto result = run_medload(command);
    EXPECT_TRUE(result.exit_code == 1 || result.exit_code == 2) << command << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, "FIFO (named pipe), not a regular file")) << command << "\n"
                                                                                  << result.output;
    EXPECT_TRUE(contains(result.output, fifo)) << command << "\n" << result.output;
  }
  EXPECT_TRUE(is_fifo(fifo));
}

TEST_F(SpecialInputs, NoOutputReplacesAFifo) {
  const std::string images = path("images"), cache = path("cache.h5"), fifo = path("fifo");
  const std::vector<std::string> commands = {
      "scan " + images + " -q --report " + fifo,
      "merge " + cache + " -q -o " + fifo,
      "preview " + cache + " -o " + fifo,
  };
  for (const std::string& command : commands) {
    const auto result = run_medload(command);
    EXPECT_EQ(result.exit_code, 1) << command << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, "refusing to replace " + fifo + ": it is a FIFO (named pipe)"))
        << command << "\n"
        << result.output;
    EXPECT_TRUE(is_fifo(fifo)) << command;
  }
  // A build whose report name is taken by a FIFO fails before it decodes anything, and publishes
  // no cache.
  ASSERT_EQ(::mkfifo(path("fresh.report.json").c_str(), 0600), 0);
  const auto build = run_medload("build " + images + " -q -o " + path("fresh.h5"));
  EXPECT_EQ(build.exit_code, 1) << build.output;
  EXPECT_TRUE(contains(build.output, "refusing to replace " + path("fresh.report.json"))) << build.output;
  EXPECT_FALSE(fs::exists(path("fresh.h5")));
  EXPECT_TRUE(is_fifo(path("fresh.report.json")));
}

TEST_F(SpecialInputs, IntegerOptionsTakeDecimalDigitsOnly) {
  const std::string cache = path("cache.h5");
  struct Case {
    std::string args, expected;
  };
  const std::vector<Case> cases = {
      {"split " + cache + " --seed -1", "--seed: -1 is negative; a whole number from 0 is expected"},
      {"split " + cache + " --seed 18446744073709551616",
       "--seed: 18446744073709551616 is out of range (at most 18446744073709551615)"},
      {"sample " + cache + " --sampler weighted --seed 0x10",
       "--seed: \"0x10\" is not a whole number in decimal digits"},
      {"sample " + cache + " --sampler weighted --seed 1e3", "--seed: \"1e3\" is not a whole number"},
      {"audit " + cache + " --max-listed -1", "--max-listed: -1 is negative"},
      // Read as octal, 0300 would have been 192 and passed the range.
      {"split " + cache + " --threads 0300", "--threads: Value 300 not in range 0 to 256"},
      {"inspect " + cache + " --rejected 99999999999999999999",
       "--rejected: 99999999999999999999 is out of range"},
      // sscanf's %d wrapped 4294967296 to 0 and the error named a count the user never gave.
      {"build " + path("images") + " -o " + path("new.h5") + " --shard 0/4294967296",
       "--shard is \"0/4294967296\"; expected I/N in decimal digits"},
      {"build " + path("images") + " -o " + path("new.h5") + " --shard 0x1/4", "--shard is \"0x1/4\""},
  };
  for (const Case& c : cases) {
    const auto result = run_medload(c.args);
    EXPECT_EQ(result.exit_code, 2) << c.args << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, c.expected)) << c.args << "\n" << result.output;
  }
  // Leading zeros are decimal: 010 is ten.
  const auto ten = run_medload("sample " + cache + " --sampler weighted --split all --json --seed 10", false);
  const auto zero_ten =
      run_medload("sample " + cache + " --sampler weighted --split all --json --seed 010", false);
  ASSERT_EQ(ten.exit_code, 0) << ten.output;
  EXPECT_EQ(zero_ten.exit_code, 0);
  EXPECT_TRUE(contains(ten.output, "\"seed\": 10")) << ten.output;
  EXPECT_EQ(without_timing(zero_ten.output), without_timing(ten.output));
}

TEST_F(SpecialInputs, DeeplyNestedJsonIsAClearErrorNotACrash) {
  const std::string deep = path("deep.json");
  const std::vector<std::string> commands = {
      "config --check " + deep,
      "preview " + path("cache.h5") + " -o " + path("p.png") + " --augment " + deep,
      "build " + path("images") + " -o " + path("new.h5") + " --site-map " + deep,
  };
  for (const std::string& command : commands) {
    const auto result = run_medload(command);
    EXPECT_EQ(result.exit_code, 2) << command << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, "nested deeper than 64 levels at byte 64")) << command << "\n"
                                                                                    << result.output;
  }
}

}  // namespace
