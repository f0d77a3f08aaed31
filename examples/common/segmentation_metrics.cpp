#include "segmentation_metrics.h"

#include <cmath>
#include <limits>

#include "medload/core/error.h"
#include "metrics.h"

namespace medload::examples {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Checks `count` ids against [0, classes); throws naming the first one outside.
void check_ids(const std::int64_t* ids, std::size_t count, std::size_t classes, const char* what) {
  const auto c = static_cast<std::int64_t>(classes);
  for (std::size_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= c) {
      throw ConfigError(std::string("SegmentationConfusion::add: ") + what + " pixel " + std::to_string(i) +
                        " is " + std::to_string(ids[i]) + "; classes are 0.." + std::to_string(c - 1));
    }
  }
}

}  // namespace

SegmentationConfusion::SegmentationConfusion(std::size_t classes)
    : classes_(classes), counts_(classes * classes, 0) {
  if (classes < 2) {
    throw ConfigError("SegmentationConfusion: " + std::to_string(classes) +
                      " classes; at least 2 (background and a structure) are needed");
  }
}

void SegmentationConfusion::add(const std::int64_t* truth, const std::int64_t* predicted, std::size_t count,
                                std::size_t images) {
  check_ids(truth, count, classes_, "truth");
  check_ids(predicted, count, classes_, "predicted");
  for (std::size_t i = 0; i < count; ++i) {
    ++counts_[static_cast<std::size_t>(truth[i]) * classes_ + static_cast<std::size_t>(predicted[i])];
  }
  images_ += images;
}

SegmentationMetrics SegmentationConfusion::metrics() const {
  const std::size_t c_count = classes_;
  SegmentationMetrics m;
  m.images = images_;
  m.confusion.assign(c_count, std::vector<std::int64_t>(c_count, 0));
  std::vector<std::int64_t> predicted(c_count, 0);
  m.support.assign(c_count, 0);
  std::int64_t correct = 0;
  for (std::size_t t = 0; t < c_count; ++t) {
    for (std::size_t p = 0; p < c_count; ++p) {
      const std::int64_t n = counts_[t * c_count + p];
      m.confusion[t][p] = n;
      m.support[t] += n;
      predicted[p] += n;
      m.pixels += n;
    }
    correct += m.confusion[t][t];
  }
  m.pixel_accuracy = m.pixels == 0 ? kNaN : static_cast<double>(correct) / static_cast<double>(m.pixels);
  m.dice.assign(c_count, kNaN);
  m.iou.assign(c_count, kNaN);
  double dice_sum = 0.0;
  std::size_t defined = 0;
  for (std::size_t c = 0; c < c_count; ++c) {
    const auto tp = static_cast<double>(m.confusion[c][c]);
    const auto both = static_cast<double>(m.support[c] + predicted[c]);  // |T| + |P|
    if (both == 0.0) continue;
    m.dice[c] = 2.0 * tp / both;
    m.iou[c] = tp / (both - tp);
    if (c > 0) {
      dice_sum += m.dice[c];
      ++defined;
    }
  }
  m.mean_dice = defined == 0 ? kNaN : dice_sum / static_cast<double>(defined);
  return m;
}

nlohmann::json SegmentationMetrics::to_json(const std::vector<std::string>& class_names) const {
  const std::size_t classes = dice.size();
  if (!class_names.empty() && class_names.size() != classes) {
    throw ConfigError("SegmentationMetrics::to_json: " + std::to_string(class_names.size()) +
                      " class names for " + std::to_string(classes) + " classes");
  }
  auto name = [&](std::size_t c) { return class_names.empty() ? std::to_string(c) : class_names[c]; };
  nlohmann::json j;
  j["images"] = images;
  j["pixels"] = pixels;
  j["pixel_accuracy"] = number_or_null(pixel_accuracy);
  j["mean_dice"] = number_or_null(mean_dice);
  nlohmann::json d = nlohmann::json::object(), u = nlohmann::json::object(), s = nlohmann::json::object();
  for (std::size_t c = 0; c < classes; ++c) {
    d[name(c)] = number_or_null(dice[c]);
    u[name(c)] = number_or_null(iou[c]);
    s[name(c)] = support[c];
  }
  j["dice"] = d;
  j["iou"] = u;
  j["support"] = s;
  j["confusion"] = confusion;
  return j;
}

}  // namespace medload::examples
