#include "medload/loader/ingest/annotation.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <istream>
#include <map>
#include <set>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "medload/core/regular_file.h"
#include "medload/core/text.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader {
namespace fs = std::filesystem;

namespace {

// ---- Text: numbers, ids, labels --------------------------------------------------------------

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// Text from the input, quoted for a message: at most 40 bytes, valid UTF-8.
std::string in_quotes(std::string_view text) {
  constexpr std::size_t kShown = 40;
  if (text.size() <= kShown) return "'" + to_valid_utf8(text) + "'";
  return "'" + to_valid_utf8(text.substr(0, kShown)) + "...'";
}

std::string number_text(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}

// A finite decimal number ("12", "-0.5", "+1e3"); nullopt for anything else: hex, "nan", "inf",
// "1e400" (out of range), trailing text.
std::optional<double> finite_number(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return {};
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return {};
  return value;
}

// A decimal id, digits only ("007" is 7), 0..kMaxTargetClass; nullopt otherwise.
std::optional<std::int32_t> decimal_id(std::string_view text) {
  if (text.empty()) return {};
  std::int64_t id = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return {};
    id = id * 10 + (c - '0');
    if (id > kMaxTargetClass) return {};
  }
  return static_cast<std::int32_t>(id);
}

// A box or landmark label as written: an id (>= 1) or a name.
struct Label {
  std::int32_t id = 0;  // 0 when `name` holds the label
  std::string name;
};

// The label for a number; the problem text when it is no class id.
std::string label_from_number(double value, std::string_view text, Label& label) {
  if (value != std::floor(value)) return "the label " + in_quotes(text) + " is not a whole number";
  if (value == 0) return "the label 0 is the background, which no box or landmark has";
  if (value < 0 || value > kMaxTargetClass) {
    return "the label " + in_quotes(text) + " is not a class id (1.." + std::to_string(kMaxTargetClass) + ")";
  }
  label = Label{static_cast<std::int32_t>(value), {}};
  return {};
}

// Whether label text is written as a number, finite or not ("12", "-3", "2.5", "1e400", "nan",
// "inf": a missing value, not a class name). "3D lesion" and "0x1" are names.
bool looks_numeric(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && end == text.data() + text.size() &&
         (ec == std::errc() || ec == std::errc::result_out_of_range);
}

// The label for text (valid UTF-8): a number is an id, other text a name. The problem text when
// it is neither ("" when fine).
std::string label_from_text(std::string_view text, Label& label) {
  text = trim(text);
  if (text.empty()) return "the label is empty";
  if (const std::optional<double> value = finite_number(text)) return label_from_number(*value, text, label);
  if (looks_numeric(text)) {
    return "the label " + in_quotes(text) + " is not a class id (1.." + std::to_string(kMaxTargetClass) + ")";
  }
  label = Label{0, std::string(text)};
  return {};
}

// ---- One kind of target: boxes or landmarks ---------------------------------------------------

struct BoxKind {
  using Target = Box;
  static constexpr const char* kName = "boxes";
  static constexpr const char* kItem = "box";
  static constexpr std::size_t kNumbers = 4;
  static constexpr std::array<const char*, kNumbers> kColumns{"x0", "y0", "x1", "y1"};
  static bool& given(TargetSources& t) { return t.boxes_given; }
  static std::vector<Box>& targets(TargetSources& t) { return t.boxes; }
  static std::vector<NamedLabel>& names(TargetSources& t) { return t.box_names; }
  static std::string& problem(TargetSources& t) { return t.boxes_problem; }
  // The box of `v`; the problem text when it has no area.
  static std::string make(const std::array<double, kNumbers>& v, Box& box) {
    if (!(v[2] > v[0]))
      return "x1 (" + number_text(v[2]) + ") is not greater than x0 (" + number_text(v[0]) + ")";
    if (!(v[3] > v[1]))
      return "y1 (" + number_text(v[3]) + ") is not greater than y0 (" + number_text(v[1]) + ")";
    box = Box{v[0], v[1], v[2], v[3], 0};
    return {};
  }
};

