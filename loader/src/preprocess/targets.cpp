// Targets through the geometry of preprocessing (targets.h). Masks are resampled with integer
// arithmetic only, so which source pixel an output pixel takes never depends on rounding.

#include "medload/loader/preprocess/targets.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "medload/core/check_range.h"
#include "medload/core/error.h"

namespace medload::loader {

namespace {

// Largest side of an original image or an output grid.
constexpr std::int64_t kMaxSide = 65535;

[[noreturn]] void bad_geometry(const Geometry& g, const std::string& what) {
  throw FormatError("geometry " + g.to_json().dump() + ": " + what);
}

// The output grid's columns and rows: the resized crop and its padding (not checked).
std::int64_t grid_width(const Geometry& g) {
  return std::int64_t{g.pad_left} + g.resized_width() + g.pad_right;
}
std::int64_t grid_height(const Geometry& g) {
  return std::int64_t{g.pad_top} + g.resized_height() + g.pad_bottom;
}

void check_geometry(const Geometry& g) {
  if (g.original_width < 1 || g.original_height < 1 || g.original_width > kMaxSide ||
      g.original_height > kMaxSide) {
    bad_geometry(g, "the original size is not 1..65535 on each side");
  }
  if (g.crop_w < 1 || g.crop_h < 1 || g.crop_x < 0 || g.crop_y < 0 ||
      g.crop_x > g.original_width - g.crop_w || g.crop_y > g.original_height - g.crop_h) {
    bad_geometry(g, "the crop box is not inside the original image");
  }
  if (!std::isfinite(g.scale) || g.scale <= 0 || g.scale * std::max(g.crop_w, g.crop_h) > kMaxSide)
    bad_geometry(g, "the scale is not a positive number that keeps the output under 65536 pixels a side");
  for (const int pad : {g.pad_top, g.pad_left, g.pad_bottom, g.pad_right})
    if (pad < 0 || pad > kMaxSide) bad_geometry(g, "a padding is not 0..65535");
  if (g.resized_width() < 1 || g.resized_height() < 1) bad_geometry(g, "the crop resizes to nothing");
  if (grid_width(g) > kMaxSide || grid_height(g) > kMaxSide)
    bad_geometry(g, "the output is over 65535 pixels a side");
}

void check_mask(const LabelMask& mask, int height, int width, const std::string& grid) {
  if (mask.height != height || mask.width != width ||
      mask.labels.size() != static_cast<std::size_t>(height) * static_cast<std::size_t>(width)) {
    throw FormatError("a " + std::to_string(mask.width) + "x" + std::to_string(mask.height) + " mask with " +
                      std::to_string(mask.labels.size()) + " labels does not fit " + grid + " (" +
                      std::to_string(width) + "x" + std::to_string(height) + ")");
  }
}

// For each of `count` pixels along an axis over which `source_count` source pixels were
// stretched, the source pixel under its centre, offset by `first`:
// first + floor((k + 0.5) * source_count / count), in integers.
std::vector<int> nearest_sources(int count, int source_count, int first) {
  std::vector<int> sources(static_cast<std::size_t>(count));
  for (int k = 0; k < count; ++k) {
    sources[static_cast<std::size_t>(k)] =
        first + static_cast<int>((2 * std::int64_t{k} + 1) * source_count / (2 * std::int64_t{count}));
  }
  return sources;
}

// Copies source(rows[i], cols[j]) to target(top + i, left + j) for every i, j.
void resample(const LabelMask& source, const std::vector<int>& rows, const std::vector<int>& cols, int top,
              int left, LabelMask& target) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::uint16_t* from = source.labels.data() + static_cast<std::size_t>(rows[i]) * source.width;
    std::uint16_t* to = target.labels.data() + (static_cast<std::size_t>(top) + i) * target.width + left;
    for (std::size_t j = 0; j < cols.size(); ++j) to[j] = from[cols[j]];
  }
}

