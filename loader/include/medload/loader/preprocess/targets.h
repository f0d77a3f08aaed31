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

#include "medload/loader/ingest/staged_frame.h"

namespace medload::loader {

/// A label map: one class id per pixel, row-major; 0 is the background.
struct LabelMask {
  int height = 0;
  int width = 0;
  std::vector<std::uint16_t> labels;  ///< height * width class ids
};

/// An axis-aligned box, x0 < x1 and y0 < y1 (continuous coordinates), and its class.
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::int32_t label = 0;
};

/// A point and its class (which landmark it is).
struct Landmark {
  double x = 0, y = 0;
  std::int32_t label = 0;
};

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

}  // namespace medload::loader