struct LandmarkKind {
  using Target = Landmark;
  static constexpr const char* kName = "landmarks";
  static constexpr const char* kItem = "landmark";
  static constexpr std::size_t kNumbers = 2;
  static constexpr std::array<const char*, kNumbers> kColumns{"x", "y"};
  static bool& given(TargetSources& t) { return t.landmarks_given; }
  static std::vector<Landmark>& targets(TargetSources& t) { return t.landmarks; }
  static std::vector<NamedLabel>& names(TargetSources& t) { return t.landmark_names; }
  static std::string& problem(TargetSources& t) { return t.landmarks_problem; }
  static std::string make(const std::array<double, kNumbers>& v, Landmark& landmark) {
    landmark = Landmark{v[0], v[1], 0};
    return {};
  }
};

// Sets the kind's problem (the first one wins) and empties the kind: a kind with a problem is
// left out whole.
template <class Kind>
void fail(TargetSources& t, const std::string& where, const std::string& what) {
  std::string& problem = Kind::problem(t);
  if (problem.empty()) problem = std::string(Kind::kName) + ": " + (where.empty() ? "" : where + ": ") + what;
  std::vector<typename Kind::Target>().swap(Kind::targets(t));
  std::vector<NamedLabel>().swap(Kind::names(t));
}

// Adds one target of the kind from its numbers and label; a problem instead when they make none
// or the image has too many.
template <class Kind>
void add(TargetSources& t, const std::array<double, Kind::kNumbers>& numbers, Label label,
         const std::string& where) {
  if (!Kind::problem(t).empty()) return;
  auto& targets = Kind::targets(t);
  if (targets.size() >= kMaxTargetsPerImage) {
    fail<Kind>(t, where,
               "more than " + std::to_string(kMaxTargetsPerImage) + " " + Kind::kName + " for one image");
    return;
  }
  typename Kind::Target target;
  if (const std::string problem = Kind::make(numbers, target); !problem.empty()) {
    fail<Kind>(t, where, problem);
    return;
  }
  target.label = label.id;
  if (label.id == 0) Kind::names(t).push_back(NamedLabel{targets.size(), std::move(label.name)});
  targets.push_back(target);
}

// ---- JSON -------------------------------------------------------------------------------------

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_error(const nlohmann::json::exception& e) {
  std::string what = e.what();
  if (const auto end = what.find("] "); !what.empty() && what[0] == '[' && end != std::string::npos) {
    what.erase(0, end + 2);
  }
  return to_valid_utf8(what);
}

std::string expected_row(std::size_t numbers) {
  return std::to_string(numbers) + " numbers and a label expected";
}

template <class Kind>
void parse_json(std::string_view text, TargetSources& t) {
  Kind::given(t) = true;
  if (const auto problem = core::json_nesting_problem(text)) {
    fail<Kind>(t, "", "not valid JSON (" + *problem + ")");
    return;
  }
  nlohmann::json rows;
  try {
    rows = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail<Kind>(t, "", "not valid JSON (" + json_error(e) + ")");
    return;
  }
  if (!rows.is_array()) {
    fail<Kind>(t, "",
               "a JSON list of rows expected, [[" +
                   std::string(Kind::kNumbers == 4 ? "x0, y0, x1, y1" : "x, y") + ", label], ...]");
    return;
  }
  if (rows.size() > kMaxTargetsPerImage) {
    fail<Kind>(t, "",
               "more than " + std::to_string(kMaxTargetsPerImage) + " " + Kind::kName + " for one image");
    return;
  }
  std::size_t row_number = 0;
  for (const nlohmann::json& row : rows) {
    const std::string where = "row " + std::to_string(++row_number);
    if (!row.is_array() || row.size() != Kind::kNumbers + 1) {
      fail<Kind>(
          t, where,
          expected_row(Kind::kNumbers) + ", got " +
              (row.is_array() ? std::to_string(row.size()) + " values" : std::string(row.type_name())));
      return;
    }
    std::array<double, Kind::kNumbers> numbers{};
    for (std::size_t i = 0; i < Kind::kNumbers; ++i) {
      // nlohmann refuses numbers out of double's range: every number it gives is finite.
      if (!row[i].is_number()) {
        fail<Kind>(t, where,
                   std::string(Kind::kColumns[i]) + " is not a number (" + row[i].type_name() + ")");
        return;
      }
      numbers[i] = row[i].get<double>();
    }
    const nlohmann::json& written = row[Kind::kNumbers];
    Label label;
    std::string problem;
    if (written.is_number()) {
      problem = label_from_number(written.get<double>(), written.dump(), label);
    } else if (written.is_string()) {
      problem = label_from_text(written.get_ref<const std::string&>(), label);
    } else {
      problem = "the label is neither an id nor a name (" + std::string(written.type_name()) + ")";
    }
    if (!problem.empty()) {
      fail<Kind>(t, where, problem);
      return;
    }
    add<Kind>(t, numbers, std::move(label), where);
    if (!Kind::problem(t).empty()) return;
  }
}

