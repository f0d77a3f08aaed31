#pragma once
/// Opening the files medload reads (configs, manifests, tables, caches) only when they are
/// regular files. A FIFO, a device or a socket named where a file is expected, by mistake or on
/// purpose, blocks the open or the read forever (a FIFO without a writer) or never ends
/// (/dev/zero); a folder cannot be read at all. Images go through the decoders' own reader, which
/// makes the same check (an outcome in the report rather than an exception).

#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <streambuf>
#include <string>

#include "medload/core/file_descriptor.h"

namespace medload::core {

/// What a file of `mode` is, for messages: "a regular file", "a folder", "a FIFO (named pipe)",
/// "a socket", "a character device", "a block device", or "not a regular file".
const char* file_kind(mode_t mode) noexcept;

/// What opening `path` as a regular file gave, without an exception, for callers that report a
/// failure their own way (the decoders: an outcome in the report). The steps: a name holding a
/// NUL byte is refused (the system would read it only up to the NUL, another file); the path is
/// looked at before it is opened, and nothing but a regular file (links followed) is opened, since
/// opening some devices has effects of its own whatever is read afterwards (a watchdog device
/// starts its timer, a tape device rewinds); it is opened with O_NONBLOCK, so a FIFO swapped in
/// meanwhile does not block the open; and the descriptor is checked again with fstat, so what was
/// checked is what will be read.
struct RegularFileOpening {
  enum class Failure { kNone, kNulInName, kNotRegular, kOpen, kStat };
  Failure failure = Failure::kNone;
  FileDescriptor fd;       ///< open when `failure` is kNone
  std::uint64_t size = 0;  ///< bytes of the file when it was opened
  mode_t mode = 0;         ///< kNotRegular: what the path is (file_kind)
  int error = 0;           ///< kOpen, kStat: errno
};
RegularFileOpening try_open_regular_file(const std::string& path) noexcept;

/// Opens `path` read-only as try_open_regular_file does. Throws IoError "cannot read <what>
/// <path>: <why>" (missing, a folder, a FIFO, a name holding a NUL byte, ...).
FileDescriptor open_regular_file(const std::string& path, const std::string& what);

/// The whole content of regular file `path` (see open_regular_file). Throws IoError as
/// open_regular_file does, when reading fails, and when the file holds more than `max_bytes`
/// bytes (the message gives its size and the limit).
std::string read_regular_file(const std::string& path, const std::string& what, std::uint64_t max_bytes);

/// An input stream over regular file `path` (see open_regular_file), for parsers that read line
/// by line. A failing read sets badbit. Throws IoError from the constructor as open_regular_file
/// does.
class RegularFileStream : public std::istream {
 public:
  RegularFileStream(const std::string& path, const std::string& what);
  RegularFileStream(const RegularFileStream&) = delete;
  RegularFileStream& operator=(const RegularFileStream&) = delete;

  /// Bytes of the file when it was opened.
  std::uint64_t size_bytes() const noexcept { return buffer_.size_bytes(); }

 private:
  class Buffer : public std::streambuf {
   public:
    Buffer(FileDescriptor fd, std::uint64_t size_bytes)
        : fd_(std::move(fd)), size_bytes_(size_bytes), data_(new char[kSize]) {}
    std::uint64_t size_bytes() const noexcept { return size_bytes_; }

   protected:
    int_type underflow() override;

   private:
    FileDescriptor fd_;
    std::uint64_t size_bytes_;
    static constexpr std::size_t kSize = 1 << 16;
    std::unique_ptr<char[]> data_;
  };
  Buffer buffer_;
};

}  // namespace medload::core
