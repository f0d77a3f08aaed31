#pragma once
/// A generated dataset with a planted finding, for the learning check and for trying the
/// examples without a cache: 8-bit grayscale images of smooth anatomy-like background and noise,
/// where a fraction of them (10% by default) carry one small bright nodule. Every image is a pure
/// function of (seed, index), generated when it is read, so any size costs no memory.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "medload/loader/serve/sample_source.h"

namespace medload::examples {

/// Options of SyntheticNoduleSource.
struct SyntheticOptions {
  /// Number of images, >= 2.
  std::size_t count = 400;
  /// Side of the square images in pixels, in [16, 1024].
  std::int64_t size = 32;
  /// Fraction of images with a nodule (label 1), in (0, 1).
  double positive_fraction = 0.1;
  /// Nodule radius in pixels, > 0 and < size / 4.
  double nodule_radius = 3.0;
  /// Nodule peak brightness above the background, in grey levels (1..255).
  double nodule_contrast = 70.0;
  /// Images per synthetic patient (consecutive indices share a patient), >= 1.
  std::size_t images_per_patient = 2;
  /// Seed of the whole dataset.
  std::uint64_t seed = 0;
  /// Throws ConfigError naming the field and its limit.
  void validate() const;
};

/// The generated images as a medload SampleSource: uint8 [1, size, size], served as float32 in
/// [0, 1] (scale 1/255, no normalisation); label 1 = nodule, 0 = normal.
class SyntheticNoduleSource : public loader::SampleSource {
 public:
  /// Validates `options` (ConfigError) and draws every image's label.
  explicit SyntheticNoduleSource(SyntheticOptions options);
  /// The images `indices` of `full` (e.g. one part of a split), with their original sample ids.
  SyntheticNoduleSource(const SyntheticNoduleSource& full, std::vector<std::size_t> indices);

  std::size_t size() const override { return rows_.size(); }
  loader::SampleLayout layout() const override;
  loader::SampleOutput output() const override;
  void read(std::size_t index, void* out) const override;
  std::size_t label_columns() const override { return 0; }
  void label(std::size_t index, std::int64_t* out) const override;
  std::int64_t sample_id(std::size_t index) const override;
  std::string describe(std::size_t index) const override;

  /// Labels of the served images [size()].
  std::vector<std::int64_t> labels() const;
  /// Patient ids of the served images [size()] ("synthetic-<n>").
  std::vector<std::string> patient_ids() const;
  /// The options.
  const SyntheticOptions& options() const noexcept { return options_; }

 private:
  SyntheticOptions options_;
  std::shared_ptr<const std::vector<std::int64_t>> all_labels_;  // [count], shared by parts
  std::vector<std::size_t> rows_;                                // served row -> image index
};

}  // namespace medload::examples