// ---- CSV --------------------------------------------------------------------------------------

// A CSV file's lines as records: the header's columns found by name, the line of each record.
class CsvRecords {
 public:
  CsvRecords(std::istream& in, std::string name) : in_(in), name_(std::move(name)) {}

  // The next record that is not blank, split into fields; false at the end. Throws FormatError
  // (naming file and line) on an unterminated quote.
  bool next(std::vector<std::string>& fields) {
    std::string record;
    while (read_csv_record(in_, record, line_)) {
      if (!started_ && record.compare(0, 3, "\xEF\xBB\xBF") == 0) record.erase(0, 3);
      started_ = true;
      if (record.find_first_not_of(" \t") == std::string::npos) continue;
      fields = parse_csv_line(record, where());
      return true;
    }
    return false;
  }
  // "<name> line <n>", the record last read.
  std::string where() const { return name_ + " line " + std::to_string(line_); }

 private:
  std::istream& in_;
  std::string name_;
  std::size_t line_ = 0;
  bool started_ = false;
};

// The index of `column` in `header` (trimmed names compared), nullopt when absent; "twice" set
// when it is there twice.
std::optional<std::size_t> find_column(const std::vector<std::string>& header, std::string_view column,
                                       bool& twice) {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (trim(header[i]) != column) continue;
    if (found) twice = true;
    if (!found) found = i;
  }
  return found;
}

// A number field of a CSV row; the problem text when it is none.
std::string csv_number(const std::string& field, const char* column, double& value) {
  const std::optional<double> number = finite_number(trim(field));
  if (!number) return std::string(column) + " " + in_quotes(trim(field)) + " is not a finite number";
  value = *number;
  return {};
}

template <class Kind>
void parse_csv(std::istream& in, std::string_view name, TargetSources& t) {
  Kind::given(t) = true;
  CsvRecords records(in, std::string(name));
  std::vector<std::string> fields;
  std::vector<std::string> header;
  std::array<std::size_t, Kind::kNumbers + 1> at{};  // the numbers' columns, then the label's
  try {
    while (records.next(fields)) {
      if (header.empty()) {
        header = std::move(fields);
        for (std::size_t i = 0; i <= Kind::kNumbers; ++i) {
          const char* column = i < Kind::kNumbers ? Kind::kColumns[i] : "label";
          bool twice = false;
          const std::optional<std::size_t> index = find_column(header, column, twice);
          if (!index || twice) {
            fail<Kind>(t, records.where(),
                       std::string("the header ") + (twice ? "names the column '" : "has no column '") +
                           column + (twice ? "' twice" : "'"));
            return;
          }
          at[i] = *index;
        }
        continue;
      }
      if (fields.size() != header.size()) {
        fail<Kind>(
            t, records.where(),
            std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size()));
        return;
      }
      std::array<double, Kind::kNumbers> numbers{};
      std::string problem;
      for (std::size_t i = 0; i < Kind::kNumbers && problem.empty(); ++i) {
        problem = csv_number(fields[at[i]], Kind::kColumns[i], numbers[i]);
      }
      Label label;
      if (problem.empty()) problem = label_from_text(to_valid_utf8(fields[at.back()]), label);
      if (!problem.empty()) {
        fail<Kind>(t, records.where(), problem);
        return;
      }
      add<Kind>(t, numbers, std::move(label), records.where());
      if (!Kind::problem(t).empty()) return;
    }
  } catch (const FormatError&) {
    fail<Kind>(t, records.where(), "unterminated quoted field");
    return;
  }
  if (header.empty()) fail<Kind>(t, std::string(name), "the file is empty (expected a header line)");
}

}  // namespace

