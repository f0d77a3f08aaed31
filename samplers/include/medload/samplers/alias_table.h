#pragma once
/// Walker's alias method (Vose's O(N) construction) over up to 2^64 categories: one draw is one
/// hash, one table read and one comparison, whatever N is.
///
/// Precision: the table is built in float64 from weights summed in long double; each column's
/// acceptance threshold is then stored as a 32-bit fixed-point fraction, so every category's
/// probability is within (1 + number of columns aliasing to it) * 2^-32 / N of the exact
/// w_i / sum(w) (relative error ~2^-32 for typical tables).
///
/// Memory: 8 bytes per category for N < 2^32 (uint32 threshold + uint32 alias, packed so a draw
/// touches one cache line), 12 bytes beyond (uint32 + uint64). Building needs a further
/// 12 bytes per category transiently (float64 scaled weights + uint32/uint64 work list):
/// N = 1e8 takes 0.8 GB resident and ~2 GB peak while building, plus the caller's weights.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace medload::samplers {

/// An immutable alias table. Thread-safe to draw from concurrently.
class AliasTable {
 public:
  /// Builds the table for `weights` (any non-negative finite values, at least one > 0).
  /// Throws ConfigError naming the index and value of a negative, NaN or infinite weight, and
  /// when `weights` is empty or every weight is zero.
  explicit AliasTable(const std::vector<double>& weights);

  /// Number of categories N.
  std::uint64_t size() const noexcept { return size_; }

  /// Maps 64 uniform bits to a category in [0, N) with probability w_i / sum(w).
  /// `bits2` is used only when N >= 2^32 (the low bits of the multiply-high no longer carry
  /// 32 bits of resolution there); pass a second independent word.
  std::uint64_t draw(std::uint64_t bits, std::uint64_t bits2) const noexcept {
    const unsigned __int128 product = static_cast<unsigned __int128>(bits) * size_;
    const std::uint64_t column = static_cast<std::uint64_t>(product >> 64);
    if (!wide_) {
      const std::uint64_t entry = packed_[column];
      const std::uint32_t fraction = static_cast<std::uint32_t>(static_cast<std::uint64_t>(product) >> 32);
      return fraction < static_cast<std::uint32_t>(entry) ? column : (entry >> 32);
    }
    const std::uint32_t fraction = static_cast<std::uint32_t>(bits2 >> 32);
    return fraction < threshold_[column] ? column : alias_[column];
  }

  /// Draws `count` categories for counters begin, begin + stride, ... of the counter-based stream
  /// `key` (see counter_rng.h): out[i] = draw(random_u64(key, c), random_u64(key, 2^63 + c)) for
  /// c = begin + i * stride. Works in chunks that prefetch their table entries first, so the
  /// cache misses of large tables overlap instead of queueing.
  void draw_stream(std::uint64_t key, std::uint64_t begin, std::uint64_t stride, std::size_t count,
                   std::size_t* out) const noexcept;

  /// Whether draw() reads its second argument (N >= 2^32).
  bool needs_two_words() const noexcept { return wide_; }

  /// The probability the table actually gives category i (for tests and reports). O(N).
  std::vector<double> effective_probabilities() const;

  /// Bytes held by the table.
  std::size_t memory_bytes() const noexcept;

 private:
  std::uint64_t size_ = 0;
  bool wide_ = false;
  std::vector<std::uint64_t> packed_;     // N < 2^32: threshold (low 32 bits) | alias << 32
  std::vector<std::uint32_t> threshold_;  // N >= 2^32
  std::vector<std::uint64_t> alias_;      // N >= 2^32
};

}  // namespace medload::samplers
