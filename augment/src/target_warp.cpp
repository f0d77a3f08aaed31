#include "medload/augment/target_warp.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "medload/core/check_range.h"
#include "medload/core/error.h"

namespace medload::augment {

using core::format_number;

// ---------------------------------------------------------------------------------------------
// The geometry and its matrices

WarpGeometry::WarpGeometry(bool horizontal_flip, bool vertical_flip, double rotation_degrees,
                           double translate_x, double translate_y, double scale) noexcept
    : horizontal_flip(horizontal_flip),
      vertical_flip(vertical_flip),
      rotation_degrees(rotation_degrees),
      translate_x(translate_x),
      translate_y(translate_y),
      scale(scale) {}

bool WarpGeometry::identity() const noexcept {
  return !horizontal_flip && !vertical_flip && rotation_degrees == 0.0 && translate_x == 0.0 &&
         translate_y == 0.0 && scale == 1.0;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

WarpMatrix inverse_warp_matrix(const WarpGeometry& g, int width, int height) noexcept {
  const double theta = g.rotation_degrees * kPi / 180.0;
  const double c = std::cos(theta), s = std::sin(theta);
  const double fx = g.horizontal_flip ? -1.0 : 1.0, fy = g.vertical_flip ? -1.0 : 1.0;
  // A = F * R(-theta) / scale: the inverse of "scale * R(theta) after the flips".
  const double a00 = fx * c / g.scale, a01 = fx * s / g.scale;
  const double a10 = -fy * s / g.scale, a11 = fy * c / g.scale;
  const double cx = (width - 1) * 0.5, cy = (height - 1) * 0.5;
  const double tx = g.translate_x * width, ty = g.translate_y * height;
  // in = A * (out - C - T) + C
  return WarpMatrix{
      {a00, a01, cx - a00 * (cx + tx) - a01 * (cy + ty), a10, a11, cy - a10 * (cx + tx) - a11 * (cy + ty)}};
}

WarpMatrix forward_warp_matrix(const WarpGeometry& g, int width, int height) noexcept {
  const double theta = g.rotation_degrees * kPi / 180.0;
  const double c = std::cos(theta), s = std::sin(theta);
  const double fx = g.horizontal_flip ? -1.0 : 1.0, fy = g.vertical_flip ? -1.0 : 1.0;
  // B = A^-1 = scale * R(theta) * F. In pixel indices out = B (in - C) + C + T; continuous
  // coordinates are indices + 1/2, and C + 1/2 is (W/2, H/2): out = B (in - W/2) + W/2 + T.
  const double b00 = g.scale * c * fx, b01 = -g.scale * s * fy;
  const double b10 = g.scale * s * fx, b11 = g.scale * c * fy;
  const double hx = width * 0.5, hy = height * 0.5;
  const double tx = g.translate_x * width, ty = g.translate_y * height;
  return WarpMatrix{{b00, b01, hx + tx - b00 * hx - b01 * hy, b10, b11, hy + ty - b10 * hx - b11 * hy}};
}

// ---------------------------------------------------------------------------------------------
// Laterality

Laterality::Laterality(const std::map<std::int32_t, std::int32_t>& pairs) {
  if (pairs.empty()) return;
  std::map<std::int32_t, std::int32_t> partner;  // both directions, to find a class paired twice
  std::int32_t largest = 0;
  for (const auto& [a, b] : pairs) {
    for (const std::int32_t id : {a, b}) {
      if (id < 1 || id > 65535) {
        throw ConfigError("augment.laterality pairs " + std::to_string(a) + " with " + std::to_string(b) +
                          "; class ids are 1..65535 (0 is the background)");
      }
    }
    if (a == b) throw ConfigError("augment.laterality pairs class " + std::to_string(a) + " with itself");
    for (const auto& [id, other] : {std::pair{a, b}, std::pair{b, a}}) {
      const auto seen = partner.find(id);
      if (seen != partner.end() && seen->second == other) {
        throw ConfigError("augment.laterality names the pair " + std::to_string(std::min(a, b)) + ", " +
                          std::to_string(std::max(a, b)) + " twice; one entry, {\"" +
                          std::to_string(std::min(a, b)) + "\": " + std::to_string(std::max(a, b)) +
                          "}, swaps them both ways");
      }
      if (seen != partner.end()) {
        throw ConfigError("augment.laterality pairs class " + std::to_string(id) + " twice (with " +
                          std::to_string(seen->second) + " and with " + std::to_string(other) +
                          "): a class has at most one partner");
      }
      partner.emplace(id, other);
    }
    largest = std::max({largest, a, b});
    fits_uint8_ = fits_uint8_ && ((a < 256) == (b < 256));
  }
  table_.resize(static_cast<std::size_t>(largest) + 1);
  for (std::size_t id = 0; id < table_.size(); ++id) table_[id] = static_cast<std::uint16_t>(id);
  for (const auto& [id, other] : partner)
    table_[static_cast<std::size_t>(id)] = static_cast<std::uint16_t>(other);
}

void Laterality::relabel(std::uint16_t* labels, std::size_t count) const noexcept {
  if (table_.empty()) return;
  const std::size_t size = table_.size();
  const std::uint16_t* table = table_.data();
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint16_t v = labels[i];
    if (v < size) labels[i] = table[v];
  }
}

void Laterality::check_uint8() const {
  if (fits_uint8_) return;
  for (std::size_t id = 0; id < std::min<std::size_t>(table_.size(), 256); ++id) {
    if (table_[id] >= 256) {
      throw ConfigError("augment.laterality pairs class " + std::to_string(id) + " with " +
                        std::to_string(table_[id]) + ", which a uint8 label mask cannot hold");
    }
  }
}

void Laterality::relabel(std::uint8_t* labels, std::size_t count) const {
  if (table_.empty()) return;
  check_uint8();
  std::array<std::uint8_t, 256> table;
  for (std::size_t id = 0; id < 256; ++id) {
    table[id] = static_cast<std::uint8_t>(id < table_.size() ? table_[id] : id);
  }
  for (std::size_t i = 0; i < count; ++i) labels[i] = table[labels[i]];
}

// ---------------------------------------------------------------------------------------------
// Masks

namespace {

// OpenCV's remap (behind warpAffine) keeps source coordinates in 16 bits.
constexpr int kMaxMaskSide = 32766;

template <class T>
void warp_labels(const T* src, T* dst, int width, int height, const WarpGeometry& g,
                 const Laterality& laterality, int cv_type) {
  if (width < 1 || width > kMaxMaskSide || height < 1 || height > kMaxMaskSide) {
    throw ConfigError("a label mask of " + std::to_string(width) + "x" + std::to_string(height) +
                      " cannot be warped; sides must be 1.." + std::to_string(kMaxMaskSide));
  }
  const std::size_t count = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  if (g.identity()) {
    if (dst != src) std::copy(src, src + count, dst);
    return;
  }
  // The image's matrix, nearest neighbour: OpenCV rounds each source coordinate (quantised to
  // 1/1024 pixel) to the nearest pixel index, so a label lands where the image's pixel does.
  const WarpMatrix inverse = inverse_warp_matrix(g, width, height);
  const cv::Mat m(2, 3, CV_64F, const_cast<double*>(inverse.m));
  const cv::Mat in(height, width, cv_type, const_cast<T*>(src));
  cv::Mat out(height, width, cv_type, dst);  // warpAffine copies `in` first when it is `out`
  try {
    cv::warpAffine(in, out, m, in.size(), cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT,
                   cv::Scalar(0));
  } catch (const cv::Exception& e) {
    throw WorkerError("warping a " + std::to_string(width) + "x" + std::to_string(height) +
                      " label mask failed in OpenCV: " + e.what());
  }
  if (g.mirrors()) laterality.relabel(dst, count);
}

}  // namespace

void warp_mask(const std::uint16_t* src, std::uint16_t* dst, int width, int height, const WarpGeometry& g,
               const Laterality& laterality) {
  warp_labels(src, dst, width, height, g, laterality, CV_16U);
}

void warp_mask(const std::uint8_t* src, std::uint8_t* dst, int width, int height, const WarpGeometry& g,
               const Laterality& laterality) {
  laterality.check_uint8();  // whether or not this sample mirrors, so the error does not depend on the draw
  warp_labels(src, dst, width, height, g, laterality, CV_8U);
}

// ---------------------------------------------------------------------------------------------
// Boxes and points

namespace {

std::pair<double, double> apply(const WarpMatrix& w, double x, double y) noexcept {
  return {w.m[0] * x + w.m[1] * y + w.m[2], w.m[3] * x + w.m[4] * y + w.m[5]};
}

std::string describe(const BoxExtent& b) {
  return "box (x0 " + format_number(b.x0) + ", y0 " + format_number(b.y0) + ", x1 " + format_number(b.x1) +
         ", y1 " + format_number(b.y1) + ")";
}

}  // namespace

std::optional<BoxExtent> warp_box(const BoxExtent& box, const WarpGeometry& g, int width, int height,
                                  double min_visible) {
  core::check_range("the minimum visible fraction of a box", min_visible, 0.0, 1.0);
  if (!std::isfinite(box.x0) || !std::isfinite(box.y0) || !std::isfinite(box.x1) || !std::isfinite(box.y1)) {
    throw FormatError("the " + describe(box) + " is not finite");
  }
  if (!(box.x0 < box.x1) || !(box.y0 < box.y1)) throw FormatError("the " + describe(box) + " has no area");
  BoxExtent e = box;
  if (!g.identity()) {
    // The enclosing box of the four warped corners (the identity is kept exact).
    const WarpMatrix f = forward_warp_matrix(g, width, height);
    const std::array<std::pair<double, double>, 4> corners{apply(f, box.x0, box.y0), apply(f, box.x1, box.y0),
                                                           apply(f, box.x0, box.y1),
                                                           apply(f, box.x1, box.y1)};
    e = {corners[0].first, corners[0].second, corners[0].first, corners[0].second};
    for (const auto& [x, y] : corners) {
      e.x0 = std::min(e.x0, x), e.x1 = std::max(e.x1, x);
      e.y0 = std::min(e.y0, y), e.y1 = std::max(e.y1, y);
    }
  }
  const double area = (e.x1 - e.x0) * (e.y1 - e.y0);
  const BoxExtent clipped{std::max(e.x0, 0.0), std::max(e.y0, 0.0),
                          std::min(e.x1, static_cast<double>(width)),
                          std::min(e.y1, static_cast<double>(height))};
  if (!(clipped.x0 < clipped.x1) || !(clipped.y0 < clipped.y1)) return std::nullopt;
  const double visible = (clipped.x1 - clipped.x0) * (clipped.y1 - clipped.y0);
  if (visible < min_visible * area) return std::nullopt;
  return clipped;
}

std::optional<std::pair<double, double>> warp_point(double x, double y, const WarpGeometry& g, int width,
                                                    int height) {
  if (!std::isfinite(x) || !std::isfinite(y)) {
    throw FormatError("the landmark (x " + format_number(x) + ", y " + format_number(y) + ") is not finite");
  }
  const auto p = g.identity() ? std::pair{x, y} : apply(forward_warp_matrix(g, width, height), x, y);
  if (!(p.first >= 0.0 && p.first < width && p.second >= 0.0 && p.second < height)) return std::nullopt;
  return p;
}

}  // namespace medload::augment
