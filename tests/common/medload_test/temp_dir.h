#pragma once
// A fresh temporary folder per test object, removed (recursively) when it goes away. Named by
// process and counter: ctest runs every test in its own process, several at once.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace medload::test {

class TempDir {
 public:
  /// A new empty folder `medload-<name>-<pid>-<n>` under the system's temporary folder.
  explicit TempDir(const std::string& name = "test") {
    static std::atomic<int> counter{0};
    root_ = std::filesystem::temp_directory_path() /
            ("medload-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The folder.
  const std::filesystem::path& path() const { return root_; }
  std::string str() const { return root_.string(); }
  /// A path inside the folder.
  std::string path(const std::string& name) const { return (root_ / name).string(); }
  std::string operator/(const std::string& name) const { return path(name); }

 private:
  std::filesystem::path root_;
};

}  // namespace medload::test
