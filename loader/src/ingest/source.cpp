#include "medload/loader/ingest/source.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "medload/core/error.h"
#include "medload/core/text.h"

namespace medload::loader {
namespace fs = std::filesystem;

namespace {

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<std::string> split_labels(const std::string& text) {
  std::vector<std::string> labels;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t bar = text.find('|', start);
    std::string label = text.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    const auto first = label.find_first_not_of(" \t");
    const auto last = label.find_last_not_of(" \t");
    if (first != std::string::npos) labels.push_back(label.substr(first, last - first + 1));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return labels;
}

constexpr std::string_view kNoBreakSpace = "\xC2\xA0";

bool ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' || c == '\0';
}

// Length of the whitespace (ASCII, NUL, U+00A0) at text[i], 0 when there is none.
std::size_t space_at(std::string_view text, std::size_t i) {
  if (ascii_space(text[i])) return 1;
  return text.compare(i, kNoBreakSpace.size(), kNoBreakSpace) == 0 ? kNoBreakSpace.size() : 0;
}

// Length of the whitespace ending just before text[end], 0 when there is none.
std::size_t space_before(std::string_view text, std::size_t end) {
  if (ascii_space(text[end - 1])) return 1;
  const std::size_t n = kNoBreakSpace.size();
  return end >= n && text.compare(end - n, n, kNoBreakSpace) == 0 ? n : 0;
}

// Sets the entry's report path (and, for a name that is not UTF-8, its lossless form and warning)
// from `name`, the name's raw bytes as listed or written in the manifest.
void set_report_path(SourceFile& source, const std::string& name) {
  bool converted = false;
  source.report_path = to_valid_utf8(name, &converted);
  if (!converted) return;
  source.path_bytes = percent_escape_non_utf8(name);
  source.warnings.emplace_back("path_not_utf8");
}

// A folder's identity, so that no folder is entered twice through links.
struct FolderId {
  dev_t device;
  ino_t inode;
  bool operator<(const FolderId& o) const { return device != o.device ? device < o.device : inode < o.inode; }
};

// Deeper than this is a dataset no one made on purpose (the loop check stops real loops sooner).
constexpr int kMaxFolderDepth = 64;

// Lists `folder` (at `relative` below the root) into `sources`, in sorted order, entering each
// subfolder it has not entered before.
void list_into(const fs::path& root, const fs::path& folder, const fs::path& relative, int depth,
               std::set<FolderId>& entered, std::vector<SourceFile>& sources) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  if (ec) throw IoError("cannot list the input folder " + folder.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) { return a.path() < b.path(); });
  for (const fs::directory_entry& entry : entries) {
    if (hidden(entry.path())) continue;
    const fs::path name = relative / entry.path().filename();
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0) {  // a dangling link: listed, reported unreadable
      if (::lstat(entry.path().c_str(), &st) != 0) continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth + 1 >= kMaxFolderDepth || !entered.insert({st.st_dev, st.st_ino}).second) continue;
      list_into(root, entry.path(), name, depth + 1, entered, sources);
      continue;
    }
    SourceFile source;
    source.path = entry.path().string();
    set_report_path(source, name.generic_string());
    // ImageFolder convention: the first-level folder is the class.
    if (depth > 0) source.info.labels.push_back(to_valid_utf8(name.begin()->string()));
    sources.push_back(std::move(source));
  }
}

std::vector<SourceFile> list_folder(const fs::path& root) {
  std::vector<SourceFile> sources;
  std::set<FolderId> entered;
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0) entered.insert({st.st_dev, st.st_ino});
  list_into(root, root, fs::path(), 0, entered, sources);
  // Sorted by what the report shows; the raw bytes order names that read the same.
  std::sort(sources.begin(), sources.end(), [](const SourceFile& a, const SourceFile& b) {
    return a.report_path != b.report_path ? a.report_path < b.report_path : a.path < b.path;
  });
  return sources;
}

// The entry's path field `value` (raw bytes). A name that is not UTF-8 is the file's raw name,
// unless only the file named by its Windows-1252 reading exists (a spreadsheet export of a UTF-8
// name): then that file is meant, and the field counts as converted text.
// Whether a manifest path leaves the manifest's folder, judged on its text: an absolute path
// elsewhere, or `..` past the folder. (Links inside the folder are the dataset's own business,
// as they are for a folder tree.)
bool leaves_folder(const fs::path& base, const std::string& value) {
  const fs::path p = fs::path(value).lexically_normal();
  if (!p.is_absolute()) return !p.empty() && *p.begin() == "..";
  std::error_code ec;
  const fs::path relative = p.lexically_relative(fs::absolute(base, ec).lexically_normal());
  return relative.empty() || *relative.begin() == "..";
}

void set_manifest_path(SourceFile& source, const fs::path& base, const std::string& value) {
  const auto resolve = [&](const std::string& name) {
    const fs::path p(name);
    return (p.is_absolute() ? p : base / p).string();
  };
  source.outside_root = leaves_folder(base, value);
  source.path = resolve(value);
  set_report_path(source, value);
  if (source.path_bytes.empty()) return;
  std::error_code ec;
  const std::string readable = resolve(source.report_path);
  if (fs::exists(source.path, ec) || !fs::exists(readable, ec)) return;
  source.path = readable;
  source.path_bytes.clear();
  source.warnings.back() = "text_converted:path";
}

