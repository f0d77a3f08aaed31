#include "medload/loader/ingest/staged_frame.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "medload/core/error.h"

namespace medload::loader {

namespace {

// Output pixels `side` original pixels of the crop became, `longer` being the crop's longer side.
int resized_extent(int side, int longer, double scale) {
  if (side <= 0 || longer <= 0) return 0;
  const int size = static_cast<int>(std::lround(longer * scale));
  return side == longer ? size
                        : std::clamp(static_cast<int>(std::lround(side * scale)), 1, std::max(size, 1));
}

// Output pixels per original pixel along one axis; `scale` when the crop is empty.
double axis_factor(int resized, int side, double scale) {
  return resized > 0 && side > 0 ? static_cast<double>(resized) / side : scale;
}

}  // namespace

int Geometry::resized_width() const { return resized_extent(crop_w, std::max(crop_w, crop_h), scale); }

int Geometry::resized_height() const { return resized_extent(crop_h, std::max(crop_w, crop_h), scale); }

void Geometry::map_to_original(double x, double y, double& x_orig, double& y_orig) const {
  x_orig = crop_x + (x - pad_left) / axis_factor(resized_width(), crop_w, scale);
  y_orig = crop_y + (y - pad_top) / axis_factor(resized_height(), crop_h, scale);
}

void Geometry::map_to_output(double x_orig, double y_orig, double& x, double& y) const {
  x = (x_orig - crop_x) * axis_factor(resized_width(), crop_w, scale) + pad_left;
  y = (y_orig - crop_y) * axis_factor(resized_height(), crop_h, scale) + pad_top;
}

nlohmann::json Geometry::to_json() const {
  return {{"original_height", original_height},
          {"original_width", original_width},
          {"crop_x", crop_x},
          {"crop_y", crop_y},
          {"crop_w", crop_w},
          {"crop_h", crop_h},
          {"scale", scale},
          {"pad_top", pad_top},
          {"pad_left", pad_left},
          {"pad_bottom", pad_bottom},
          {"pad_right", pad_right}};
}

Geometry Geometry::from_json(const nlohmann::json& j) {
  Geometry g;
  g.original_height = j.value("original_height", 0);
  g.original_width = j.value("original_width", 0);
  g.crop_x = j.value("crop_x", 0);
  g.crop_y = j.value("crop_y", 0);
  g.crop_w = j.value("crop_w", 0);
  g.crop_h = j.value("crop_h", 0);
  g.scale = j.value("scale", 1.0);
  g.pad_top = j.value("pad_top", 0);
  g.pad_left = j.value("pad_left", 0);
  g.pad_bottom = j.value("pad_bottom", 0);
  g.pad_right = j.value("pad_right", 0);
  return g;
}

StageTimes& StageTimes::operator+=(const StageTimes& other) {
  grayscale_ns += other.grayscale_ns;
  intensity_ns += other.intensity_ns;
  roi_crop_ns += other.roi_crop_ns;
  letterbox_ns += other.letterbox_ns;
  clahe_ns += other.clahe_ns;
  bilateral_ns += other.bilateral_ns;
  output_ns += other.output_ns;
  total_ns += other.total_ns;
  return *this;
}

nlohmann::json StageTimes::to_json() const {
  return {{"grayscale_ns", grayscale_ns}, {"intensity_ns", intensity_ns}, {"roi_crop_ns", roi_crop_ns},
          {"letterbox_ns", letterbox_ns}, {"clahe_ns", clahe_ns},         {"bilateral_ns", bilateral_ns},
          {"output_ns", output_ns},       {"total_ns", total_ns}};
}

StageTimes StageTimes::from_json(const nlohmann::json& j) {
  StageTimes t;
  t.grayscale_ns = j.value("grayscale_ns", std::int64_t{0});
  t.intensity_ns = j.value("intensity_ns", std::int64_t{0});
  t.roi_crop_ns = j.value("roi_crop_ns", std::int64_t{0});
  t.letterbox_ns = j.value("letterbox_ns", std::int64_t{0});
  t.clahe_ns = j.value("clahe_ns", std::int64_t{0});
  t.bilateral_ns = j.value("bilateral_ns", std::int64_t{0});
  t.output_ns = j.value("output_ns", std::int64_t{0});
  t.total_ns = j.value("total_ns", std::int64_t{0});
  return t;
}

namespace {

TargetState state_from_json(const nlohmann::json& j, const char* field) {
  const int value = j.at(field).get<int>();
  if (value < 0 || value > static_cast<int>(TargetState::kInvalid)) {
    throw FormatError(std::string("targets: ") + field + " is " + std::to_string(value) + "; allowed 0..2");
  }
  return static_cast<TargetState>(value);
}

double finite(const nlohmann::json& j, const char* what) {
  const double v = j.get<double>();
  if (!std::isfinite(v)) throw FormatError(std::string("targets: a ") + what + " coordinate is not finite");
  return v;
}

std::int32_t target_label(const nlohmann::json& j, const char* what) {
  const std::int64_t v = j.get<std::int64_t>();
  if (v < 1 || v > kMaxTargetClass) {
    throw FormatError(std::string("targets: a ") + what + " label is " + std::to_string(v) + "; allowed 1.." +
                      std::to_string(kMaxTargetClass));
  }
  return static_cast<std::int32_t>(v);
}

// The rows of a table of `width` numbers each.
const nlohmann::json& rows(const nlohmann::json& j, const char* field, std::size_t width) {
  const nlohmann::json& table = j.at(field);
  if (!table.is_array()) throw FormatError(std::string("targets: ") + field + " is not an array");
  for (const auto& row : table) {
    if (!row.is_array() || row.size() != width) {
      throw FormatError(std::string("targets: a row of ") + field + " does not have " +
                        std::to_string(width) + " values");
    }
  }
  return table;
}

}  // namespace

nlohmann::json box_rows(const std::vector<Box>& boxes) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Box& b : boxes) rows.push_back({b.x0, b.y0, b.x1, b.y1, b.label});
  return rows;
}

