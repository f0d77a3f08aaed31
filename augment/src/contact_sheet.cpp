#include "medload/augment/contact_sheet.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include "medload/augment/target_warp.h"
#include "medload/core/atomic_file.h"
#include "medload/core/error.h"

namespace medload::augment {

namespace {

constexpr int kHeader = 28;       // column titles
constexpr int kCaption = 18;      // parameter line under a tile
constexpr int kLabelWidth = 170;  // row labels
constexpr int kGap = 4;
const cv::Scalar kText(235, 235, 235);
const cv::Scalar kAccent(80, 200, 255);  // overrides and warnings, amber in BGR

// Draws `text` at `at`, shrunk if needed so that it is at most `max_width` pixels wide.
void put(cv::Mat& sheet, const std::string& text, cv::Point at, double scale, const cv::Scalar& colour,
         int max_width = 1 << 20) {
  int baseline = 0;
  const int width = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline).width;
  if (width > max_width) scale *= static_cast<double>(max_width) / width;
  cv::putText(sheet, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv::LINE_AA);
}

// Where an h x w image lands in its tile: scaled by `s` to tw x th at (x, y).
struct Letterbox {
  double s;
  int tw, th, x, y;
  Letterbox(int w, int h, int tile)
      : s(std::min(static_cast<double>(tile) / w, static_cast<double>(tile) / h)),
        tw(std::max(1, static_cast<int>(std::lround(w * s)))),
        th(std::max(1, static_cast<int>(std::lround(h * s)))),
        x((tile - tw) / 2),
        y((tile - th) / 2) {}
};

// Letterboxes one uint8 [C,H,W] sample (C = 1 or 3) into a tile x tile BGR image.
cv::Mat tile_of(const torch::Tensor& sample, int tile) {
  const int c = static_cast<int>(sample.size(0)), h = static_cast<int>(sample.size(1)),
            w = static_cast<int>(sample.size(2));
  torch::Tensor hwc = sample.permute({1, 2, 0}).contiguous();
  cv::Mat img(h, w, c == 1 ? CV_8UC1 : CV_8UC3, hwc.data_ptr<std::uint8_t>());
  cv::Mat bgr;
  if (c == 1) {
    cv::cvtColor(img, bgr, cv::COLOR_GRAY2BGR);
  } else {
    bgr = img.clone();
  }
  const Letterbox box(w, h, tile);
  cv::Mat resized;
  cv::resize(bgr, resized, cv::Size(box.tw, box.th), 0, 0, box.s < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat out(tile, tile, CV_8UC3, cv::Scalar(0, 0, 0));
  resized.copyTo(out(cv::Rect(box.x, box.y, box.tw, box.th)));
  return out;
}

cv::Scalar colour_of(std::int64_t id) {
  const auto c = target_colour(id);
  return cv::Scalar(c[0], c[1], c[2]);
}

// Outlines sample i's mask (int64 or uint8 [N,1,H,W] or [N,H,W], CPU) on its tile: every pixel of
// a class (not background) with a 4-neighbour of another id, at the tile's resolution.
void draw_mask(cv::Mat& tile, const torch::Tensor& masks, std::int64_t i, const Letterbox& box) {
  const torch::Tensor ids = masks[i].reshape({masks.size(-2), masks.size(-1)}).to(torch::kInt32).contiguous();
  const cv::Mat mask(static_cast<int>(ids.size(0)), static_cast<int>(ids.size(1)), CV_32SC1,
                     ids.data_ptr<std::int32_t>());
  cv::Mat scaled;
  cv::resize(mask, scaled, cv::Size(box.tw, box.th), 0, 0, cv::INTER_NEAREST);
  for (int y = 0; y < scaled.rows; ++y) {
    const auto* row = scaled.ptr<std::int32_t>(y);
    for (int x = 0; x < scaled.cols; ++x) {
      const std::int32_t id = row[x];
      if (id == 0) continue;
      const bool edge = (x > 0 && row[x - 1] != id) || (x + 1 < scaled.cols && row[x + 1] != id) ||
                        (y > 0 && scaled.ptr<std::int32_t>(y - 1)[x] != id) ||
                        (y + 1 < scaled.rows && scaled.ptr<std::int32_t>(y + 1)[x] != id);
      if (!edge) continue;
      const auto c = target_colour(id);
      auto& px = tile.at<cv::Vec3b>(box.y + y, box.x + x);
      px = cv::Vec3b(c[0], c[1], c[2]);
    }
  }
}

// Draws sample i's boxes and landmarks (the padded layout: coordinates, then the label) on its tile.
void draw_points(cv::Mat& tile, const TargetTensors& t, std::int64_t i, const Letterbox& box) {
  if (t.boxes.defined()) {
    const torch::Tensor rows = t.boxes[i].contiguous();
    const std::int64_t n = t.box_counts[i].item<std::int64_t>();
    for (std::int64_t k = 0; k < n; ++k) {
      const float* b = rows.data_ptr<float>() + 5 * k;
      // Continuous [x0, x1) covers pixels x0..x1-1: the rectangle's lines lie on its edge pixels.
      const cv::Point p0(box.x + static_cast<int>(std::lround(b[0] * box.s)),
                         box.y + static_cast<int>(std::lround(b[1] * box.s)));
      const cv::Point p1(box.x + static_cast<int>(std::lround(b[2] * box.s)) - 1,
                         box.y + static_cast<int>(std::lround(b[3] * box.s)) - 1);
      cv::rectangle(tile, p0, p1, colour_of(std::lround(b[4])), 1);
    }
  }
  if (t.landmarks.defined()) {
    const torch::Tensor rows = t.landmarks[i].contiguous();
    const std::int64_t n = t.landmark_counts[i].item<std::int64_t>();
    for (std::int64_t k = 0; k < n; ++k) {
      const float* p = rows.data_ptr<float>() + 3 * k;
      const cv::Point at(box.x + static_cast<int>(p[0] * box.s), box.y + static_cast<int>(p[1] * box.s));
      cv::drawMarker(tile, at, colour_of(std::lround(p[2])), cv::MARKER_CROSS, 7, 1);
    }
  }
}

// Sample i's tile with its targets (when any) drawn over it.
cv::Mat tile_with_targets(const torch::Tensor& images, const TargetTensors* targets, std::int64_t i,
                          int tile) {
  cv::Mat out = tile_of(images[i], tile);
  if (targets == nullptr) return out;
  const Letterbox box(static_cast<int>(images.size(3)), static_cast<int>(images.size(2)), tile);
  if (targets->masks.defined()) draw_mask(out, targets->masks, i, box);
  draw_points(out, *targets, i, box);
  return out;
}

// A deep copy: the draws warp their own.
TargetTensors clone(const TargetTensors& t) {
  const auto c = [](const torch::Tensor& x) { return x.defined() ? x.clone() : x; };
  return {c(t.masks), c(t.mask_valid), c(t.boxes), c(t.box_counts), c(t.landmarks), c(t.landmark_counts)};
}

std::string caption(const AppliedParams& p) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s%sr%+.1f s%.2f g%.2f", p.horizontal_flip ? "HFLIP " : "",
                p.vertical_flip ? "VFLIP " : "", p.rotation_degrees, p.scale, p.gamma);
  return buf;
}

}  // namespace

