#pragma once
// The blank check's measure: how far an image's content rises above its own noise. It does not
// depend on how much of its bit depth an image uses, so a nuclear-medicine image that occupies a
// few hundred counts of a 16-bit range is content, and a flat field with sensor noise of any
// amplitude is not.

#include "medload/loader/ingest/decoded_image.h"

namespace medload::loader::detail {

/// An image's content against its noise. Colour pixels count as the mean of their channels.
struct ContentMeasure {
  /// The content: the spread (99.5th minus 0.5th percentile) of the means of square blocks (8x8
  /// pixels; 4x4 when a side is under 64 pixels; single pixels when under 16), or a third of the
  /// spread of single pixels (on 64 evenly spaced rows), whichever is larger. Features in fewer
  /// than 0.5 % of the blocks or pixels (a burned-in label on a black film) do not count.
  double spread = 0;
  /// The noise, as a normal deviation: the median absolute difference between neighbouring
  /// pixels (on 64 evenly spaced rows) divided by 0.6745 sqrt(2), in the quieter of the two
  /// directions (stripes along one direction are structure), at least a quarter grey level for
  /// integer pixels. Edges are few among all neighbour pairs, so anatomy barely moves it.
  double noise = 0;
  /// spread / noise; 0 for a constant image (spread 0), infinite for a noise-free non-constant one.
  double ratio() const;
};

/// Measures `image`. Any size from 1x1, any PixelType, 1 or 3 channels; never throws.
/// Pure noise around one level measures about 1.7 (a third of its pixel spread of 5.2
/// deviations; its 8x8 block means spread over 0.65); anatomy tens to thousands.
ContentMeasure measure_content(const DecodedImage& image);

}  // namespace medload::loader::detail
