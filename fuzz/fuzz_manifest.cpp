// fuzz_manifest: the CSV manifest parser and the target input beside it. parse_csv_line on the
// first line, then the whole input as a manifest through list_sources (the files it names need
// not exist: a missing file is still an entry), as an annotations CSV over those entries
// (read_annotations), as a class map (read_target_classes), and as box and landmark text, JSON
// and CSV (parse_boxes_json, ...); then resolve_target_classes with and without that map.
// medload::Error (FormatError for a malformed line) is the expected answer to bad input; anything
// else escaping, a memory error, labels or targets that break what source.h and annotation.h
// promise (a class both known and unknown, text that is not UTF-8), is a bug.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/source.h"

namespace {

using medload::loader::Box;
using medload::loader::Landmark;
using medload::loader::SourceFile;
using medload::loader::TargetClasses;
using medload::loader::TargetSources;

void require(bool condition) {
  if (!condition) std::abort();
}

// What every reader of targets promises, before and after resolve_target_classes: text that
// reports show is UTF-8, a kind with a problem holds nothing, boxes have area, numbers are finite.
void check_targets(const TargetSources& t, bool resolved, const TargetClasses* classes) {
  for (const std::string* text :
       {&t.mask_report_path, &t.mask_problem, &t.boxes_problem, &t.landmarks_problem}) {
    require(medload::is_valid_utf8(*text));
  }
  require(t.boxes_problem.empty() || (t.boxes.empty() && t.box_names.empty()));
  require(t.landmarks_problem.empty() || (t.landmarks.empty() && t.landmark_names.empty()));
  require(t.mask_problem.empty() || t.mask_path.empty());
  for (const Box& box : t.boxes) {
    require(std::isfinite(box.x0) && std::isfinite(box.y0) && std::isfinite(box.x1) && std::isfinite(box.y1));
    require(box.x1 > box.x0 && box.y1 > box.y0);
  }
  for (const Landmark& landmark : t.landmarks)
    require(std::isfinite(landmark.x) && std::isfinite(landmark.y));
  for (const auto* names : {&t.box_names, &t.landmark_names}) {
    for (const auto& name : *names) require(medload::is_valid_utf8(name.name) && !name.name.empty());
  }
  if (!resolved) return;
  require(t.box_names.empty() && t.landmark_names.empty());
  for (const Box& box : t.boxes)
    require(box.label >= 1 && (classes == nullptr || classes->contains(box.label)));
  for (const Landmark& landmark : t.landmarks) {
    require(landmark.label >= 1 && (classes == nullptr || classes->contains(landmark.label)));
  }
}

// A sample's labels: valid UTF-8, none empty, none both known and unknown (list_sources resolves
// a class named in both columns to unknown).
void check_labels(const SourceFile& source) {
  for (const std::string& label : source.info.labels)
    require(medload::is_valid_utf8(label) && !label.empty());
  for (const std::string& label : source.info.unknown_labels) {
    require(medload::is_valid_utf8(label) && !label.empty());
    require(std::find(source.info.labels.begin(), source.info.labels.end(), label) ==
            source.info.labels.end());
  }
}

void check_classes(const TargetClasses& classes) {
  require(!classes.names.empty() && classes.names.size() <= 65536);
  for (const std::string& name : classes.names) require(medload::is_valid_utf8(name) && !name.empty());
}

// The input as box and landmark text of each form.
void parse_target_text(const std::string& text) {
  TargetSources json;
  medload::loader::parse_boxes_json(text, json);
  medload::loader::parse_landmarks_json(text, json);
  check_targets(json, false, nullptr);
  TargetSources csv;
  std::istringstream boxes(text);
  medload::loader::parse_boxes_csv(boxes, "fuzz.csv", csv);
  std::istringstream landmarks(text);
  medload::loader::parse_landmarks_csv(landmarks, "fuzz.csv", csv);
  check_targets(csv, false, nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static medload::fuzz::TempFile manifest(".csv");
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)medload::loader::parse_csv_line(text.substr(0, text.find('\n')), "fuzz:1");
  } catch (const medload::Error&) {
  }
  const std::string& path = manifest.write(data, size);
  std::vector<SourceFile> sources;
  try {
    sources = medload::loader::list_sources("/nonexistent-medload-fuzz-root", path);
    for (const auto& s : sources) {
      (void)s.cache_path();
      (void)medload::loader::loose_patient_id(s.info.patient_id);
      check_targets(s.targets, false, nullptr);
      check_labels(s);
    }
  } catch (const medload::Error&) {
  }
  try {
    (void)medload::loader::read_annotations(path, sources);
  } catch (const medload::Error&) {
  }
  std::optional<TargetClasses> map;
  try {
    map = medload::loader::read_target_classes(path);
    check_classes(*map);
  } catch (const medload::Error&) {
  }
  parse_target_text(text);

  std::vector<SourceFile> without_map = sources;
  check_classes(medload::loader::resolve_target_classes(without_map, std::nullopt));
  for (const SourceFile& s : without_map) check_targets(s.targets, true, nullptr);
  if (map) {
    check_classes(medload::loader::resolve_target_classes(sources, map));
    for (const SourceFile& s : sources) check_targets(s.targets, true, &*map);
  }
  return 0;
}
