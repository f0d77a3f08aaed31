#include "medload/samplers/target_weights.h"

#include <algorithm>
#include <string>

#include "medload/core/error.h"

namespace medload::samplers {

void TargetSampleWeightOptions::validate() const {
  if (!masks && !boxes && !landmarks) {
    throw ConfigError(
        "TargetSampleWeightOptions: masks, boxes and landmarks are all false; select at least one kind");
  }
  if (min_mask_pixels < 1) {
    throw ConfigError("TargetSampleWeightOptions.min_mask_pixels = " + std::to_string(min_mask_pixels) +
                      ": must be >= 1");
  }
}

bool target_annotated(const ImageTargets& image, const TargetSampleWeightOptions& options) {
  return (options.masks && image.mask_valid) || (options.boxes && image.boxes_valid) ||
         (options.landmarks && image.landmarks_valid);
}

std::vector<std::int32_t> target_classes_of(const ImageTargets& image,
                                            const TargetSampleWeightOptions& options) {
  std::vector<std::int32_t> classes;
  if (options.masks) {
    for (const ClassPixels& count : image.mask_pixels) {
      if (count.class_id >= 1 && count.pixels >= options.min_mask_pixels) classes.push_back(count.class_id);
    }
  }
  if (options.boxes) classes.insert(classes.end(), image.box_classes.begin(), image.box_classes.end());
  if (options.landmarks)
    classes.insert(classes.end(), image.landmark_classes.begin(), image.landmark_classes.end());
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  return classes;
}

namespace {

// Classes of each annotated image (nullopt-like: `annotated` false), and images per class.
struct ClassMembership {
  std::vector<std::vector<std::int32_t>> classes;  // [n]
  std::vector<bool> annotated;                     // [n]
  std::vector<double> images_per_class;            // [K]
  double negatives = 0.0;
  std::size_t annotated_count = 0;
};

ClassMembership class_membership(const TargetStatistics& stats, const TargetSampleWeightOptions& options) {
  ClassMembership m;
  m.classes.resize(stats.images.size());
  m.annotated.resize(stats.images.size());
  m.images_per_class.assign(stats.class_names.size(), 0.0);
  for (std::size_t i = 0; i < stats.images.size(); ++i) {
    if (!target_annotated(stats.images[i], options)) continue;
    m.annotated[i] = true;
    ++m.annotated_count;
    m.classes[i] = target_classes_of(stats.images[i], options);
    if (m.classes[i].empty()) m.negatives += 1.0;
    for (std::int32_t c : m.classes[i]) m.images_per_class[static_cast<std::size_t>(c)] += 1.0;
  }
  return m;
}

std::string selected_kinds(const TargetSampleWeightOptions& options) {
  std::string kinds;
  for (const auto& [on, name] : {std::pair{options.masks, "masks"}, std::pair{options.boxes, "boxes"},
                                 std::pair{options.landmarks, "landmarks"}}) {
    if (on) kinds += (kinds.empty() ? "" : ", ") + std::string(name);
  }
  return kinds;
}

}  // namespace

std::vector<double> target_sample_weights(const TargetStatistics& stats, TargetSampleWeightOptions options) {
  options.validate();
  const ClassMembership m = class_membership(stats, options);
  if (m.annotated_count == 0) {
    throw ConfigError("target_sample_weights: none of the " + std::to_string(stats.images.size()) +
                      " images has a valid target of the selected kinds (" + selected_kinds(options) + ")");
  }
  std::vector<double> weights(stats.images.size(), 0.0);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!m.annotated[i]) continue;
    if (m.classes[i].empty()) {
      weights[i] = 1.0 / m.negatives;
      continue;
    }
    double best = 0.0, sum = 0.0;
    for (std::int32_t c : m.classes[i]) {
      const double w = 1.0 / m.images_per_class[static_cast<std::size_t>(c)];
      best = std::max(best, w);
      sum += w;
    }
    weights[i] =
        options.combine == MultiLabelCombine::kMax ? best : sum / static_cast<double>(m.classes[i].size());
  }
  return weights;
}

namespace {

// Median frequency balancing over `present` classes (Eigen & Fergus 2015).
std::vector<double> median_frequency_weights(const TargetStatistics& stats,
                                             const std::vector<std::size_t>& present) {
  std::vector<double> frequency(present.size());
  for (std::size_t k = 0; k < present.size(); ++k) {
    const std::size_t c = present[k];
    frequency[k] = static_cast<double>(stats.class_pixels[c]) /
                   (static_cast<double>(stats.class_mask_images[c]) * static_cast<double>(stats.mask_pixels));
  }
  std::vector<double> sorted = frequency;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t half = sorted.size() / 2;
  const double median = sorted.size() % 2 == 1 ? sorted[half] : 0.5 * (sorted[half - 1] + sorted[half]);
  std::vector<double> weights(present.size());
  for (std::size_t k = 0; k < present.size(); ++k) weights[k] = median / frequency[k];
  return weights;
}

// The ClassWeighting schemes, computed once, by class_weights, over the present classes' pixels.
std::vector<double> counted_weights(const TargetStatistics& stats, const std::vector<std::size_t>& present,
                                    const ClassWeightOptions& options) {
  std::vector<std::int64_t> counts(present.size());
  for (std::size_t k = 0; k < present.size(); ++k) counts[k] = stats.class_pixels[present[k]];
  const torch::Tensor w = class_weights(counts, options);
  const float* data = w.data_ptr<float>();
  return std::vector<double>(data, data + present.size());
}

std::vector<std::size_t> present_classes(const TargetStatistics& stats, bool zero_absent) {
  std::vector<std::size_t> present;
  for (std::size_t c = 0; c < stats.class_names.size(); ++c) {
    if (stats.class_pixels[c] > 0) {
      present.push_back(c);
    } else if (!zero_absent) {
      throw ConfigError("pixel_class_weights: class " + std::to_string(c) + " (\"" + stats.class_names[c] +
                        "\") has no pixel in the " + std::to_string(stats.valid_masks) +
                        " valid masks; a class with no pixels has no finite weight "
                        "(PixelWeightOptions.zero_absent_classes gives it weight 0)");
    }
  }
  return present;
}

}  // namespace

torch::Tensor pixel_class_weights(const TargetStatistics& stats, PixelWeightOptions options) {
  if (stats.valid_masks == 0 || stats.class_pixels.size() != stats.class_names.size()) {
    throw ConfigError("pixel_class_weights: none of the " + std::to_string(stats.images.size()) +
                      " images has a valid mask");
  }
  const std::vector<std::size_t> present = present_classes(stats, options.zero_absent_classes);
  const std::vector<double> weights = options.weighting == PixelWeighting::kMedianFrequency
                                          ? median_frequency_weights(stats, present)
                                          : counted_weights(stats, present, options.class_weighting);
  torch::Tensor result = torch::zeros({static_cast<std::int64_t>(stats.class_names.size())}, torch::kFloat32);
  float* out = result.data_ptr<float>();
  for (std::size_t k = 0; k < present.size(); ++k) out[present[k]] = static_cast<float>(weights[k]);
  return result;
}

}  // namespace medload::samplers
