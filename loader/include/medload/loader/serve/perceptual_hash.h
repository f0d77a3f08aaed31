#pragma once
/// A 64-bit perceptual hash (DCT pHash) of a preprocessed image, for finding near-duplicates
/// (the same radiograph re-exported, re-windowed, brightened, lightly noised) across splits.
///
/// The image is reduced to 32 x 32 by area averaging (channels averaged), transformed by a 2-D
/// DCT-II, and its 8 x 8 lowest frequencies (the DC term included) are compared with their median:
/// bit (8u + v) is 1 when coefficient (u, v) is above it. Brightness offsets move the DC term
/// only and contrast scales every coefficient alike, so neither changes the hash; mild noise
/// and blur flip a few bits. Two hashes are compared by their Hamming distance
/// (`hash_distance`); see AuditOptions::near_duplicate_distance for the threshold.

#include <array>
#include <cstddef>
#include <cstdint>

namespace medload::loader {

/// pHash of a row-major uint8 image [channels, height, width] (channels planar). Throws
/// ConfigError when a dimension is 0.
std::uint64_t perceptual_hash(const std::uint8_t* pixels, std::size_t channels, std::size_t height,
                              std::size_t width);
/// pHash of a row-major uint16 image [channels, height, width].
std::uint64_t perceptual_hash(const std::uint16_t* pixels, std::size_t channels, std::size_t height,
                              std::size_t width);

/// The perceptual hash and the 32 x 32 area-reduced thumbnail it was computed from (8-bit:
/// 16-bit images divided by 257). The thumbnail confirms a hash match: images of one anatomy can
/// share most low-frequency bits, while a copy of one image also correlates almost perfectly.
struct ImageDigest {
  /// The 64-bit DCT pHash.
  std::uint64_t hash = 0;
  /// Row-major 32 x 32 thumbnail.
  std::array<std::uint8_t, 32 * 32> thumbnail{};
};

/// Hash and thumbnail of a uint8 image [channels, height, width]. Throws ConfigError when empty.
ImageDigest image_digest(const std::uint8_t* pixels, std::size_t channels, std::size_t height,
                         std::size_t width);
/// Hash and thumbnail of a uint16 image [channels, height, width].
ImageDigest image_digest(const std::uint16_t* pixels, std::size_t channels, std::size_t height,
                         std::size_t width);

/// Pearson correlation of two thumbnails (-1..1): invariant to brightness and contrast, close to 1
/// for a copy with mild noise or blur. Two flat thumbnails correlate 1, a flat and a textured one 0.
double thumbnail_correlation(const ImageDigest& a, const ImageDigest& b) noexcept;

/// Number of differing bits of two hashes (0..64).
inline int hash_distance(std::uint64_t a, std::uint64_t b) noexcept { return __builtin_popcountll(a ^ b); }

}  // namespace medload::loader
