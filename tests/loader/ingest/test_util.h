#pragma once
// Helpers for the ingest tests: temporary folders, generated files, running the medload command.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace medload::test {

namespace fs = std::filesystem;

/// A fresh folder under the test temp dir, removed when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    static int counter = 0;
    path_ = fs::path(testing::TempDir()) /
            ("medload_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A gray image with structure (a gradient plus noise), different for each seed.
inline cv::Mat textured(int rows, int cols, int type, unsigned seed) {
  cv::Mat m(rows, cols, type);
  std::mt19937 rng(seed);
  const double top = CV_MAT_DEPTH(type) == CV_16U ? 4095 : 255;
  std::uniform_real_distribution<double> noise(0, top / 8);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double v = top * 0.7 * (r + c) / (rows + cols) + noise(rng);
      for (int ch = 0; ch < m.channels(); ++ch) {
        if (CV_MAT_DEPTH(type) == CV_16U) {
          m.ptr<std::uint16_t>(r)[c * m.channels() + ch] = static_cast<std::uint16_t>(v);
        } else {
          m.ptr<std::uint8_t>(r)[c * m.channels() + ch] = static_cast<std::uint8_t>(v);
        }
      }
    }
  }
  return m;
}

inline void write_image(const std::string& path, const cv::Mat& m, const std::string& ext = ".png") {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<std::uint8_t> buffer;
  cv::imencode(ext, m, buffer);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
}

inline std::string fixture(const std::string& name) { return std::string(MEDLOAD_FIXTURES_DIR) + "/" + name; }

/// Result of running a command: exit code, stdout+stderr, peak memory (KiB) of the process.
struct CommandResult {
  int exit_code = -1;
  std::string output;
  long max_rss_kib = 0;
};

/// Runs `medload ARGS` (the build's binary) through /bin/sh, capturing its output and peak RSS.
inline CommandResult run_medload(const std::string& args) {
  CommandResult result;
  const std::string out_path = testing::TempDir() + "medload_cmd_" + std::to_string(::getpid()) + ".txt";
  const std::string command =
      std::string(MEDLOAD_BINARY_DIR) + "/bin/medload " + args + " > " + out_path + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.max_rss_kib = usage.ru_maxrss;
  std::ifstream in(out_path);
  result.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::remove(out_path.c_str());
  return result;
}

}  // namespace medload::test
