#pragma once
/// A POSIX file descriptor owned by a small move-only handle, closed when the handle goes.

#include <unistd.h>

#include <utility>

namespace medload::core {

/// Owns one file descriptor (or none: -1). Closing ignores errors: a descriptor is closed on
/// paths where nothing could be done about them.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  /// Takes ownership of `fd` (-1 for none).
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { reset(); }

  /// The descriptor, still owned (-1 for none).
  int get() const noexcept { return fd_; }
  /// Whether it holds a descriptor.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives the descriptor up without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the held descriptor and takes `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace medload::core
