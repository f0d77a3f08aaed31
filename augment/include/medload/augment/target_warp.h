#pragma once
/// Targets that follow an augmented image: a label mask, boxes and landmarks moved by the same
/// flips and affine warp as the image's pixels (docs/augment.md, "Targets"). Intensity
/// operations (gamma, noise, blur, down-then-up sampling, ...) never touch targets.
///
/// Pure functions of the sample's geometry (WarpGeometry, which an AppliedParams converts to), so
/// a target is warped the same way whatever the thread count, and AppliedParams replayed from a
/// log reproduce it exactly. Torch-free: medload::augment_options (OpenCV privately).
///
/// Conventions: a mask is row-major, height x width, and is warped by nearest neighbour with the
/// very matrix the image's CPU path gives cv::warpAffine (pixel indices, centre ((W-1)/2,
/// (H-1)/2)); outside the source image is background (0). Boxes and landmarks are in continuous
/// pixel coordinates (pixel (i, j) covers [i, i+1) x [j, j+1), centre (W/2, H/2)), as
/// medload::loader's targets (medload/loader/ingest/annotation.h).
///
/// Laterality: where the warp mirrors the image (exactly one of the two flips), class ids named
/// in AugmentOptions::laterality swap sides ("left lung" 3 <-> "right lung" 4) in masks, boxes
/// and landmarks. Both flips together are a 180-degree rotation, which keeps sides.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "medload/core/error.h"

namespace medload::augment {

struct AppliedParams;  // medload/augment/augmenter.h

/// The geometric part of a sample's augmentation (AppliedParams's meaning and units).
struct WarpGeometry {
  bool horizontal_flip = false;   ///< mirrored left-right (before the warp)
  bool vertical_flip = false;     ///< mirrored top-bottom (before the warp)
  double rotation_degrees = 0.0;  ///< clockwise on screen, about the image centre
  double translate_x = 0.0;       ///< fraction of the width, + is to the right
  double translate_y = 0.0;       ///< fraction of the height, + is down
  double scale = 1.0;             ///< isotropic, about the centre (> 1 zooms in)

  WarpGeometry() = default;
  WarpGeometry(bool horizontal_flip, bool vertical_flip, double rotation_degrees, double translate_x,
               double translate_y, double scale) noexcept;
  /// The geometry of `p`. Implicit, so every function below takes an AppliedParams too. Defined
  /// in medload::augment (AppliedParams lives there): link it to pass AppliedParams.
  WarpGeometry(const AppliedParams& p) noexcept;  // NOLINT(google-explicit-constructor)

  /// True when the warp is the identity.
  bool identity() const noexcept;
  /// True when the warp mirrors (exactly one flip): laterality swaps.
  bool mirrors() const noexcept { return horizontal_flip != vertical_flip; }
};

/// A 2x3 affine matrix: (x', y') = (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]).
struct WarpMatrix {
  double m[6];
};

/// The inverse warp in pixel-index coordinates, source = M * (output, 1), centre ((W-1)/2,
/// (H-1)/2) as torchvision.transforms.functional.affine: what the image's CPU path gives
/// cv::warpAffine with WARP_INVERSE_MAP and the tensor path turns into affine_grid's theta.
WarpMatrix inverse_warp_matrix(const WarpGeometry& g, int width, int height) noexcept;

/// The forward warp in continuous pixel coordinates, output = M * (source, 1): where a point of
/// the source image lands. The inverse of inverse_warp_matrix (shifted by half a pixel).
WarpMatrix forward_warp_matrix(const WarpGeometry& g, int width, int height) noexcept;

/// Class ids that swap under a mirroring warp, from AugmentOptions::laterality ({3: 4} pairs 3
/// with 4 both ways). Cheap to call, built once (a table over ids 0..largest paired id).
class Laterality {
 public:
  /// No pairs: every id keeps its side.
  Laterality() = default;
  /// Checks the pairs as AugmentOptions::validate does (ids 1..65535, a class paired at most
  /// once, never with itself) and throws ConfigError naming augment.laterality and the pair.
  explicit Laterality(const std::map<std::int32_t, std::int32_t>& pairs);

  bool empty() const noexcept { return table_.empty(); }
  /// The id's partner, or `id` when it has none.
  std::int32_t swap(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < table_.size() ? table_[static_cast<std::size_t>(id)]
                                                                   : id;
  }
  /// Swaps every paired id of a uint16 label map in place.
  void relabel(std::uint16_t* labels, std::size_t count) const noexcept;
  /// The same for a uint8 label map; throws as check_uint8.
  void relabel(std::uint8_t* labels, std::size_t count) const;
  /// Throws ConfigError when a pair joins an id below 256 with one above 255: a uint8 label map
  /// could not hold the swapped id (whatever the map holds, so the error does not depend on it).
  void check_uint8() const;

