#include "synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "medload/core/error.h"

namespace medload::examples {
namespace {

// A counter-based uniform in [0, 1): splitmix64 of (seed, stream, counter), so every pixel of
// every image is a pure function of its coordinates.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
double uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const std::uint64_t h = mix(mix(seed ^ mix(stream)) ^ counter);
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

void SyntheticOptions::validate() const {
  auto fail = [](const std::string& what) { throw ConfigError("SyntheticOptions: " + what); };
  if (count < 2) fail("count is " + std::to_string(count) + "; it must be >= 2");
  if (size < 16 || size > 1024) fail("size is " + std::to_string(size) + "; it must be in [16, 1024]");
  if (!(positive_fraction > 0.0 && positive_fraction < 1.0)) {
    fail("positive_fraction is " + std::to_string(positive_fraction) + "; it must be in (0, 1)");
  }
  if (!(nodule_radius > 0.0 && nodule_radius < static_cast<double>(size) / 4.0)) {
    fail("nodule_radius is " + std::to_string(nodule_radius) + "; it must be in (0, size / 4)");
  }
  if (!(nodule_contrast >= 1.0 && nodule_contrast <= 255.0)) {
    fail("nodule_contrast is " + std::to_string(nodule_contrast) + "; it must be in [1, 255]");
  }
  if (images_per_patient < 1) fail("images_per_patient is 0; it must be >= 1");
}

SyntheticNoduleSource::SyntheticNoduleSource(SyntheticOptions options) : options_(options) {
  options_.validate();
  // Exactly round(fraction x count) positives (at least one), at seeded positions: the planted
  // prevalence is the stated one, not a binomial draw around it.
  const std::size_t n = options_.count;
  const auto positives = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::llround(options_.positive_fraction * static_cast<double>(n))));
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  for (std::size_t i = n - 1; i > 0; --i) {  // Fisher-Yates with the counter-based uniform
    const auto j = static_cast<std::size_t>(uniform(options_.seed, 1, i) * static_cast<double>(i + 1));
    std::swap(order[i], order[std::min(j, i)]);
  }
  auto labels = std::make_shared<std::vector<std::int64_t>>(n, 0);
  for (std::size_t k = 0; k < positives && k < n; ++k) (*labels)[order[k]] = 1;
  all_labels_ = labels;
  rows_.resize(n);
  for (std::size_t i = 0; i < n; ++i) rows_[i] = i;
}

SyntheticNoduleSource::SyntheticNoduleSource(const SyntheticNoduleSource& full,
                                             std::vector<std::size_t> indices)
    : options_(full.options_), all_labels_(full.all_labels_) {
  rows_.reserve(indices.size());
  for (std::size_t i : indices) {
    if (i >= full.size()) {
      throw ConfigError("SyntheticNoduleSource: index " + std::to_string(i) + " is outside the " +
                        std::to_string(full.size()) + " images");
    }
    rows_.push_back(full.rows_[i]);
  }
}

loader::SampleLayout SyntheticNoduleSource::layout() const {
  loader::SampleLayout l;
  l.channels = 1;
  l.height = options_.size;
  l.width = options_.size;
  l.depth = loader::PixelDepth::kUInt8;
  return l;
}

loader::SampleOutput SyntheticNoduleSource::output() const {
  loader::SampleOutput o;
  o.as_float = true;
  o.scale = 1.0f / 255.0f;
  o.mean = 0.0f;
  o.std = 1.0f;
  return o;
}

void SyntheticNoduleSource::read(std::size_t index, void* out) const {
  if (index >= rows_.size()) {
    throw ConfigError("SyntheticNoduleSource: index " + std::to_string(index) + " of " +
                      std::to_string(size()));
  }
  const std::size_t row = rows_[index];
  const std::uint64_t seed = options_.seed;
  const std::int64_t s = options_.size;
  const double sd = static_cast<double>(s);
  // Background: a vertical gradient and a broad blob (anatomy), a per-image brightness, noise.
  const double base = 70.0 + 50.0 * uniform(seed, 2, row);
  const double blob_x = sd * (0.3 + 0.4 * uniform(seed, 3, row));
  const double blob_y = sd * (0.3 + 0.4 * uniform(seed, 4, row));
  const double blob_r = sd * (0.2 + 0.15 * uniform(seed, 5, row));
  const double blob_a = 30.0 * uniform(seed, 6, row);
  const bool nodule = (*all_labels_)[row] == 1;
  const double r = options_.nodule_radius;
  const double nod_x = r + 2.0 + (sd - 2.0 * r - 4.0) * uniform(seed, 7, row);
  const double nod_y = r + 2.0 + (sd - 2.0 * r - 4.0) * uniform(seed, 8, row);
  auto* px = static_cast<std::uint8_t*>(out);
  for (std::int64_t y = 0; y < s; ++y) {
    for (std::int64_t x = 0; x < s; ++x) {
      const double fx = static_cast<double>(x), fy = static_cast<double>(y);
      double v = base + 20.0 * (fy / sd - 0.5);
      const double db = ((fx - blob_x) * (fx - blob_x) + (fy - blob_y) * (fy - blob_y)) / (blob_r * blob_r);
      v += blob_a * std::exp(-db);
      if (nodule) {
        const double dn = ((fx - nod_x) * (fx - nod_x) + (fy - nod_y) * (fy - nod_y)) / (r * r);
        v += options_.nodule_contrast * std::exp(-dn);
      }
      const auto pixel = static_cast<std::uint64_t>(row) * static_cast<std::uint64_t>(s * s) +
                         static_cast<std::uint64_t>(y * s + x);
      v += 16.0 * (uniform(seed, 9, pixel) - 0.5);
      px[y * s + x] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  }
}

void SyntheticNoduleSource::label(std::size_t index, std::int64_t* out) const {
  *out = (*all_labels_)[rows_.at(index)];
}

std::int64_t SyntheticNoduleSource::sample_id(std::size_t index) const {
  return static_cast<std::int64_t>(rows_.at(index));
}

std::string SyntheticNoduleSource::describe(std::size_t index) const {
  return "synthetic image " + std::to_string(rows_.at(index)) + " (seed " + std::to_string(options_.seed) +
         ")";
}

std::vector<std::int64_t> SyntheticNoduleSource::labels() const {
  std::vector<std::int64_t> out(rows_.size());
  for (std::size_t i = 0; i < rows_.size(); ++i) out[i] = (*all_labels_)[rows_[i]];
  return out;
}

std::vector<std::string> SyntheticNoduleSource::patient_ids() const {
  std::vector<std::string> out(rows_.size());
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    out[i] = "synthetic-" + std::to_string(rows_[i] / options_.images_per_patient);
  }
  return out;
}

}  // namespace medload::examples