void parse_boxes_json(std::string_view json, TargetSources& targets) { parse_json<BoxKind>(json, targets); }
void parse_landmarks_json(std::string_view json, TargetSources& targets) {
  parse_json<LandmarkKind>(json, targets);
}
void parse_boxes_csv(std::istream& in, std::string_view name, TargetSources& targets) {
  parse_csv<BoxKind>(in, name, targets);
}
void parse_landmarks_csv(std::istream& in, std::string_view name, TargetSources& targets) {
  parse_csv<LandmarkKind>(in, name, targets);
}

std::string_view to_string(TargetState state) {
  switch (state) {
    case TargetState::kValid:
      return "valid";
    case TargetState::kInvalid:
      return "invalid";
    case TargetState::kNone:
      break;
  }
  return "none";
}

nlohmann::json TargetReport::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  const auto kind = [&](const char* name, TargetState state, const std::string& problem) {
    j[name] = to_string(state);
    if (state == TargetState::kInvalid) j[std::string(name) + "_problem"] = problem;
  };
  kind("mask", mask, mask_problem);
  kind("boxes", boxes, boxes_problem);
  if (boxes == TargetState::kValid) {
    j["box_count"] = box_count;
    j["boxes_clipped"] = boxes_clipped;
  }
  kind("landmarks", landmarks, landmarks_problem);
  if (landmarks == TargetState::kValid) j["landmark_count"] = landmark_count;
  return j;
}

std::optional<std::int32_t> TargetClasses::find(std::string_view label) const {
  for (std::size_t id = 0; id < names.size(); ++id) {
    if (names[id] == label) return static_cast<std::int32_t>(id);
  }
  const std::optional<std::int32_t> id = decimal_id(label);
  if (id && contains(*id)) return id;
  return std::nullopt;
}

namespace {

// ---- The class map ----------------------------------------------------------------------------

// The whole of a small regular file (`kind`: "the class map"); `what` names it in errors.
std::string read_small_file(const std::string& path, std::uintmax_t limit, const std::string& kind,
                            const std::string& what) {
  core::RegularFileStream in(path, kind);
  std::string text;
  std::array<char, 1 << 16> chunk;
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > limit)
      throw FormatError(what + " is larger than " + std::to_string(limit >> 20) + " MiB");
  }
  if (in.bad()) throw IoError("cannot read " + what);
  return text;
}

// The map's JSON; FormatError for duplicate ids written the same way ({"1": "a", "1": "b"}),
// which nlohmann would otherwise settle silently by keeping the last.
nlohmann::json parse_class_map(const std::string& text, const std::string& where) {
  std::set<std::string> keys;
  std::string repeated;
  const auto note_keys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && repeated.empty() &&
        !keys.insert(parsed.get<std::string>()).second) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  if (const auto problem = core::json_nesting_problem(text)) {
    throw FormatError(where + ": not valid JSON (" + *problem + ")");
  }
  nlohmann::json map;
  try {
    map = nlohmann::json::parse(text, note_keys);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": not valid JSON (" + json_error(e) + ")");
  }
  if (!map.is_object()) {
    throw FormatError(where + ": a JSON object of id -> name expected ({\"1\": \"liver\"}), got " +
                      std::string(map.type_name()));
  }
  if (!repeated.empty()) throw FormatError(where + ": the entry " + in_quotes(repeated) + " is there twice");
  return map;
}

// The map's names by id, checked one by one.
std::map<std::int32_t, std::string> class_map_entries(const nlohmann::json& map, const std::string& where) {
  std::map<std::int32_t, std::string> names;
  for (const auto& [key, value] : map.items()) {
    const std::string entry = where + ": the entry " + in_quotes(key);
    const std::optional<std::int32_t> id = decimal_id(key);
    if (!id)
      throw FormatError(entry + ": the id is not a whole number 0.." + std::to_string(kMaxTargetClass));
    if (!value.is_string()) throw FormatError(entry + ": the name is not a string");
    const std::string name(trim(value.get_ref<const std::string&>()));
    if (name.empty()) throw FormatError(entry + ": the name is empty");
    if (looks_numeric(name) && name != std::to_string(*id)) {
      throw FormatError(entry + ": the name " + in_quotes(name) +
                        " is a number, which a label reads as an id");
    }
    if (const auto [it, added] = names.emplace(*id, name); !added) {
      throw FormatError(entry + ": id " + std::to_string(*id) + " is named twice (" + in_quotes(it->second) +
                        ", " + in_quotes(name) + ")");
    }
  }
  return names;
}

}  // namespace