// A manifest field as UTF-8; a field that is not is read as Windows-1252 and noted on the entry.
std::string manifest_text(SourceFile& source, const std::string& column, const std::string& value) {
  bool converted = false;
  std::string text = to_valid_utf8(value, &converted);
  if (converted) source.warnings.push_back("text_converted:" + column);
  return text;
}

// The header's column names as UTF-8; true when any was not.
bool header_to_utf8(std::vector<std::string>& header) {
  bool any = false;
  for (std::string& column : header) {
    bool converted = false;
    column = to_valid_utf8(column, &converted);
    any = any || converted;
  }
  return any;
}

std::vector<SourceFile> read_manifest(const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) throw IoError("cannot read the manifest " + manifest.string());
  const fs::path base = manifest.parent_path();
  std::string line;
  std::size_t line_number = 0;
  std::vector<std::string> header;
  bool header_converted = false;
  std::vector<SourceFile> sources;
  auto where = [&] { return manifest.string() + " line " + std::to_string(line_number); };
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    // A quoted field may hold a line break: keep reading until the quotes balance.
    while (std::count(line.begin(), line.end(), '"') % 2 == 1) {
      std::string more;
      if (!std::getline(in, more)) break;
      ++line_number;
      if (!more.empty() && more.back() == '\r') more.pop_back();
      line += "\n" + more;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<std::string> fields = parse_csv_line(line, where());
    if (header.empty()) {
      header = std::move(fields);
      header_converted = header_to_utf8(header);
      for (auto column = header.begin(); column != header.end(); ++column) {
        if (std::find(std::next(column), header.end(), *column) != header.end()) {
          throw FormatError(where() + ": the manifest header names the column '" + *column +
                            "' twice; which one holds the values is not clear");
        }
      }
      if (std::find(header.begin(), header.end(), "path") == header.end()) {
        throw FormatError(
            where() +
            ": the manifest header has no 'path' column (columns: path,label,patient_id[,metadata...])");
      }
      continue;
    }
    if (fields.size() != header.size()) {
      throw FormatError(where() + ": " + std::to_string(fields.size()) + " fields, the header has " +
                        std::to_string(header.size()));
    }
    SourceFile source;
    if (header_converted) source.warnings.emplace_back("text_converted:header");
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string& column = header[c];
      if (column == "path") {
        if (fields[c].empty()) throw FormatError(where() + ": the path is empty");
        set_manifest_path(source, base, fields[c]);
        continue;
      }
      const std::string value = manifest_text(source, column, fields[c]);
      if (column == "label") {
        source.info.labels = split_labels(value);
      } else if (column == "patient_id") {
        source.info.patient_id = normalize_patient_id(value);
      } else if (column == "site") {
        source.info.site = value;
      } else if (column == "modality") {
        source.info.modality = value;
      } else if (column == "view") {
        source.info.view = value;
      } else if (!value.empty()) {
        source.info.metadata[column] = value;
      }
    }
    sources.push_back(std::move(source));
  }
  if (header.empty())
    throw FormatError(manifest.string() + ": the manifest is empty (expected a header line)");
  return sources;
}

}  // namespace

std::vector<std::string> parse_csv_line(const std::string& line, const std::string& where) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) throw FormatError(where + ": unterminated quoted field");
  return fields;
}

std::string normalize_patient_id(std::string_view id) {
  std::size_t first = 0, end = id.size();
  while (first < end) {
    const std::size_t n = space_at(id, first);
    if (n == 0) break;
    first += n;
  }
  while (end > first) {
    const std::size_t n = space_before(id, end);
    if (n == 0) break;
    end -= n;
  }
  return std::string(id.substr(first, end - first));
}

std::string loose_patient_id(std::string_view id) {
  const std::string normalized = normalize_patient_id(id);
  std::string loose;
  for (std::size_t i = 0; i < normalized.size();) {
    if (const std::size_t n = space_at(normalized, i); n > 0) {
      i += n;
      continue;
    }
    const char c = normalized[i++];
    loose += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return loose;
}

void note_source(const SourceFile& source, FileOutcome& outcome) {
  outcome.path = source.report_path;
  outcome.path_bytes = source.path_bytes;
  outcome.warnings.insert(outcome.warnings.begin(), source.warnings.begin(), source.warnings.end());
}

std::vector<SourceFile> list_sources(const std::string& root, const std::optional<std::string>& manifest) {
  std::error_code ec;
  if (manifest) {
    if (!fs::is_regular_file(*manifest, ec))
      throw IoError("the manifest " + *manifest + " does not exist or is not a file");
    return read_manifest(*manifest);
  }
  if (!fs::is_directory(root, ec))
    throw IoError("the input folder " + root + " does not exist or is not a folder");
  return list_folder(fs::path(root));
}

}  // namespace medload::loader
