#pragma once
/// Fast non-cryptographic content hashing: identity of source files, decoded pixels, cached
/// samples and configs. The algorithm is XXH64, so values are stable across platforms and
/// releases and can be checked with any xxHash implementation.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace medload {

/// XXH64 of `size` bytes at `data` with `seed`. Bytes are read little-endian.
std::uint64_t hash64(const void* data, std::size_t size, std::uint64_t seed = 0) noexcept;

/// XXH64 of a string's bytes. (A distinct name: `hash64("abc", 0)` would pick the pointer
/// overload and hash zero bytes.)
inline std::uint64_t hash64_text(std::string_view text, std::uint64_t seed = 0) noexcept {
  return hash64(text.data(), text.size(), seed);
}

/// A hash as 16 lowercase hex digits, the form used in caches and reports.
std::string hash_hex(std::uint64_t value);

}  // namespace medload
