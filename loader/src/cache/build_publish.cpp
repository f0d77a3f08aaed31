// build_cache's output side: the checks before any work, the work folder and its lock, and
// publishing the finished cache and report (through publish_atomically, as merge and split do).

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "build_steps.h"
#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/regular_file.h"

namespace medload::loader::detail {

namespace fs = std::filesystem;

namespace {

std::string system_reason() { return std::strerror(errno); }

}  // namespace

void check_output(const std::string& output, const std::string& report_path) {
  const fs::path output_path(output);
  const fs::path parent = output_path.has_parent_path() ? output_path.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(parent, error)) {
    throw IoError("cannot write " + output + ": its folder " + parent.string() + " does not exist");
  }
  if (::access(parent.c_str(), W_OK) != 0) {
    throw IoError("cannot write " + output + ": its folder " + parent.string() + " is not writable (" +
                  system_reason() + ")");
  }
  // The report is written before the cache is published: a folder in its place would fail the
  // build only after the work, so it is refused now.
  if (fs::is_directory(report_path, error)) {
    throw IoError("cannot write the report " + report_path + " of " + output + ": a folder has that name");
  }
  require_replaceable(report_path);
}

std::string create_work_folder(const std::string& output) {
  const std::string work = output + ".partial";
  std::error_code error;
  fs::create_directories(work, error);
  if (error) {
    throw IoError("cannot write " + output + ": cannot create its work folder " + work + " (" +
                  error.message() + ")");
  }
  // The folder itself, not a link: decoded pixels written through a link would land, and stay,
  // wherever it points (create_directories accepts a link to a folder).
  struct stat st {};
  if (::lstat(work.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw IoError("cannot write " + output + ": its work folder " + work + " is " +
                  (S_ISLNK(st.st_mode) ? std::string("a link") : std::string(core::file_kind(st.st_mode))) +
                  ", not a folder; medload writes its work files only beside the output: remove it");
  }
  return work;
}

FolderLock::FolderLock(const std::string& folder) {
  const std::string path = (fs::path(folder) / "lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError("cannot create " + path + ": " + system_reason());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    throw IoError("another medload build is writing " + folder + " (its lock is held)");
  }
}

FolderLock::~FolderLock() { ::close(fd_); }

void publish_build(TemporaryFile& cache, const std::string& output, TemporaryFile& temp_report,
                   const std::string& report, const std::string& work) {
  // On failure publish_atomically removes the cache's temporary; the report's goes with
  // temp_report, and the previous cache and report stay. Both targets are checked first, so a
  // report that cannot replace what is at its name (a FIFO put there during the build) fails the
  // build before the cache is published.
  require_replaceable(output);
  require_replaceable(report);
  publish_atomically(cache.path(), output);
  cache.release();
  std::error_code error;
  fs::remove_all(work, error);
  try {
    publish_atomically(temp_report.path(), report);
  } catch (const IoError& e) {
    throw IoError("the cache " + output + " is in place, but its report " + report +
                  " could not be published: " + e.what());
  }
  temp_report.release();
}

}  // namespace medload::loader::detail