 private:
  std::vector<std::uint16_t> table_;  // id -> partner (itself when unpaired); empty = no pairs
  bool fits_uint8_ = true;            // no pair joins an id < 256 with one >= 256
};

/// Warps a uint16 label mask (row-major, height x width, class ids) by nearest neighbour with
/// the image's warp; pixels whose source lies outside the image become 0 (background); paired
/// ids swap when the warp mirrors. `src` and `dst` hold width * height labels and may be the
/// same buffer (in place) but must not otherwise overlap. Sides 1..32766 (OpenCV's warp);
/// throws ConfigError otherwise.
void warp_mask(const std::uint16_t* src, std::uint16_t* dst, int width, int height, const WarpGeometry& g,
               const Laterality& laterality = {});
/// The same for a uint8 label mask; throws Laterality::check_uint8's ConfigError (always, mirrored or not).
void warp_mask(const std::uint8_t* src, std::uint8_t* dst, int width, int height, const WarpGeometry& g,
               const Laterality& laterality = {});

/// A label mask warped into a new one: `MaskLike` is any type with int width, height and a
/// std::vector of uint16 or uint8 labels, row-major: medload::loader::LabelMask. Throws
/// FormatError when labels.size() is not width * height, and as the raw warp_mask.
template <class MaskLike>
MaskLike warp_mask(const MaskLike& mask, const WarpGeometry& g, const Laterality& laterality = {}) {
  if (mask.width < 0 || mask.height < 0 ||
      mask.labels.size() != static_cast<std::size_t>(mask.width) * static_cast<std::size_t>(mask.height)) {
    throw FormatError("a label mask of " + std::to_string(mask.width) + "x" + std::to_string(mask.height) +
                      " holds " + std::to_string(mask.labels.size()) + " labels");
  }
  MaskLike out = mask;
  if (!mask.labels.empty()) {
    warp_mask(mask.labels.data(), out.labels.data(), mask.width, mask.height, g, laterality);
  }
  return out;
}

/// A box's extent in continuous pixel coordinates, x0 < x1, y0 < y1.
struct BoxExtent {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// One box after the warp: the axis-aligned box enclosing its four warped corners, clipped to
/// the image [0, width] x [0, height]. nullopt (dropped) when the clipped area is 0 or less
/// than `min_visible` (0..1) of the enclosing box's unclipped area. Throws FormatError for a box
/// that is not finite or has no area, ConfigError for min_visible outside 0..1.
/// Under rotation the enclosing box is larger than the object (by up to ~1.4x its side at 45
/// degrees; by sin(7 deg) of the other side at the default limit), as in every box augmenter.
std::optional<BoxExtent> warp_box(const BoxExtent& box, const WarpGeometry& g, int width, int height,
                                  double min_visible);

/// One point after the warp (continuous coordinates); nullopt when it lands outside the image
/// ([0, width) x [0, height)). Throws FormatError for a point that is not finite.
std::optional<std::pair<double, double>> warp_point(double x, double y, const WarpGeometry& g, int width,
                                                    int height);

/// Boxes after the warp (warp_box each), their labels swapped by `laterality` when the warp
/// mirrors; the dropped ones are counted in `*dropped` (when given). `BoxLike` is any type with
/// double x0, y0, x1, y1 and an integer label: medload::loader::Box. Throws as warp_box.
template <class BoxLike>
std::vector<BoxLike> warp_boxes(const std::vector<BoxLike>& boxes, const WarpGeometry& g, int width,
                                int height, double min_visible, const Laterality& laterality = {},
                                std::size_t* dropped = nullptr) {
  std::vector<BoxLike> out;
  out.reserve(boxes.size());
  std::size_t lost = 0;
  const bool swap = g.mirrors();
  for (const BoxLike& b : boxes) {
    const auto e = warp_box(BoxExtent{b.x0, b.y0, b.x1, b.y1}, g, width, height, min_visible);
    if (!e) {
      ++lost;
      continue;
    }
    BoxLike w = b;
    w.x0 = e->x0, w.y0 = e->y0, w.x1 = e->x1, w.y1 = e->y1;
    if (swap) w.label = static_cast<decltype(w.label)>(laterality.swap(static_cast<std::int32_t>(b.label)));
    out.push_back(w);
  }
  if (dropped != nullptr) *dropped = lost;
  return out;
}

/// Landmarks after the warp (warp_point each), labels swapped by `laterality` when the warp
/// mirrors; points that land outside the image are dropped and counted in `*dropped`.
/// `PointLike` is any type with double x, y and an integer label: medload::loader::Landmark.
template <class PointLike>
std::vector<PointLike> warp_landmarks(const std::vector<PointLike>& points, const WarpGeometry& g, int width,
                                      int height, const Laterality& laterality = {},
                                      std::size_t* dropped = nullptr) {
  std::vector<PointLike> out;
  out.reserve(points.size());
  std::size_t lost = 0;
  const bool swap = g.mirrors();
  for (const PointLike& p : points) {
    const auto q = warp_point(p.x, p.y, g, width, height);
    if (!q) {
      ++lost;
      continue;
    }
    PointLike w = p;
    w.x = q->first, w.y = q->second;
    if (swap) w.label = static_cast<decltype(w.label)>(laterality.swap(static_cast<std::int32_t>(p.label)));
    out.push_back(w);
  }
  if (dropped != nullptr) *dropped = lost;
  return out;
}

}  // namespace medload::augment
