#pragma once
/// What target_statistics reads of a cache's targets (masks, boxes, landmarks), as an interface:
/// medload::samplers stays free of HDF5 and of the loader (the loader links samplers, not the
/// other way round). make_target_reader adapts medload::loader::CacheReader, or anything with its
/// target API, in this header, so nothing in samplers links the loader:
///
/// ```
/// medload::loader::CacheReader cache(train.path());
/// auto reader = medload::samplers::make_target_reader(cache);
/// auto stats = medload::samplers::target_statistics(*reader, train.sample_ids());
/// ```

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace medload::samplers {

/// The targets of the N rows of a cache. Only read_mask is called from several threads at once.
class TargetReader {
 public:
  virtual ~TargetReader() = default;

  /// Rows N.
  virtual std::size_t size() const = 0;
  /// The target classes' names by class id (K = names.size(); 0 = background).
  virtual std::vector<std::string> class_names() const = 0;
  /// Pixels of one mask (height * width); 0 when the cache holds no masks.
  virtual std::size_t mask_pixels() const = 0;
  /// True when `row`'s mask is stored and valid (TargetState::kValid).
  virtual bool mask_valid(std::size_t row) const = 0;
  /// Reads `row`'s mask into `out`: mask_pixels() uint16 class ids, [H,W] row-major. Called only
  /// for rows with mask_valid(row), from several threads at once.
  virtual void read_mask(std::size_t row, std::uint16_t* out) const = 0;
  /// The labels of `row`'s boxes when they are valid (empty: a negative image); nullopt when its
  /// boxes are not given or invalid.
  virtual std::optional<std::vector<std::int32_t>> box_labels(std::size_t row) const = 0;
  /// The labels of `row`'s landmarks, as box_labels.
  virtual std::optional<std::vector<std::int32_t>> landmark_labels(std::size_t row) const = 0;
};

namespace detail {

/// TargetReader over a medload::loader::CacheReader-like `Cache` (size, has_masks, height, width,
/// read_mask, mask_states, box_states, landmark_states, boxes, landmarks, target_classes).
template <class Cache>
class CacheTargetReader final : public TargetReader {
 public:
  explicit CacheTargetReader(const Cache& cache) : cache_(cache) {}

  std::size_t size() const override { return cache_.size(); }
  std::vector<std::string> class_names() const override { return cache_.target_classes().names; }
  std::size_t mask_pixels() const override {
    return cache_.has_masks()
               ? static_cast<std::size_t>(cache_.height()) * static_cast<std::size_t>(cache_.width())
               : 0;
  }
  bool mask_valid(std::size_t row) const override {
    return cache_.has_masks() && valid(cache_.mask_states(), row);
  }
  void read_mask(std::size_t row, std::uint16_t* out) const override { cache_.read_mask(row, out); }
  std::optional<std::vector<std::int32_t>> box_labels(std::size_t row) const override {
    if (!valid(cache_.box_states(), row)) return std::nullopt;
    return labels_of(cache_.boxes(row));
  }
  std::optional<std::vector<std::int32_t>> landmark_labels(std::size_t row) const override {
    if (!valid(cache_.landmark_states(), row)) return std::nullopt;
    return labels_of(cache_.landmarks(row));
  }

 private:
  // The cache's TargetState enum, named through its tables so this header needs no loader header.
  template <class States>
  static bool valid(const States& states, std::size_t row) {
    using State = std::decay_t<decltype(states[0])>;
    return row < states.size() && states[row] == State::kValid;
  }
  template <class Targets>
  static std::vector<std::int32_t> labels_of(const Targets& targets) {
    std::vector<std::int32_t> labels;
    labels.reserve(targets.size());
    for (const auto& target : targets) labels.push_back(static_cast<std::int32_t>(target.label));
    return labels;
  }

  const Cache& cache_;
};

}  // namespace detail

/// A TargetReader over `cache`, a medload::loader::CacheReader (or a type with its target API).
/// `cache` must outlive the result. Its read_mask is thread-safe because CacheReader's is.
template <class Cache>
std::unique_ptr<TargetReader> make_target_reader(const Cache& cache) {
  return std::make_unique<detail::CacheTargetReader<Cache>>(cache);
}

}  // namespace medload::samplers