TargetClasses read_target_classes(const std::string& path) {
  const std::string where = "the class map " + to_valid_utf8(path);
  const std::string text = read_small_file(path, kMaxClassMapBytes, "the class map", where);
  if (!is_valid_utf8(text)) throw FormatError(where + " is not UTF-8 text");
  const std::map<std::int32_t, std::string> named = class_map_entries(parse_class_map(text, where), where);
  TargetClasses classes;
  classes.names.resize(named.empty() ? 1 : static_cast<std::size_t>(named.rbegin()->first) + 1);
  for (std::size_t id = 0; id < classes.names.size(); ++id)
    classes.names[id] = id == 0 ? "background" : std::to_string(id);
  for (const auto& [id, name] : named) classes.names[static_cast<std::size_t>(id)] = name;
  std::unordered_map<std::string_view, std::size_t> ids;
  for (std::size_t id = 0; id < classes.names.size(); ++id) {
    if (const auto [it, added] = ids.emplace(classes.names[id], id); !added) {
      throw FormatError(where + ": the name " + in_quotes(classes.names[id]) + " names both id " +
                        std::to_string(it->second) + " and id " + std::to_string(id) +
                        (named.count(static_cast<std::int32_t>(it->second))
                             ? ""
                             : " (the name it has unless the map names it)"));
    }
  }
  return classes;
}

namespace {

// ---- The annotations CSV ----------------------------------------------------------------------

// The inputs a row's path names (read_annotations' rule: the path joined to the CSV's folder,
// else the report path).
class InputIndex {
 public:
  InputIndex(const std::vector<SourceFile>& sources, const fs::path& csv_folder) : folder_(csv_folder) {
    std::error_code ec;
    working_ = fs::current_path(ec);
    for (std::size_t i = 0; i < sources.size(); ++i) {
      by_path_[absolute_normal(sources[i].path)].push_back(i);
      by_report_path_[fs::path(sources[i].report_path).lexically_normal().generic_string()].push_back(i);
    }
  }

  // The inputs `row_path` names; empty when none.
  const std::vector<std::size_t>& find(const std::string& row_path) const {
    static const std::vector<std::size_t> kNone;
    if (row_path.empty()) return kNone;
    if (const auto it = by_path_.find(absolute_normal(folder_ / row_path)); it != by_path_.end())
      return it->second;
    const std::string report = fs::path(to_valid_utf8(row_path)).lexically_normal().generic_string();
    if (const auto it = by_report_path_.find(report); it != by_report_path_.end()) return it->second;
    return kNone;
  }

 private:
  std::string absolute_normal(const fs::path& p) const {
    return (p.is_absolute() ? p : working_ / p).lexically_normal().string();
  }