nlohmann::json landmark_rows(const std::vector<Landmark>& points) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Landmark& p : points) rows.push_back({p.x, p.y, p.label});
  return rows;
}

nlohmann::json targets_to_json(const FrameTargets& targets) {
  return {{"mask", static_cast<int>(targets.mask_state)},
          {"mask_height", targets.mask.height},
          {"mask_width", targets.mask.width},
          {"boxes", static_cast<int>(targets.boxes_state)},
          {"box_rows", box_rows(targets.boxes)},
          {"boxes_dropped", targets.boxes_dropped},
          {"landmarks", static_cast<int>(targets.landmarks_state)},
          {"landmark_rows", landmark_rows(targets.landmarks)},
          {"landmarks_dropped", targets.landmarks_dropped}};
}

FrameTargets targets_from_json(const nlohmann::json& j) {
  FrameTargets t;
  t.mask_state = state_from_json(j, "mask");
  if (t.mask_state == TargetState::kValid) {
    t.mask.height = j.at("mask_height").get<int>();
    t.mask.width = j.at("mask_width").get<int>();
    if (t.mask.height < 1 || t.mask.height > 65535 || t.mask.width < 1 || t.mask.width > 65535) {
      throw FormatError("targets: the mask is " + std::to_string(t.mask.width) + "x" +
                        std::to_string(t.mask.height) + "; each side must be 1..65535");
    }
  }
  t.boxes_state = state_from_json(j, "boxes");
  for (const auto& row : rows(j, "box_rows", 5)) {
    Box b{finite(row[0], "box"), finite(row[1], "box"), finite(row[2], "box"), finite(row[3], "box"),
          target_label(row[4], "box")};
    if (b.x1 <= b.x0 || b.y1 <= b.y0) throw FormatError("targets: a box has no area");
    t.boxes.push_back(b);
  }
  if (t.boxes_state != TargetState::kValid && !t.boxes.empty())
    throw FormatError("targets: boxes that are not valid");
  t.boxes_dropped = j.at("boxes_dropped").get<std::size_t>();
  t.landmarks_state = state_from_json(j, "landmarks");
  for (const auto& row : rows(j, "landmark_rows", 3)) {
    t.landmarks.push_back(
        {finite(row[0], "landmark"), finite(row[1], "landmark"), target_label(row[2], "landmark")});
  }
  if (t.landmarks_state != TargetState::kValid && !t.landmarks.empty()) {
    throw FormatError("targets: landmarks that are not valid");
  }
  t.landmarks_dropped = j.at("landmarks_dropped").get<std::size_t>();
  return t;
}

}  // namespace medload::loader
