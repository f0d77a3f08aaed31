#include "medload/loader/ingest/source.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "medload/core/error.h"
#include "medload/core/regular_file.h"
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
    // What cannot be looked at (a dangling link, a path longer than PATH_MAX, a file gone since
    // the listing) is listed all the same: the decoder's open fails and reports why (unreadable),
    // so no file disappears from the report without an outcome.
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0) st = {};
    // A folder this deep is listed as an entry, not entered: it is reported unreadable ("not a
    // regular file: a folder") rather than silently left out. A folder already entered (a link
    // loop, a second path to it) is skipped: its files are listed once, under the first path.
    if (S_ISDIR(st.st_mode) && depth + 1 < kMaxFolderDepth) {
      if (!entered.insert({st.st_dev, st.st_ino}).second) continue;
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

// A manifest field as UTF-8; a field that is not is read as Windows-1252 and noted on the entry.
std::string manifest_text(SourceFile& source, const std::string& column, const std::string& value) {
  bool converted = false;
  std::string text = to_valid_utf8(value, &converted);
  if (converted) source.warnings.push_back("text_converted:" + column);
  return text;
}

// A file a manifest field names (`path`, `mask`, a boxes or landmarks CSV file).
struct ManifestName {
  std::string path;           // to read: the raw bytes, joined to the manifest's folder unless absolute
  std::string report_path;    // the field as UTF-8
  bool raw_not_utf8 = false;  // the field is not UTF-8 and names the file by its raw bytes
  bool converted = false;     // the field is not UTF-8 and its Windows-1252 reading names the file
  bool outside = false;       // the field leaves the manifest's folder
};

// The file the field `value` (raw bytes) names. A name that is not UTF-8 is the file's raw name,
// unless only the file named by its Windows-1252 reading exists (a spreadsheet export of a UTF-8
// name): then that file is meant, and the field counts as converted text.
ManifestName manifest_name(const fs::path& base, const std::string& value) {
  const auto resolve = [&](const std::string& name) {
    const fs::path p(name);
    return (p.is_absolute() ? p : base / p).string();
  };
  ManifestName name;
  name.outside = leaves_folder(base, value);
  name.path = resolve(value);
  bool not_utf8 = false;
  name.report_path = to_valid_utf8(value, &not_utf8);
  if (!not_utf8) return name;
  std::error_code ec;
  const std::string readable = resolve(name.report_path);
  if (fs::exists(name.path, ec) || !fs::exists(readable, ec)) {
    name.raw_not_utf8 = true;
  } else {
    name.path = readable;
    name.converted = true;
  }
  return name;
}

void set_manifest_path(SourceFile& source, const fs::path& base, const std::string& value) {
  const ManifestName name = manifest_name(base, value);
  source.outside_root = name.outside;
  source.path = name.path;
  source.report_path = name.report_path;
  if (name.raw_not_utf8) {
    source.path_bytes = percent_escape_non_utf8(value);
    source.warnings.emplace_back("path_not_utf8");
  }
  if (name.converted) source.warnings.emplace_back("text_converted:path");
}

// A target file's name as problems and reports show it: lossless (percent-escaped) when the name
// is the file's raw bytes and they are not UTF-8.
std::string shown_name(const ManifestName& name, const std::string& value) {
  return name.raw_not_utf8 ? percent_escape_non_utf8(value) : name.report_path;
}

// The `mask` column: the label image's path, resolved as `path` is. A mask outside the manifest's
// folder is a problem of the mask, not of the entry.
void set_mask(SourceFile& source, const fs::path& base, const std::string& value) {
  if (value.find_first_not_of(" \t\r\n") == std::string::npos) return;
  const ManifestName name = manifest_name(base, value);
  TargetSources& targets = source.targets;
  targets.mask_report_path = shown_name(name, value);
  if (name.raw_not_utf8) source.warnings.emplace_back("mask_path_not_utf8");
  if (name.converted) source.warnings.emplace_back("text_converted:mask");
  if (name.outside) {
    targets.mask_problem = "mask: the path leaves the manifest's folder";
    return;
  }
  targets.mask_path = name.path;
}

// Opens a boxes or landmarks CSV file the manifest names into `in`; the problem text when it
// cannot.
std::string open_target_file(const ManifestName& name, const std::string& shown,
                             std::optional<core::RegularFileStream>& in) {
  if (name.outside) return "the file " + shown + " leaves the manifest's folder";
  if (name.path.find('\0') != std::string::npos) return "the name " + shown + " holds a NUL byte";
  std::error_code ec;
  if (!fs::is_regular_file(name.path, ec)) return "the file " + shown + " does not exist or is not a file";
  try {
    in.emplace(name.path, "the file");  // checks again what it opened: a path swapped meanwhile
  } catch (const IoError&) {
    return "cannot read the file " + shown;
  }
  if (in->size_bytes() > kMaxTargetCsvBytes) {
    return "the file " + shown + " is larger than " + std::to_string(kMaxTargetCsvBytes >> 20) + " MiB";
  }
  return {};
}

// The `boxes` or `landmarks` column: JSON when it starts with '[', else the path of a CSV file
// (resolved as `path` is). Empty: not given. Text that is no targets is a problem of the kind.
void read_target_column(SourceFile& source, const fs::path& base, const std::string& column,
                        const std::string& value) {
  const std::size_t first = value.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return;
  const bool boxes = column == "boxes";
  TargetSources& targets = source.targets;
  if (value[first] == '[') {
    const std::string json = manifest_text(source, column, value);
    boxes ? parse_boxes_json(json, targets) : parse_landmarks_json(json, targets);
    return;
  }
  const ManifestName name = manifest_name(base, value);
  const std::string shown = shown_name(name, value);
  std::optional<core::RegularFileStream> in;
  if (std::string problem = open_target_file(name, shown, in); !problem.empty()) {
    (boxes ? targets.boxes_given : targets.landmarks_given) = true;
    (boxes ? targets.boxes_problem : targets.landmarks_problem) = column + ": " + problem;
    return;
  }
  boxes ? parse_boxes_csv(*in, shown, targets) : parse_landmarks_csv(*in, shown, targets);
}

// A class named in both `label` and `unknown_labels` is unknown: it leaves `labels` and the entry
// gets the warning "label_conflict" (the manifest contradicts itself; the sample is still used).
void resolve_label_conflicts(SourceFile& source) {
  std::vector<std::string>& labels = source.info.labels;
  const std::vector<std::string>& unknown = source.info.unknown_labels;
  const auto conflict = [&](const std::string& label) {
    return std::find(unknown.begin(), unknown.end(), label) != unknown.end();
  };
  const auto kept = std::remove_if(labels.begin(), labels.end(), conflict);
  if (kept == labels.end()) return;
  labels.erase(kept, labels.end());
  source.warnings.emplace_back("label_conflict");
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

// Why a header without a 'path' column may have one after all: the spreadsheet exports that
// look like a manifest but are not one. "" when none applies.
std::string header_hint(const std::string& line, const std::vector<std::string>& header) {
  if (line.find('\0') != std::string::npos) {
    return "; it holds NUL bytes, as UTF-16 text does (a spreadsheet's \"Unicode text\"): save it as "
           "CSV UTF-8";
  }
  if (header.size() == 1) {
    for (const char separator : {';', '\t', '|'}) {
      if (header[0].find(separator) == std::string::npos) continue;
      const std::string shown = separator == '\t' ? "tabs" : std::string("'") + separator + "'";
      return "; it is one column, separated by " + shown + " (a manifest is comma-separated, RFC 4180)";
    }
  }
  return "";
}

std::vector<SourceFile> read_manifest(const fs::path& manifest) {
  core::RegularFileStream in(manifest.string(), "the manifest");
  const fs::path base = manifest.parent_path();
  std::string line;
  std::size_t line_number = 0;
  std::vector<std::string> header;
  bool header_converted = false;
  std::vector<SourceFile> sources;
  auto where = [&] { return manifest.string() + " line " + std::to_string(line_number); };
  while (read_csv_record(in, line, line_number)) {
    if (sources.empty() && header.empty() && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<std::string> fields = parse_csv_line(line, where());
    // A row of empty fields (",,," : what spreadsheets export for a blank row) is a blank line.
    if (!header.empty() && std::all_of(fields.begin(), fields.end(), [](const std::string& field) {
          return field.find_first_not_of(" \t") == std::string::npos;
        })) {
      continue;
    }
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
        throw FormatError(where() + ": the manifest header has no 'path' column (columns: " +
                          "path,label,patient_id[,metadata...])" + header_hint(line, header));
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
      if (column == "mask") {
        set_mask(source, base, fields[c]);
        continue;
      }
      if (column == "boxes" || column == "landmarks") {
        read_target_column(source, base, column, fields[c]);
        continue;
      }
      const std::string value = manifest_text(source, column, fields[c]);
      if (column == "label") {
        source.info.labels = split_labels(value);
      } else if (column == "unknown_labels") {
        source.info.unknown_labels = split_labels(value);
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
    resolve_label_conflicts(source);
    sources.push_back(std::move(source));
  }
  if (header.empty())
    throw FormatError(manifest.string() + ": the manifest is empty (expected a header line)");
  return sources;
}

}  // namespace

bool read_csv_record(std::istream& in, std::string& record, std::size_t& line_number) {
  const auto next_line = [&](std::string& line) {
    if (!std::getline(in, line)) return false;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  };
  if (!next_line(record)) return false;
  // A quoted field may hold a line break: keep reading until the quotes balance.
  bool open_quote = std::count(record.begin(), record.end(), '"') % 2 == 1;
  std::string more;
  while (open_quote && next_line(more)) {
    record += '\n';
    record += more;
    open_quote = open_quote != (std::count(more.begin(), more.end(), '"') % 2 == 1);
  }
  return true;
}

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
  if (manifest) return read_manifest(*manifest);
  if (!fs::is_directory(root, ec))
    throw IoError("the input folder " + root + " does not exist or is not a folder");
  return list_folder(fs::path(root));
}

}  // namespace medload::loader
