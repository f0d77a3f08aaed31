#include "medload/samplers/alias_table.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "medload/core/error.h"
#include "medload/samplers/counter_rng.h"
#include "weights_check.h"

namespace medload::samplers {
namespace {

// 2^32 as a double: thresholds are fractions of it.
constexpr double kScale32 = 4294967296.0;

std::uint32_t to_threshold(double q) {
  // q in [0, 1): a full column (q >= 1) never reaches here, it aliases to itself.
  const double t = std::floor(q * kScale32 + 0.5);
  if (t <= 0.0) return 0;
  if (t >= kScale32 - 1.0) return std::numeric_limits<std::uint32_t>::max();
  return static_cast<std::uint32_t>(t);
}

// Vose's construction over one index type; Index is uint32 below 2^32 to halve the work list.
template <typename Index, typename Emit>
void build(const std::vector<double>& weights, long double total, Emit&& emit) {
  const std::size_t n = weights.size();
  std::vector<double> scaled(n);
  const long double factor = static_cast<long double>(n) / total;
  // Small columns fill the work list from the front, large ones from the back.
  std::vector<Index> work(n);
  std::size_t small_end = 0;
  std::size_t large_begin = n;
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = static_cast<double>(static_cast<long double>(weights[i]) * factor);
    if (scaled[i] < 1.0) {
      work[small_end++] = static_cast<Index>(i);
    } else {
      work[--large_begin] = static_cast<Index>(i);
    }
  }
  // Pair each small column with a large one; the large one's remainder goes back to a list.
  std::size_t small_top = small_end;    // stack of small: work[0, small_top)
  std::size_t large_top = large_begin;  // stack of large: work[large_top, n)
  while (small_top > 0 && large_top < n) {
    const Index s = work[--small_top];
    const Index l = work[large_top];
    emit(s, scaled[s], l);
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      ++large_top;
      work[small_top++] = l;
    }
  }
  // Whatever is left is 1 up to rounding: a full column.
  while (large_top < n) {
    const Index l = work[large_top++];
    emit(l, 1.0, l);
  }
  while (small_top > 0) {
    const Index s = work[--small_top];
    emit(s, 1.0, s);
  }
}

}  // namespace

AliasTable::AliasTable(const std::vector<double>& weights) {
  const long double total = detail::checked_weight_sum(weights, "weights");
  size_ = weights.size();
  wide_ = size_ >= (std::uint64_t{1} << 32);
  if (!wide_) {
    packed_.resize(size_);
    build<std::uint32_t>(weights, total, [this](std::uint32_t column, double q, std::uint32_t alias) {
      if (q >= 1.0) {
        packed_[column] = static_cast<std::uint64_t>(column) << 32 | 0xffffffffULL;
      } else {
        packed_[column] = static_cast<std::uint64_t>(alias) << 32 | to_threshold(q);
      }
    });
  } else {
    threshold_.resize(size_);
    alias_.resize(size_);
    build<std::uint64_t>(weights, total, [this](std::uint64_t column, double q, std::uint64_t alias) {
      threshold_[column] = q >= 1.0 ? std::numeric_limits<std::uint32_t>::max() : to_threshold(q);
      alias_[column] = q >= 1.0 ? column : alias;
    });
  }
}

void AliasTable::draw_stream(std::uint64_t key, std::uint64_t begin, std::uint64_t stride, std::size_t count,
                             std::size_t* out) const noexcept {
  constexpr std::uint64_t kSecond = std::uint64_t{1} << 63;
  if (wide_) {
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t c = begin + i * stride;
      out[i] = static_cast<std::size_t>(draw(random_u64(key, c), random_u64(key, kSecond + c)));
    }
    return;
  }
  // Small tables sit in cache: the plain loop is as fast and simpler.
  if (size_ <= (std::uint64_t{1} << 15)) {
    for (std::size_t i = 0; i < count; ++i)
      out[i] = static_cast<std::size_t>(draw(random_u64(key, begin + i * stride), 0));
    return;
  }
  constexpr std::size_t kChunk = 64;
  std::uint64_t column[kChunk];
  std::uint32_t fraction[kChunk];
  const std::uint64_t* table = packed_.data();
  for (std::size_t done = 0; done < count; done += kChunk) {
    const std::size_t n = count - done < kChunk ? count - done : kChunk;
    const std::uint64_t first = begin + done * stride;
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned __int128 product =
          static_cast<unsigned __int128>(random_u64(key, first + i * stride)) * size_;
      column[i] = static_cast<std::uint64_t>(product >> 64);
      fraction[i] = static_cast<std::uint32_t>(static_cast<std::uint64_t>(product) >> 32);
      __builtin_prefetch(table + column[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t entry = table[column[i]];
      out[done + i] = static_cast<std::size_t>(
          fraction[i] < static_cast<std::uint32_t>(entry) ? column[i] : (entry >> 32));
    }
  }
}

std::vector<double> AliasTable::effective_probabilities() const {
  std::vector<double> p(size_, 0.0);
  const double column_mass = 1.0 / static_cast<double>(size_);
  for (std::uint64_t c = 0; c < size_; ++c) {
    std::uint64_t alias = 0;
    std::uint32_t threshold = 0;
    if (!wide_) {
      alias = packed_[c] >> 32;
      threshold = static_cast<std::uint32_t>(packed_[c]);
    } else {
      alias = alias_[c];
      threshold = threshold_[c];
    }
    const double keep = static_cast<double>(threshold) / kScale32;
    p[c] += column_mass * keep;
    p[alias] += column_mass * (1.0 - keep);
  }
  return p;
}

std::size_t AliasTable::memory_bytes() const noexcept {
  return packed_.size() * sizeof(std::uint64_t) + threshold_.size() * sizeof(std::uint32_t) +
         alias_.size() * sizeof(std::uint64_t);
}

}  // namespace medload::samplers