std::array<std::uint8_t, 3> target_colour(std::int64_t class_id) {
  static constexpr std::uint8_t kPalette[12][3] = {
      // BGR
      {60, 60, 255}, {60, 220, 60},  {255, 140, 40}, {0, 220, 255},  {255, 60, 220},  {255, 255, 0},
      {0, 140, 255}, {160, 255, 80}, {200, 80, 140}, {80, 180, 255}, {255, 160, 160}, {40, 255, 180}};
  const auto k = static_cast<std::size_t>(((class_id - 1) % 12 + 12) % 12);
  return {kPalette[k][0], kPalette[k][1], kPalette[k][2]};
}

namespace {

torch::Tensor sheet_of(const torch::Tensor& images_in, const std::vector<std::int64_t>& sample_ids,
                       const std::vector<std::string>& row_labels, Augmenter& augmenter,
                       const TargetTensors* targets, const ContactSheetOptions& options) {
  if (options.draws < 1 || options.draws > 32) {
    throw ConfigError("contact sheet draws is " + std::to_string(options.draws) + "; allowed 1..32");
  }
  if (options.tile < 32 || options.tile > 1024) {
    throw ConfigError("contact sheet tile is " + std::to_string(options.tile) + "; allowed 32..1024");
  }
  torch::Tensor images = images_in.dim() == 3 ? images_in.unsqueeze(1) : images_in;
  if (images.dim() != 4 || images.scalar_type() != torch::kUInt8 || !images.device().is_cpu() ||
      (images.size(1) != 1 && images.size(1) != 3)) {
    throw ConfigError("a contact sheet needs uint8 [N,C,H,W] (C = 1 or 3) or [N,H,W] CPU images");
  }
  const auto n = static_cast<std::size_t>(images.size(0));
  if (n == 0 || sample_ids.size() != n || row_labels.size() != n) {
    throw ConfigError("a contact sheet needs one sample id and one label per image (" + std::to_string(n) +
                      " images, " + std::to_string(sample_ids.size()) + " ids, " +
                      std::to_string(row_labels.size()) + " labels)");
  }
  images = images.contiguous();
  const int tile = options.tile;
  const int columns = options.draws + (options.show_original ? 1 : 0);
  const int cell_h = tile + (options.show_params ? kCaption : 0) + kGap;
  const int width = kLabelWidth + columns * (tile + kGap);
  const int overrides = static_cast<int>(augmenter.options().active_overrides().size());
  const int top = kHeader + overrides * 18;
  const std::int64_t height = top + static_cast<std::int64_t>(n) * cell_h;  // n is not bounded here
  if (height * width > kMaxContactSheetPixels) {
    throw ConfigError("a contact sheet of " + std::to_string(n) + " samples, " + std::to_string(columns) +
                      " columns and " + std::to_string(tile) + "-pixel tiles would be " +
                      std::to_string(width) + " x " + std::to_string(height) + " pixels; at most " +
                      std::to_string(kMaxContactSheetPixels) +
                      " are drawn: show fewer samples or draws, or smaller tiles");
  }
  cv::Mat sheet(static_cast<int>(height), width, CV_8UC3, cv::Scalar(24, 24, 24));

  for (int col = 0; col < columns; ++col) {
    const bool original = options.show_original && col == 0;
    const std::string title =
        original ? "as stored" : "epoch " + std::to_string(col - (options.show_original ? 1 : 0));
    put(sheet, title, cv::Point(kLabelWidth + col * (tile + kGap) + 4, 19), 0.55, kText);
  }
  int line = kHeader + 12;
  for (const std::string& o : augmenter.options().active_overrides()) {
    put(sheet, "OVERRIDE " + o, cv::Point(6, line), 0.45, kAccent, width - 12);
    line += 18;
  }

  const Laterality laterality(augmenter.options().laterality);
  for (int draw = 0; draw < options.draws; ++draw) {
    torch::Tensor batch = images.clone();
    const std::vector<AppliedParams> params = augmenter.apply(batch, sample_ids, draw);
    TargetTensors moved;
    if (targets != nullptr) {
      moved = clone(*targets);
      warp_targets(moved, params, static_cast<int>(images.size(3)), static_cast<int>(images.size(2)),
                   laterality);
    }
    const int col = draw + (options.show_original ? 1 : 0);
    for (std::size_t i = 0; i < n; ++i) {
      const int y = top + static_cast<int>(i) * cell_h, x = kLabelWidth + col * (tile + kGap);
      tile_with_targets(batch, targets != nullptr ? &moved : nullptr, static_cast<std::int64_t>(i), tile)
          .copyTo(sheet(cv::Rect(x, y, tile, tile)));
      if (options.show_params) {
        const bool flagged = params[i].horizontal_flip || params[i].vertical_flip;
        put(sheet, caption(params[i]), cv::Point(x + 2, y + tile + 13), 0.38, flagged ? kAccent : kText,
            tile - 4);
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const int y = top + static_cast<int>(i) * cell_h;
    if (options.show_original) {
      tile_with_targets(images, targets, static_cast<std::int64_t>(i), tile)
          .copyTo(sheet(cv::Rect(kLabelWidth, y, tile, tile)));
    }
    put(sheet, row_labels[i], cv::Point(6, y + 22), 0.5, kText, kLabelWidth - 10);
    put(sheet, "id " + std::to_string(sample_ids[i]), cv::Point(6, y + 44), 0.45, kText);
  }
  return torch::from_blob(sheet.data, {sheet.rows, sheet.cols, 3}, torch::kUInt8).clone();
}

}  // namespace

torch::Tensor make_contact_sheet(const torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                 const std::vector<std::string>& row_labels, Augmenter& augmenter,
                                 const ContactSheetOptions& options) {
  return sheet_of(images, sample_ids, row_labels, augmenter, nullptr, options);
}

torch::Tensor make_contact_sheet(const torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                 const std::vector<std::string>& row_labels, Augmenter& augmenter,
                                 const TargetTensors& targets, const ContactSheetOptions& options) {
  return sheet_of(images, sample_ids, row_labels, augmenter, &targets, options);
}

void write_png(const torch::Tensor& image_in, const std::string& path) {
  torch::Tensor image = image_in.contiguous();
  if (image.scalar_type() != torch::kUInt8 || !image.device().is_cpu() ||
      !(image.dim() == 2 || (image.dim() == 3 && image.size(2) == 3))) {
    throw ConfigError("write_png needs a uint8 [H,W,3] or [H,W] CPU image for " + path);
  }
  const cv::Mat mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)),
                    image.dim() == 2 ? CV_8UC1 : CV_8UC3, image.data_ptr());
  // Encoded here and written whole (write_file_atomically): a PNG whatever the name's extension,
  // never half a file, and never into a FIFO or a device named as the output.
  std::vector<std::uint8_t> png;
  bool ok = false;
  try {
    ok = cv::imencode(".png", mat, png);
  } catch (const cv::Exception& e) {
    throw IoError("cannot encode the PNG " + path + ": " + e.what());
  }
  if (!ok) throw IoError("cannot encode the PNG " + path);
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace medload::augment
