#pragma once
/// Targets that follow their image through preprocessing: a label mask (a class id per pixel),
/// boxes and landmarks, moved onto the output grid with the image's Geometry, and predictions
/// moved back onto the original pixel grid. A mask moves by nearest neighbour only: every label
/// in the result is one the source holds at that place, never an interpolated or invented id.
/// Boxes and points move by the exact coordinate mapping (Geometry::map_to_output).
///
/// Coordinates are continuous pixel coordinates (pixel (i, j) covers [i, i+1) x [j, j+1)), as for
/// Geometry. The output grid is the crop box resized to resized_width() x resized_height() and
/// padded with background to (pad_left + resized_width() + pad_right) columns and
/// (pad_top + resized_height() + pad_bottom) rows.
///
/// Every function checks the geometry first (sides 1..65535, the crop box inside the original
/// image, finite positive scale, padding >= 0) and throws FormatError naming what is wrong: a
/// geometry read from a cache may have been crafted.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/staged_frame.h"

namespace medload::loader {

/// The output grid's columns and rows for `geometry` (padding included). Throws FormatError as
/// described above.
int output_width(const Geometry& geometry);
int output_height(const Geometry& geometry);

/// The mask of the original image (original_height x original_width) on the output grid: each
/// output pixel inside the resized crop takes the label under its centre's original position
/// (along each axis, source = crop + floor((i + 0.5) * crop side / resized side)); padding is
/// background. Throws FormatError when the mask's size is not the geometry's original size.
LabelMask mask_to_output(const LabelMask& original, const Geometry& geometry);

/// The inverse direction, for predictions: a mask on the output grid onto the original grid, each
/// original pixel inside the crop box taking the label under its centre's output position;
/// pixels outside the crop box are background. Where the resize enlarged (or kept) the crop, this
/// gives back exactly the mask mask_to_output was given, inside the crop box. Throws
/// FormatError when the mask's size is not the output grid's.
LabelMask mask_to_original(const LabelMask& output, const Geometry& geometry);

/// Boxes or points after a mapping, and how many were dropped.
struct MappedBoxes {
  std::vector<Box> boxes;
  std::size_t dropped = 0;
};
struct MappedLandmarks {
  std::vector<Landmark> points;
  std::size_t dropped = 0;
};

/// Boxes in original coordinates onto the output grid: each is clipped to the crop box and
/// mapped; a box of which less than `min_visible` (0..1) of the area lies inside the crop box is
/// dropped and counted (with 0, only boxes wholly outside are). Throws FormatError for a box that
/// is not finite or has no area, ConfigError for min_visible outside 0..1.
MappedBoxes boxes_to_output(const std::vector<Box>& boxes, const Geometry& geometry, double min_visible);

/// Boxes on the output grid (predictions) back onto the original image: each is clipped to the
/// resized crop (padding holds no image) and mapped; boxes wholly in the padding are dropped.
/// The exact inverse of boxes_to_output for boxes inside the crop box (to rounding of doubles).
/// Throws FormatError for a box that is not finite or has no area.
MappedBoxes boxes_to_original(const std::vector<Box>& boxes, const Geometry& geometry);

/// Landmarks in original coordinates onto the output grid; points outside the crop box are
/// dropped and counted. Throws FormatError for a point that is not finite.
MappedLandmarks landmarks_to_output(const std::vector<Landmark>& points, const Geometry& geometry);

/// Landmarks on the output grid back onto the original image; points in the padding are dropped.
/// The exact inverse of landmarks_to_output (to rounding of doubles).
MappedLandmarks landmarks_to_original(const std::vector<Landmark>& points, const Geometry& geometry);

/// Predictions on a cache image back onto its original image's pixel grid, one name for the three
/// kinds: `to_original(predicted_mask, reader.geometry(i))` (mask_to_original),
/// `to_original(predicted_boxes, g)` (boxes_to_original), `to_original(points, g)`
/// (landmarks_to_original).
inline LabelMask to_original(const LabelMask& mask, const Geometry& geometry) {
  return mask_to_original(mask, geometry);
}
inline MappedBoxes to_original(const std::vector<Box>& boxes, const Geometry& geometry) {
  return boxes_to_original(boxes, geometry);
}
inline MappedLandmarks to_original(const std::vector<Landmark>& points, const Geometry& geometry) {
  return landmarks_to_original(points, geometry);
}

/// The share of a box's area that must stay inside the crop box for preprocessing to keep it
/// (boxes_to_output's min_visible, as the cache build uses it).
inline constexpr double kMinVisibleBoxArea = 0.25;

/// A frame's targets (original coordinates, as check_targets left them) on the output grid of
/// `geometry`: the mask by mask_to_output, boxes by boxes_to_output with `min_visible`, landmarks
/// by landmarks_to_output, dropped ones counted; states carried over. Throws as those do.
FrameTargets targets_to_output(const FrameTargets& original, const Geometry& geometry, double min_visible);

}  // namespace medload::loader