  fs::path folder_, working_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_path_, by_report_path_;
};

enum AnnotationColumn : std::size_t { kPath, kX, kY, kWidth, kHeight, kLabel, kAnnotationColumns };
constexpr std::array<const char*, kAnnotationColumns> kAnnotationColumnNames{"path",  "x",      "y",
                                                                             "width", "height", "label"};

// Where each column is in `header`; FormatError (at `where`) when one is missing or there twice.
std::array<std::size_t, kAnnotationColumns> annotation_columns(const std::vector<std::string>& header,
                                                               const std::string& where) {
  std::array<std::size_t, kAnnotationColumns> at{};
  for (std::size_t c = 0; c < kAnnotationColumns; ++c) {
    bool twice = false;
    const std::optional<std::size_t> index = find_column(header, kAnnotationColumnNames[c], twice);
    if (twice) {
      throw FormatError(where + ": the annotations header names the column '" + kAnnotationColumnNames[c] +
                        "' twice");
    }
    if (!index) {
      throw FormatError(where + ": the annotations header has no '" + kAnnotationColumnNames[c] +
                        "' column (columns: path,x,y,width,height,label)");
    }
    at[c] = *index;
  }
  return at;
}

// What one annotations row says about its image.
struct AnnotationRow {
  bool listed_only = false;  // x, y, width, height and label all empty: the image, no box
  std::array<double, 4> corners{};
  Label label;
  std::string problem;
};

// The box corners of a row's x, y, width and height; the problem text when they make none.
std::string row_corners(const std::vector<std::string>& fields,
                        const std::array<std::size_t, kAnnotationColumns>& at,
                        std::array<double, 4>& corners) {
  std::array<double, 4> v{};  // x, y, width, height
  for (std::size_t c = kX; c <= kHeight; ++c) {
    if (std::string problem = csv_number(fields[at[c]], kAnnotationColumnNames[c], v[c - kX]);
        !problem.empty()) {
      return problem;
    }
  }
  if (!(v[2] > 0)) return "width " + number_text(v[2]) + " is not positive";
  if (!(v[3] > 0)) return "height " + number_text(v[3]) + " is not positive";
  corners = {v[0], v[1], v[0] + v[2], v[1] + v[3]};
  if (!std::isfinite(corners[2]) || !std::isfinite(corners[3]))
    return "x + width or y + height is not a finite number";
  return {};
}

AnnotationRow annotation_row(const std::vector<std::string>& fields,
                             const std::array<std::size_t, kAnnotationColumns>& at) {
  AnnotationRow row;
  row.listed_only =
      std::all_of(at.begin() + kX, at.end(), [&](std::size_t c) { return trim(fields[c]).empty(); });
  if (row.listed_only) return row;
  row.problem = row_corners(fields, at, row.corners);
  if (row.problem.empty()) row.problem = label_from_text(to_valid_utf8(fields[at[kLabel]]), row.label);
  return row;
}

}  // namespace

AnnotationsSummary read_annotations(const std::string& csv_path, std::vector<SourceFile>& sources) {
  const std::string name = to_valid_utf8(csv_path);
  core::RegularFileStream in(csv_path, "the annotations CSV");
  if (in.size_bytes() > kMaxAnnotationsBytes) {
    throw FormatError("the annotations CSV " + name + " is larger than " +
                      std::to_string(kMaxAnnotationsBytes >> 30) + " GiB");
  }

  std::vector<bool> manifest_gave_boxes(sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) manifest_gave_boxes[i] = sources[i].targets.boxes_given;
  const InputIndex inputs(sources, fs::path(csv_path).parent_path());
  CsvRecords records(in, name);
  std::vector<std::string> fields;
  std::vector<std::string> header;
  std::array<std::size_t, kAnnotationColumns> at{};
  std::set<std::string> unmatched;
  AnnotationsSummary summary;
  while (records.next(fields)) {
    if (header.empty()) {
      header = std::move(fields);
      at = annotation_columns(header, records.where());
      continue;
    }
    if (fields.size() != header.size()) {
      throw FormatError(records.where() + ": " + std::to_string(fields.size()) + " fields, the header has " +
                        std::to_string(header.size()));
    }
    ++summary.rows;
    const std::vector<std::size_t>& named = inputs.find(fields[at[kPath]]);
    if (named.empty()) {
      ++summary.unmatched_rows;
      const std::string path = to_valid_utf8(fields[at[kPath]]);
      if (unmatched.size() < AnnotationsSummary::kMaxUnmatchedPaths && unmatched.insert(path).second) {
        summary.unmatched_paths.push_back(path);
      }
      continue;
    }
    const AnnotationRow row = annotation_row(fields, at);
    for (const std::size_t i : named) {
      TargetSources& targets = sources[i].targets;
      if (manifest_gave_boxes[i]) {
        fail<BoxKind>(targets, records.where(), "the manifest's boxes column gives this image's boxes too");
      } else if (!row.problem.empty()) {
        fail<BoxKind>(targets, records.where(), row.problem);
      } else if (!row.listed_only) {
        add<BoxKind>(targets, row.corners, row.label, records.where());
      }
    }
  }
  if (header.empty()) {
    throw FormatError("the annotations CSV " + name +
                      " is empty (expected a header line: path,x,y,width,height,label)");
  }
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (!manifest_gave_boxes[i]) summary.boxes += sources[i].targets.boxes.size();
    sources[i].targets.boxes_given = true;
  }
  return summary;
}

