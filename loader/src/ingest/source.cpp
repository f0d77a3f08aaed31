#include "medload/loader/ingest/source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include "medload/core/error.h"

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

std::vector<SourceFile> list_folder(const fs::path& root) {
  std::vector<SourceFile> sources;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec);
  if (ec) throw IoError("cannot list the input folder " + root.string() + ": " + ec.message());
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) throw IoError("cannot list the input folder " + root.string() + ": " + ec.message());
    if (hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    const fs::path relative = it->path().lexically_relative(root);
    SourceFile source;
    source.path = it->path().string();
    source.report_path = relative.generic_string();
    // ImageFolder convention: the first-level folder is the class.
    auto part = relative.begin();
    if (std::next(part) != relative.end()) source.info.labels.push_back(part->string());
    sources.push_back(std::move(source));
  }
  std::sort(sources.begin(), sources.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.report_path < b.report_path; });
  return sources;
}

std::vector<SourceFile> read_manifest(const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) throw IoError("cannot read the manifest " + manifest.string());
  const fs::path base = manifest.parent_path();
  std::string line;
  std::size_t line_number = 0;
  std::vector<std::string> header;
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
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string& column = header[c];
      std::string& value = fields[c];
      if (column == "path") {
        if (value.empty()) throw FormatError(where() + ": the path is empty");
        const fs::path p(value);
        source.path = (p.is_absolute() ? p : base / p).string();
        source.report_path = value;
      } else if (column == "label") {
        source.info.labels = split_labels(value);
      } else if (column == "patient_id") {
        source.info.patient_id = value;
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
