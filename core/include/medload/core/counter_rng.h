#pragma once
/// A counter-based random generator: draw k of a stream is a pure function of
/// (seed, stream, k). The samplers use it so that any position of an epoch can be computed
/// without the ones before it (resuming is O(1), and every rank of a distributed job sees the
/// same global stream without communicating); augmentation uses it so that a sample's random
/// parameters depend on (seed, epoch, sample id) only, whatever thread or batch draws them.
///
/// The generator is SplitMix64 (Steele, Lea, Flood 2014, the seeding generator of xoshiro): the
/// output for counter k is mix(key + (k + 1) * golden), which passes BigCrush. The key is itself
/// a SplitMix64 hash of (seed, stream), so different streams are decorrelated. Header-only, with
/// no dependencies.

#include <cstddef>
#include <cstdint>

namespace medload {

/// The odd "golden gamma" increment of SplitMix64: 2^64 / phi.
inline constexpr std::uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

/// SplitMix64's output function (Stafford's Mix13): a bijection of 64-bit words with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// The key of stream `stream` under `seed` (for example stream = epoch, or a hash of (epoch, class)).
constexpr std::uint64_t stream_key(std::uint64_t seed, std::uint64_t stream) noexcept {
  return mix64(mix64(seed + kGoldenGamma) ^ (stream * 0xd1b54a32d192ed03ULL + 0x2545f4914f6cdd1dULL));
}

/// Draw `counter` of the stream with `key`: 64 uniformly distributed bits.
constexpr std::uint64_t random_u64(std::uint64_t key, std::uint64_t counter) noexcept {
  return mix64(key + (counter + 1) * kGoldenGamma);
}

/// Maps 64 uniform bits to [0, n) by the multiply-high method (Lemire 2019) without rejection:
/// the bias is below n / 2^64, far below anything a sampler can measure.
inline std::uint64_t bounded(std::uint64_t bits, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(bits) * n) >> 64);
}

/// Maps 64 uniform bits to a double in [0, 1) with 53 random bits.
constexpr double unit_double(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// A sequential view of one stream, for code that wants "the next number".
class CounterRng {
 public:
  /// The stream `stream` under `seed`, starting at counter `start`.
  constexpr CounterRng(std::uint64_t seed, std::uint64_t stream, std::uint64_t start = 0) noexcept
      : key_(stream_key(seed, stream)), counter_(start) {}

  /// The next 64 uniform bits.
  constexpr std::uint64_t next_u64() noexcept { return random_u64(key_, counter_++); }

  /// The next integer uniform in [0, n); n > 0.
  std::uint64_t next_below(std::uint64_t n) noexcept { return bounded(next_u64(), n); }

  /// The next double uniform in [0, 1).
  constexpr double next_double() noexcept { return unit_double(next_u64()); }

  /// How many numbers have been drawn (the position in the stream).
  constexpr std::uint64_t counter() const noexcept { return counter_; }

 private:
  std::uint64_t key_;
  std::uint64_t counter_;
};

/// Shuffles `values[0, count)` in place (Fisher-Yates) with the stream of `rng`.
template <typename T>
void shuffle(T* values, std::size_t count, CounterRng& rng) noexcept {
  for (std::size_t i = count; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.next_below(i));
    T tmp = values[i - 1];
    values[i - 1] = values[j];
    values[j] = tmp;
  }
}

}  // namespace medload
