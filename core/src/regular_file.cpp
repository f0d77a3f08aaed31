#include "medload/core/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "medload/core/error.h"

namespace medload::core {

namespace {

std::string cannot_read(const std::string& what, const std::string& path) {
  std::string shown;  // a NUL would end the message where what() is read as a C string
  for (const char c : path) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
  return "cannot read " + what + (what.empty() ? "" : " ") + shown + ": ";
}

// The descriptor of regular file `path` and its size; IoError naming `what` and `path` otherwise.
std::pair<FileDescriptor, std::uint64_t> open_checked(const std::string& path, const std::string& what) {
  RegularFileOpening opened = try_open_regular_file(path);
  using Failure = RegularFileOpening::Failure;
  switch (opened.failure) {
    case Failure::kNone:
      return {std::move(opened.fd), opened.size};
    case Failure::kNulInName:
      throw IoError(cannot_read(what, path) + "the name holds a NUL byte, which no file name can");
    case Failure::kNotRegular:
      throw IoError(cannot_read(what, path) + "it is " + file_kind(opened.mode) + ", not a regular file");
    case Failure::kOpen:
      throw IoError(cannot_read(what, path) +
                    (opened.error == ENOENT ? "it does not exist" : std::strerror(opened.error)));
    case Failure::kStat:
      break;
  }
  throw IoError(cannot_read(what, path) + std::strerror(opened.error));
}

}  // namespace

const char* file_kind(mode_t mode) noexcept {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

RegularFileOpening try_open_regular_file(const std::string& path) noexcept {
  RegularFileOpening opened;
  using Failure = RegularFileOpening::Failure;
  if (path.find('\0') != std::string::npos) {
    opened.failure = Failure::kNulInName;
    return opened;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {  // looked at, not opened
    opened.failure = Failure::kNotRegular;
    opened.mode = st.st_mode;
    return opened;
  }
  opened.fd.reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!opened.fd) {
    opened.failure = Failure::kOpen;
    opened.error = errno;
    return opened;
  }
  if (::fstat(opened.fd.get(), &st) != 0) {
    opened.failure = Failure::kStat;
    opened.error = errno;
  } else if (!S_ISREG(st.st_mode)) {  // swapped since it was looked at
    opened.failure = Failure::kNotRegular;
    opened.mode = st.st_mode;
  } else {
    opened.size = static_cast<std::uint64_t>(st.st_size);
    return opened;
  }
  opened.fd.reset();
  return opened;
}

FileDescriptor open_regular_file(const std::string& path, const std::string& what) {
  return open_checked(path, what).first;
}

std::string read_regular_file(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  auto [fd, size] = open_checked(path, what);
  if (size > max_bytes) {
    throw IoError(cannot_read(what, path) + "it is " + std::to_string(size) + " bytes; the limit is " +
                  std::to_string(max_bytes));
  }
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      throw IoError(cannot_read(what, path) + std::strerror(error));
    }
    if (got == 0) break;
    // The file may have grown since fstat: the limit holds for what is read, too.
    if (text.size() + static_cast<std::size_t>(got) > max_bytes) {
      throw IoError(cannot_read(what, path) + "it holds more than " + std::to_string(max_bytes) +
                    " bytes, the limit");
    }
    text.append(buffer, static_cast<std::size_t>(got));
  }
  return text;
}

RegularFileStream::RegularFileStream(const std::string& path, const std::string& what)
    : std::istream(nullptr), buffer_([&] {
        auto [fd, size] = open_checked(path, what);
        return Buffer(std::move(fd), size);
      }()) {
  rdbuf(&buffer_);
}

RegularFileStream::Buffer::int_type RegularFileStream::Buffer::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  for (;;) {
    const ssize_t got = ::read(fd_.get(), data_.get(), kSize);
    if (got < 0 && errno == EINTR) continue;
    // std::istream catches what underflow throws and sets badbit.
    if (got < 0) throw IoError(std::string("read failed: ") + std::strerror(errno));
    if (got == 0) return traits_type::eof();
    setg(data_.get(), data_.get(), data_.get() + got);
    return traits_type::to_int_type(*gptr());
  }
}

}  // namespace medload::core
