#pragma once
/// Writing files so that a reader (or a crash) never sees half of one.

#include <string>
#include <string_view>
#include <utility>

namespace medload {

/// Throws IoError ("refusing to replace <target>: it is a character device, ...") when `target`
/// exists and is neither a regular file nor a link (a link is replaced, not what it points to).
/// write_file_atomically and publish_atomically check this before they replace anything: run as
/// root, `--report /dev/null` would otherwise replace the device with a file. Commands call it
/// before long work too, so a bad output fails at once.
void require_replaceable(const std::string& target);

/// Writes `content` to `path` atomically: to `path.tmp-<pid>` in the same folder, flushed to
/// disk, then renamed over `path`. The folder is created when missing. On failure the previous
/// file (if any) is left as it was, the temporary is removed, and IoError names the path and
/// the system's reason (for example "No space left on device"). See require_replaceable.
void write_file_atomically(const std::string& path, std::string_view content);

/// Puts a finished file in place: flushes `temporary` to disk, renames it over `target` (the same
/// folder: one atomic step) and flushes the folder, so a crash or a kill at any moment leaves
/// either the previous `target` or the new one, whole. On failure `temporary` is removed, `target`
/// is as it was, and IoError names both and the system's reason.
void publish_atomically(const std::string& temporary, const std::string& target);

/// Makes `destination` (created; it must not exist) a copy of `source` to be changed and then
/// published with publish_atomically: the filesystem shares the blocks where it can (a reflink on
/// btrfs and XFS: instant, whatever the size), else the bytes are copied in the kernel
/// (copy_file_range). The copy keeps `source`'s permission bits. Throws IoError; on failure
/// `destination` is removed.
void copy_file_for_update(const std::string& source, const std::string& destination);

/// Removes a file when it goes out of scope unless released: the temporary of a publish that
/// did not happen (an exception on the way) never stays behind.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::string path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile();
  const std::string& path() const { return path_; }
  /// Keeps the file (it was published: renamed into place).
  void release() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace medload
