#include "targets_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "decoders.h"
#include "scan_internal.h"

namespace medload::loader::detail {

namespace {

std::string size_text(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

// Why `label` cannot be a box's or landmark's class ("" when it can).
std::string label_problem(std::int32_t label, std::int32_t class_count) {
  if (label < 1 || label > kMaxTargetClass) {
    return "label " + std::to_string(label) + " is not a class id 1.." + std::to_string(kMaxTargetClass);
  }
  if (class_count > 0 && label >= class_count) {
    return "label " + std::to_string(label) + " is not in the class map (ids 0.." +
           std::to_string(class_count - 1) + ")";
  }
  return "";
}

// ---- masks ------------------------------------------------------------------------------------

// The mask file's frames, decoded without the image checks (a mask is mostly background: it
// would be `blank`). Sets `problem` when it cannot be read.
std::vector<DecodedImage> decode_mask(const TargetSources& targets, const ValidationOptions& options,
                                      std::string& problem) {
  std::vector<DecodedImage> frames;
  const std::string name = "the mask " + targets.mask_report_path;
  std::vector<std::uint8_t> bytes;
  if (const auto failure = read_file_bytes(targets.mask_path, options.max_file_bytes, bytes)) {
    problem = name + " cannot be read: " + failure->detail;
    return frames;
  }
  const Format format = sniff_format(bytes.data(), bytes.size());
  if (bytes.empty() || format == Format::kUnknown) {
    problem = name + " is not an image format medload reads: the content looks like " +
              std::string(describe_content(bytes.data(), bytes.size()));
    return frames;
  }
  FileOutcome outcome;
  outcome.ok = true;
  SampleInfo ignored;  // a mask's header says nothing about its image's sample
  decode_format(format, targets.mask_path, bytes.data(), bytes.size(), options, outcome, frames, ignored);
  if (!outcome.ok || frames.empty()) {
    problem = name + " cannot be decoded (" +
              std::string(outcome.reason ? reason_code(*outcome.reason) : "unreadable") +
              "): " + outcome.detail;
    frames.clear();
  }
  return frames;
}

// `frame` (a decoded mask frame) as class ids; sets `problem` when its values are no label map.
LabelMask to_label_mask(const DecodedImage& frame, const std::string& name, std::string& problem) {
  LabelMask mask;
  if (frame.channels != 1) {
    problem = name + " has " + std::to_string(frame.channels) +
              " channels; a mask is a single-channel label map (a palette or colour PNG is not)";
    return mask;
  }
  if (frame.type == PixelType::kFloat32 || frame.was_monochrome1) {
    problem =
        name +
        (frame.was_monochrome1 ? " is MONOCHROME1 (inverted values)" : " has rescaled (non-integer) values") +
        "; a mask holds class ids as stored";
    return mask;
  }
  mask.height = frame.height;
  mask.width = frame.width;
  const std::size_t n = std::size_t(frame.height) * std::size_t(frame.width);
  mask.labels.resize(n);
  if (frame.type == PixelType::kUInt8) {
    std::copy(frame.pixels.begin(), frame.pixels.begin() + static_cast<std::ptrdiff_t>(n),
              mask.labels.begin());
  } else if (frame.type == PixelType::kUInt16) {
    std::memcpy(mask.labels.data(), frame.pixels.data(), n * sizeof(std::uint16_t));
  } else {  // kInt16: class ids must not be negative
    const auto* values = reinterpret_cast<const std::int16_t*>(frame.pixels.data());
    for (std::size_t i = 0; i < n; ++i) {
      if (values[i] < 0) {
        problem = name + " holds the negative value " + std::to_string(values[i]) + "; class ids are 0.." +
                  std::to_string(kMaxTargetClass);
        return {};
      }
      mask.labels[i] = static_cast<std::uint16_t>(values[i]);
    }
  }
  return mask;
}

// Sets `problem` when `mask` holds ids past the class map's.
void check_mask_labels(const LabelMask& mask, std::int32_t class_count, const std::string& name,
                       std::string& problem) {
  if (class_count <= 0) return;
  std::set<std::uint16_t> unknown;
  for (const std::uint16_t id : mask.labels) {
    if (id >= class_count && unknown.insert(id).second && unknown.size() >= 5) break;
  }
  if (unknown.empty()) return;
  std::string ids;
  for (const std::uint16_t id : unknown) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
  problem = name + " holds values that are not in the class map (ids 0.." + std::to_string(class_count - 1) +
            "): " + ids;
}

// The mask's problem, without its kind ("" when it is valid); sets the frames' masks when valid.
std::string check_mask(const TargetSources& targets, const ValidationOptions& options,
                       std::vector<DecodedImage>& frames) {
  std::string problem;
  const std::vector<DecodedImage> decoded = decode_mask(targets, options, problem);
  if (!problem.empty()) return problem;
  const std::string name = "the mask " + targets.mask_report_path;
  if (decoded.size() != frames.size()) {
    return name + " has " + std::to_string(decoded.size()) + " frames, the image " +
           std::to_string(frames.size());
  }
  std::vector<LabelMask> masks;
  for (std::size_t k = 0; k < decoded.size(); ++k) {
    if (decoded[k].height != frames[k].height || decoded[k].width != frames[k].width) {
      return name + " is " + size_text(decoded[k].width, decoded[k].height) + " pixels, the image " +
             size_text(frames[k].width, frames[k].height);
    }
    masks.push_back(to_label_mask(decoded[k], name, problem));
    if (problem.empty()) check_mask_labels(masks.back(), targets.class_count, name, problem);
    if (!problem.empty()) return problem;
  }
  for (std::size_t k = 0; k < frames.size(); ++k) {
    frames[k].targets.mask_state = TargetState::kValid;
    frames[k].targets.mask = std::move(masks[k]);
  }
  return "";
}

// Checks the mask against `frames` and sets their masks; returns the problem ("" when valid).
std::string attach_mask(const TargetSources& targets, const ValidationOptions& options,
                        std::vector<DecodedImage>& frames) {
  if (!targets.mask_problem.empty()) return targets.mask_problem;
  const std::string problem = check_mask(targets, options, frames);
  return problem.empty() ? problem : "mask: " + problem;
}

// ---- boxes and landmarks ----------------------------------------------------------------------

// `boxes` clipped to a width x height image; sets `problem` for the first box that cannot be used.
std::vector<Box> clip_boxes(const std::vector<Box>& boxes, int width, int height, std::int32_t class_count,
                            std::size_t& clipped, std::string& problem) {
  std::vector<Box> kept;
  for (std::size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k];
    const std::string which = "box " + std::to_string(k + 1);
    if (!std::isfinite(b.x0) || !std::isfinite(b.y0) || !std::isfinite(b.x1) || !std::isfinite(b.y1) ||
        b.x1 <= b.x0 || b.y1 <= b.y0) {
      problem = which + " is not a box with an area";
      return {};
    }
    if (const std::string p = label_problem(b.label, class_count); !p.empty()) {
      problem = which + ": " + p;
      return {};
    }
    Box c{std::max(b.x0, 0.0), std::max(b.y0, 0.0), std::min(b.x1, double(width)),
          std::min(b.y1, double(height)), b.label};
    if (c.x1 <= c.x0 || c.y1 <= c.y0) {
      problem = which + " lies outside the " + size_text(width, height) + " image";
      return {};
    }
    if (c.x0 != b.x0 || c.y0 != b.y0 || c.x1 != b.x1 || c.y1 != b.y1) ++clipped;
    kept.push_back(c);
  }
  return kept;
}

std::string check_landmarks(const std::vector<Landmark>& points, int width, int height,
                            std::int32_t class_count) {
  for (std::size_t k = 0; k < points.size(); ++k) {
    const Landmark& p = points[k];
    const std::string which = "landmark " + std::to_string(k + 1);
    if (!std::isfinite(p.x) || !std::isfinite(p.y) || p.x < 0 || p.y < 0 || p.x >= width || p.y >= height) {
      return which + " is not a point inside the " + size_text(width, height) + " image";
    }
    if (const std::string problem = label_problem(p.label, class_count); !problem.empty()) {
      return which + ": " + problem;
    }
  }
  return "";
}

// Boxes and landmarks name no frame of a multi-frame file.
constexpr const char* kMultiFrame = "the file has several frames; boxes and landmarks are given per file";

void attach_boxes(const TargetSources& targets, std::vector<DecodedImage>& frames, TargetReport& report) {
  std::string problem = targets.boxes_problem;  // the source's problems name their kind already
  if (problem.empty() && frames.size() > 1) problem = std::string("boxes: ") + kMultiFrame;
  std::vector<Box> boxes;
  if (problem.empty()) {
    const DecodedImage& f = frames.front();
    boxes = clip_boxes(targets.boxes, f.width, f.height, targets.class_count, report.boxes_clipped, problem);
    if (!problem.empty()) problem = "boxes: " + problem;
  }
  if (!problem.empty()) {
    report.boxes = TargetState::kInvalid;
    report.boxes_problem = problem;
    report.boxes_clipped = 0;
    return;
  }
  report.boxes = TargetState::kValid;
  report.box_count = boxes.size();
  frames.front().targets.boxes_state = TargetState::kValid;
  frames.front().targets.boxes = std::move(boxes);
}

void attach_landmarks(const TargetSources& targets, std::vector<DecodedImage>& frames, TargetReport& report) {
  std::string problem = targets.landmarks_problem;
  if (problem.empty() && frames.size() > 1) problem = std::string("landmarks: ") + kMultiFrame;
  if (problem.empty()) {
    problem =
        check_landmarks(targets.landmarks, frames.front().width, frames.front().height, targets.class_count);
    if (!problem.empty()) problem = "landmarks: " + problem;
  }
  if (!problem.empty()) {
    report.landmarks = TargetState::kInvalid;
    report.landmarks_problem = problem;
    return;
  }
  report.landmarks = TargetState::kValid;
  report.landmark_count = targets.landmarks.size();
  frames.front().targets.landmarks_state = TargetState::kValid;
  frames.front().targets.landmarks = targets.landmarks;
}

}  // namespace

void check_targets(const SourceFile& source, const ValidationOptions& options, FileOutcome& outcome,
                   std::vector<DecodedImage>& frames) {
  const TargetSources& targets = source.targets;
  if (!targets.any() || !outcome.ok || frames.empty()) return;
  TargetReport report;
  if (!targets.mask_path.empty() || !targets.mask_problem.empty()) {
    report.mask_problem = attach_mask(targets, options, frames);
    report.mask = report.mask_problem.empty() ? TargetState::kValid : TargetState::kInvalid;
  }
  if (targets.boxes_given || !targets.boxes_problem.empty()) attach_boxes(targets, frames, report);
  if (targets.landmarks_given || !targets.landmarks_problem.empty())
    attach_landmarks(targets, frames, report);
  for (DecodedImage& frame : frames) {  // the kinds given but unusable say so on every frame
    if (report.mask == TargetState::kInvalid) frame.targets.mask_state = TargetState::kInvalid;
    if (report.boxes == TargetState::kInvalid) frame.targets.boxes_state = TargetState::kInvalid;
    if (report.landmarks == TargetState::kInvalid) frame.targets.landmarks_state = TargetState::kInvalid;
  }
  if (report.mask == TargetState::kInvalid) outcome.warnings.emplace_back("mask_invalid");
  if (report.boxes == TargetState::kInvalid) outcome.warnings.emplace_back("boxes_invalid");
  if (report.boxes_clipped > 0) outcome.warnings.emplace_back("boxes_clipped");
  if (report.landmarks == TargetState::kInvalid) outcome.warnings.emplace_back("landmarks_invalid");
  outcome.targets = std::move(report);
}

}  // namespace medload::loader::detail
