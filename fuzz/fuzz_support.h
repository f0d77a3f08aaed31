#pragma once
// What the fuzz targets share: a temporary file holding the input (the library's readers take
// paths) and the rule that medload's own exceptions are expected answers to bad input.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace medload::fuzz {

/// A file under $TMPDIR (or /tmp) named after the process, rewritten for every input and removed
/// at exit. One per target and suffix, so the extension can steer format_from_extension.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/medload_fuzz_" + std::to_string(::getpid()) + suffix;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  /// Replaces the file with a new one holding `data`; aborts when it cannot (the harness is
  /// broken). A new file, not the old one truncated: libhdf5 recognises an open file by device and
  /// inode, and a handle it leaked on the last input would otherwise make it read these bytes
  /// through the last file's cached structures (a crash no real cache could cause).
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    std::remove(path_.c_str());
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) std::abort();
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace medload::fuzz