LabelMask background(int height, int width) {
  LabelMask mask;
  mask.height = height;
  mask.width = width;
  mask.labels.assign(static_cast<std::size_t>(height) * static_cast<std::size_t>(width), 0);
  return mask;
}

void check_box(const Box& b) {
  const bool finite =
      std::isfinite(b.x0) && std::isfinite(b.y0) && std::isfinite(b.x1) && std::isfinite(b.y1);
  if (!finite || !(b.x0 < b.x1) || !(b.y0 < b.y1)) {
    throw FormatError("box [" + core::format_number(b.x0) + ", " + core::format_number(b.y0) + ", " +
                      core::format_number(b.x1) + ", " + core::format_number(b.y1) + "] (label " +
                      std::to_string(b.label) + ") is not finite or has no area");
  }
}

void check_point(const Landmark& p) {
  if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
    throw FormatError("landmark (" + core::format_number(p.x) + ", " + core::format_number(p.y) +
                      ") (label " + std::to_string(p.label) + ") is not finite");
  }
}

// How far outside an area a point may lie and still count as on its edge: what mapping a point
// on the edge there and back can add in rounding.
constexpr double kEdgeTolerance = 1e-6;

// An axis-aligned rectangle [x0, x1] x [y0, y1].
struct Area {
  double x0, y0, x1, y1;
  bool holds(double x, double y) const {
    return x >= x0 - kEdgeTolerance && x <= x1 + kEdgeTolerance && y >= y0 - kEdgeTolerance &&
           y <= y1 + kEdgeTolerance;
  }
  // A point that `holds`, moved onto the area where rounding put it just outside.
  Landmark clamped(Landmark p) const {
    p.x = std::clamp(p.x, x0, x1);
    p.y = std::clamp(p.y, y0, y1);
    return p;
  }
};

Area crop_area(const Geometry& g) {
  return {double(g.crop_x), double(g.crop_y), double(g.crop_x) + g.crop_w, double(g.crop_y) + g.crop_h};
}

Area resized_area(const Geometry& g) {
  return {double(g.pad_left), double(g.pad_top), double(g.pad_left) + g.resized_width(),
          double(g.pad_top) + g.resized_height()};
}

// `b` clipped to `area`; x0 >= x1 or y0 >= y1 when nothing of it is inside.
Box clip(const Box& b, const Area& area) {
  return {std::max(b.x0, area.x0), std::max(b.y0, area.y0), std::min(b.x1, area.x1), std::min(b.y1, area.y1),
          b.label};
}

double area_of(const Box& b) { return std::max(0.0, b.x1 - b.x0) * std::max(0.0, b.y1 - b.y0); }

// Each box clipped to `from` and mapped corner by corner with `map` (then clipped to `to`, so that
// rounding never puts an edge outside it); a box with no area inside `from`, or less than
// `min_visible` of its area, is dropped and counted.
template <class Map>
MappedBoxes map_boxes(const std::vector<Box>& boxes, const Area& from, const Area& to, double min_visible,
                      Map map) {
  MappedBoxes mapped;
  for (const Box& b : boxes) {
    check_box(b);
    const Box inside = clip(b, from);
    const double visible = area_of(inside);
    if (visible <= 0 || visible < min_visible * area_of(b)) {
      ++mapped.dropped;
      continue;
    }
    Box out{0, 0, 0, 0, b.label};
    map(inside.x0, inside.y0, out.x0, out.y0);
    map(inside.x1, inside.y1, out.x1, out.y1);
    mapped.boxes.push_back(clip(out, to));
  }
  return mapped;
}