namespace {

// ---- Labels to ids ----------------------------------------------------------------------------

// The classes a dataset's box and landmark labels imply without a class map.
TargetClasses classes_from_labels(const std::vector<SourceFile>& sources) {
  std::set<std::string> names;
  std::int32_t largest = 0;  // named targets carry 0 until resolved
  for (const SourceFile& source : sources) {
    const TargetSources& t = source.targets;
    for (const NamedLabel& label : t.box_names) names.insert(label.name);
    for (const NamedLabel& label : t.landmark_names) names.insert(label.name);
    for (const Box& box : t.boxes) largest = std::max(largest, box.label);
    for (const Landmark& landmark : t.landmarks) largest = std::max(largest, landmark.label);
  }
  TargetClasses classes;
  classes.names.emplace_back("background");
  if (names.empty()) {
    for (std::int32_t id = 1; id <= largest; ++id) classes.names.push_back(std::to_string(id));
    return classes;
  }
  names.erase("background");  // id 0 already: resolve_kind says so for each box
  for (const std::string& name : names) {
    if (classes.names.size() > static_cast<std::size_t>(kMaxTargetClass)) break;  // the rest: not placed
    classes.names.push_back(name);
  }
  return classes;
}

// How resolve_kind judges a label.
struct LabelRule {
  const TargetClasses& classes;
  std::unordered_map<std::string_view, std::int32_t> ids;  // name -> id
  bool class_map = false;                                  // the classes are a class map
  bool names_in_use = false;                               // no class map, and labels are names
};

template <class Kind>
void resolve_kind(TargetSources& t, const LabelRule& rule) {
  auto& targets = Kind::targets(t);
  for (std::size_t i = 0; i < targets.size() && Kind::problem(t).empty(); ++i) {
    const std::int32_t id = targets[i].label;
    if (id == 0) continue;  // a name, below
    const std::string where = std::string(Kind::kItem) + " " + std::to_string(i + 1);
    if (rule.class_map && !rule.classes.contains(id)) {
      fail<Kind>(t, where,
                 "the label " + std::to_string(id) + " is not in the class map (ids 0.." +
                     std::to_string(rule.classes.names.size() - 1) + ")");
    } else if (rule.names_in_use) {
      fail<Kind>(
          t, where,
          "the label " + std::to_string(id) +
              " is an id while other labels are names; a class map (id -> name) says which name it is");
    }
  }
  for (const NamedLabel& label : std::vector<NamedLabel>(std::move(Kind::names(t)))) {
    if (!Kind::problem(t).empty()) break;
    const std::string where = std::string(Kind::kItem) + " " + std::to_string(label.index + 1);
    const auto it = rule.ids.find(label.name);
    if (it == rule.ids.end()) {
      fail<Kind>(t, where,
                 "the label " + in_quotes(label.name) +
                     (rule.class_map ? " is not in the class map"
                                     : " is beyond the 65535 class names medload holds"));
    } else if (it->second == 0) {
      fail<Kind>(t, where,
                 "the label " + in_quotes(label.name) + " is the background (id 0), which no " + Kind::kItem +
                     " is");
    } else if (label.index < targets.size()) {
      targets[label.index].label = it->second;
    }
  }
  Kind::names(t).clear();
}

}  // namespace

TargetClasses resolve_target_classes(std::vector<SourceFile>& sources,
                                     const std::optional<TargetClasses>& map) {
  const TargetClasses classes = map ? *map : classes_from_labels(sources);
  LabelRule rule{classes, {}, map.has_value(), false};
  for (std::size_t id = 0; id < classes.names.size(); ++id) {
    rule.ids.emplace(classes.names[id], static_cast<std::int32_t>(id));
  }
  rule.names_in_use = !map && std::any_of(sources.begin(), sources.end(), [](const SourceFile& s) {
    return !s.targets.box_names.empty() || !s.targets.landmark_names.empty();
  });
  const std::int32_t class_count = map ? static_cast<std::int32_t>(classes.names.size()) : 0;
  for (SourceFile& source : sources) {
    resolve_kind<BoxKind>(source.targets, rule);
    resolve_kind<LandmarkKind>(source.targets, rule);
    source.targets.class_count = class_count;
  }
  return classes;
}

}  // namespace medload::loader
