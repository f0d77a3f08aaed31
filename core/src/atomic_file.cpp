#include "medload/core/atomic_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"
#include "medload/core/regular_file.h"

namespace medload {

void require_replaceable(const std::string& target) {
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) return;  // absent, or unreachable: creating it will say
  if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) return;
  throw IoError("refusing to replace " + target + ": it is " + core::file_kind(st.st_mode) +
                ", not a regular file; name a file to write instead");
}

void write_file_atomically(const std::string& path, std::string_view content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  require_replaceable(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  // A new file of our own: whatever has the temporary's name (a run killed before its rename, or
  // a link put there to have the content written, or a file truncated, elsewhere) is removed,
  // and O_EXCL creates the file or fails; it never follows a link.
  ::unlink(temporary.c_str());
  core::FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) throw IoError("cannot write " + path + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int error = errno;
    fd.reset();
    ::unlink(temporary.c_str());
    throw IoError(std::string("cannot ") + what + " " + path + ": " + std::strerror(error));
  };
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd.get(), data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("flush");
  // Closed by hand: a failed close can mean lost data, which the handle's close would ignore.
  if (::close(fd.release()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw IoError("cannot write " + path + ": " + std::strerror(error));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw IoError("cannot rename the new " + path + " into place: " + std::strerror(error));
  }
}

namespace {

std::string folder_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Flushes a file or a folder to disk.
void sync(const std::string& path, int flags, const std::string& what) {
  const core::FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) {
    throw IoError("cannot flush " + what + " " + path + " to disk: " + std::strerror(errno));
  }
}

}  // namespace

TemporaryFile::~TemporaryFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

void publish_atomically(const std::string& temporary, const std::string& target) {
  try {
    require_replaceable(target);
    sync(temporary, O_RDONLY, "the new file");
    if (std::rename(temporary.c_str(), target.c_str()) != 0) {
      throw IoError("cannot rename " + temporary + " to " + target + ": " + std::strerror(errno));
    }
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  // The rename itself is durable once the folder is flushed; the target is whole either way.
  sync(folder_of(target), O_RDONLY | O_DIRECTORY, "the folder of");
}

namespace {

// Copies `size` bytes from `in` to `out` in the kernel where it can (copy_file_range), through a
// buffer where it cannot (some filesystems, older kernels). False with errno set on failure.
bool copy_bytes(int in, int out, off_t size) {
  bool kernel = true;
  std::vector<char> buffer;
  while (size > 0) {
    ssize_t n;
    if (kernel) {
      n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<std::size_t>(size), 0);
      if (n < 0 && (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
        kernel = false;
        buffer.resize(std::size_t{1} << 20);
        continue;
      }
    } else {
      n = ::read(in, buffer.data(), std::min<std::size_t>(buffer.size(), static_cast<std::size_t>(size)));
      for (ssize_t written = 0; n > 0 && written < n;) {
        const ssize_t w = ::write(out, buffer.data() + written, static_cast<std::size_t>(n - written));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        written += w;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;  // the file ended before its size: it changed under us
    if (n <= 0) return false;
    size -= n;
  }
  return true;
}

}  // namespace

void copy_file_for_update(const std::string& source, const std::string& destination) {
  const core::FileDescriptor in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw IoError("cannot read " + source + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) throw IoError("cannot stat " + source + ": " + std::strerror(errno));
  const core::FileDescriptor out(
      ::open(destination.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777));
  if (!out) throw IoError("cannot create " + destination + ": " + std::strerror(errno));
  TemporaryFile remove_on_failure(destination);
  // A reflink shares the blocks: instant, and no space is used until the copy is changed.
  if (::ioctl(out.get(), FICLONE, in.get()) != 0 && !copy_bytes(in.get(), out.get(), st.st_size)) {
    throw IoError("cannot copy " + source + " to " + destination + ": " + std::strerror(errno));
  }
  remove_on_failure.release();
}

}  // namespace medload