// Each point in `from` (on its edge within kEdgeTolerance) mapped with `map` and kept inside `to`;
// the others dropped and counted.
template <class Map>
MappedLandmarks map_points(const std::vector<Landmark>& points, const Area& from, const Area& to, Map map) {
  MappedLandmarks mapped;
  for (const Landmark& p : points) {
    check_point(p);
    if (!from.holds(p.x, p.y)) {
      ++mapped.dropped;
      continue;
    }
    const Landmark inside = from.clamped(p);
    Landmark out{0, 0, p.label};
    map(inside.x, inside.y, out.x, out.y);
    mapped.points.push_back(to.clamped(out));
  }
  return mapped;
}

}  // namespace

int output_width(const Geometry& geometry) {
  check_geometry(geometry);
  return static_cast<int>(grid_width(geometry));
}

int output_height(const Geometry& geometry) {
  check_geometry(geometry);
  return static_cast<int>(grid_height(geometry));
}

LabelMask mask_to_output(const LabelMask& original, const Geometry& g) {
  check_geometry(g);
  check_mask(original, g.original_height, g.original_width, "the original image");
  LabelMask out = background(static_cast<int>(grid_height(g)), static_cast<int>(grid_width(g)));
  resample(original, nearest_sources(g.resized_height(), g.crop_h, g.crop_y),
           nearest_sources(g.resized_width(), g.crop_w, g.crop_x), g.pad_top, g.pad_left, out);
  return out;
}

LabelMask mask_to_original(const LabelMask& output, const Geometry& g) {
  check_geometry(g);
  check_mask(output, static_cast<int>(grid_height(g)), static_cast<int>(grid_width(g)), "the output grid");
  LabelMask original = background(g.original_height, g.original_width);
  resample(output, nearest_sources(g.crop_h, g.resized_height(), g.pad_top),
           nearest_sources(g.crop_w, g.resized_width(), g.pad_left), g.crop_y, g.crop_x, original);
  return original;
}

MappedBoxes boxes_to_output(const std::vector<Box>& boxes, const Geometry& g, double min_visible) {
  check_geometry(g);
  core::check_range("min_visible", min_visible, 0.0, 1.0);
  return map_boxes(boxes, crop_area(g), resized_area(g), min_visible,
                   [&g](double x, double y, double& tx, double& ty) { g.map_to_output(x, y, tx, ty); });
}

MappedBoxes boxes_to_original(const std::vector<Box>& boxes, const Geometry& g) {
  check_geometry(g);
  return map_boxes(boxes, resized_area(g), crop_area(g), 0.0,
                   [&g](double x, double y, double& tx, double& ty) { g.map_to_original(x, y, tx, ty); });
}

MappedLandmarks landmarks_to_output(const std::vector<Landmark>& points, const Geometry& g) {
  check_geometry(g);
  return map_points(points, crop_area(g), resized_area(g),
                    [&g](double x, double y, double& tx, double& ty) { g.map_to_output(x, y, tx, ty); });
}

MappedLandmarks landmarks_to_original(const std::vector<Landmark>& points, const Geometry& g) {
  check_geometry(g);
  return map_points(points, resized_area(g), crop_area(g),
                    [&g](double x, double y, double& tx, double& ty) { g.map_to_original(x, y, tx, ty); });
}

FrameTargets targets_to_output(const FrameTargets& original, const Geometry& geometry, double min_visible) {
  FrameTargets out;
  out.mask_state = original.mask_state;
  if (original.mask_state == TargetState::kValid) out.mask = mask_to_output(original.mask, geometry);
  out.boxes_state = original.boxes_state;
  if (original.boxes_state == TargetState::kValid) {
    MappedBoxes mapped = boxes_to_output(original.boxes, geometry, min_visible);
    out.boxes = std::move(mapped.boxes);
    out.boxes_dropped = mapped.dropped;
  }
  out.landmarks_state = original.landmarks_state;
  if (original.landmarks_state == TargetState::kValid) {
    MappedLandmarks mapped = landmarks_to_output(original.landmarks, geometry);
    out.landmarks = std::move(mapped.points);
    out.landmarks_dropped = mapped.dropped;
  }
  return out;
}

}  // namespace medload::loader
