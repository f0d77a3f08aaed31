#pragma once
/// Writing a small file so that a reader (or a crash) never sees half of it.

#include <string>
#include <string_view>

namespace medload {

/// Writes `content` to `path` atomically: to `path.tmp-<pid>` in the same folder, flushed to
/// disk, then renamed over `path`. The folder is created when missing. On failure the previous
/// file (if any) is left as it was, the temporary is removed, and IoError names the path and
/// the system's reason (for example "No space left on device").
void write_file_atomically(const std::string& path, std::string_view content);

}  // namespace medload
