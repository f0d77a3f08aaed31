#pragma once
/// Fast non-cryptographic content hashing: identity of source files, decoded pixels, cached
/// samples and configs. The algorithm is XXH64, so values are stable across platforms and
/// releases and can be checked with any xxHash implementation.

#include <cstddef>
#include <cstdint>
#include <optional>
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

/// The content hash of a file's bytes (the scan report's content_hash, the cache's source_hash):
/// XXH64 with seed 0, or nullopt for zero bytes. An empty file has no content hash: there is nothing
/// to identify, and every empty file would otherwise be a "duplicate" of every other. Reports omit
/// the hash and caches store "" for such a file, as they always have.
inline std::optional<std::uint64_t> content_hash(const void* data, std::size_t size) noexcept {
  if (size == 0) return std::nullopt;
  return hash64(data, size, 0);
}

/// content_hash() of the file at `path`, read whole: nullopt when it is empty or cannot be opened
/// or read (the caller reports why where that matters; here it only means "no hash").
std::optional<std::uint64_t> file_content_hash(const std::string& path);

/// A hash as 16 lowercase hex digits, the form used in caches and reports.
std::string hash_hex(std::uint64_t value);

}  // namespace medload
