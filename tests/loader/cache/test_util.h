#pragma once
// Helpers shared by the cache tests: a temporary folder removed at the end of the test.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace medload::loader::test {

/// A fresh folder under the system's temporary folder, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    root_ = std::filesystem::temp_directory_path() /
            ("medload-cache-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
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
  std::string str() const { return root_.string(); }
  /// A path inside the folder.
  std::string path(const std::string& name) const { return (root_ / name).string(); }

 private:
  std::filesystem::path root_;
};

}  // namespace medload::loader::test
