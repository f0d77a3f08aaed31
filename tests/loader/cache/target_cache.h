#pragma once
// A small cache with targets (masks, boxes, landmarks), written the way a build writes one:
// assemble_cache with a mask reader, the target tables through append_targets.

#include <cstdint>
#include <string>
#include <vector>

#include "cache_assembly.h"
#include "cache_writer.h"
#include "medload/core/hash.h"
#include "medload/loader/ingest/annotation.h"

namespace medload::loader::test {

inline constexpr std::size_t kTargetImages = 6;
inline constexpr int kTargetHeight = 12;  // not square: a swapped height and width shows
inline constexpr int kTargetWidth = 16;

inline std::vector<std::string> target_class_names() { return {"background", "liver", "tumour", "vessel"}; }

/// Image i's mask: (i + seed + p / 5) mod 4 at pixel p.
inline std::vector<std::uint16_t> mask_of(std::size_t i, int seed = 0) {
  std::vector<std::uint16_t> mask(static_cast<std::size_t>(kTargetHeight * kTargetWidth));
  for (std::size_t p = 0; p < mask.size(); ++p) mask[p] = static_cast<std::uint16_t>((i + seed + p / 5) % 4);
  return mask;
}

/// Image i: (i * 29 + seed * 7 + p * 3) mod 251 at pixel p (uint8).
inline std::vector<std::uint8_t> image_of(std::size_t i, int seed = 0) {
  std::vector<std::uint8_t> image(static_cast<std::size_t>(kTargetHeight * kTargetWidth));
  for (std::size_t p = 0; p < image.size(); ++p)
    image[p] = static_cast<std::uint8_t>((i * 29 + seed * 7 + p * 3) % 251);
  return image;
}

/// Image i's targets on the 16x12 output grid; shifted by `seed` pixels (x) so two caches differ:
///   i  mask     boxes                         landmarks                  dropped
///   0  valid    valid: 2 boxes                valid: 1                   -
///   1  invalid  valid: none (a negative)      none                       -
///   2  none     none                          none                       -
///   3  valid    invalid                       valid: 2 (grid corners)    3 boxes
///   4  none     valid: the whole grid         invalid                    1 landmark
///   5  valid    valid: 1 box                  valid: none                -
/// Masks valid 3, invalid 1, none 2; boxes valid 4, invalid 1, none 1 (4 boxes); landmarks valid
/// 3, invalid 1, none 2 (3 landmarks).
inline FrameTargets frame_targets(std::size_t i, int seed = 0) {
  using S = TargetState;
  const double dx = seed;
  FrameTargets t;
  switch (i) {
    case 0:
      t.mask_state = S::kValid;
      t.boxes_state = S::kValid;
      t.boxes = {{1 + dx, 2, 5 + dx, 6.5, 1}, {8.5, 0, 16, 12, 2}};
      t.landmarks_state = S::kValid;
      t.landmarks = {{3.25 + dx, 4.75, 3}};
      break;
    case 1:
      t.mask_state = S::kInvalid;
      t.boxes_state = S::kValid;
      break;
    case 2:
      break;
    case 3:
      t.mask_state = S::kValid;
      t.boxes_state = S::kInvalid;
      t.landmarks_state = S::kValid;
      t.landmarks = {{0, 0, 1}, {16, 12, 2}};
      t.boxes_dropped = 3;
      break;
    case 4:
      t.boxes_state = S::kValid;
      t.boxes = {{0, 0, 16, 12, 3}};
      t.landmarks_state = S::kInvalid;
      t.landmarks_dropped = 1;
      break;
    default:
      t.mask_state = S::kValid;
      t.boxes_state = S::kValid;
      t.boxes = {{2 + dx, 3, 4 + dx, 5, 1}};
      t.landmarks_state = S::kValid;
      break;
  }
  if (t.mask_state == S::kValid) t.mask = {kTargetHeight, kTargetWidth, mask_of(i, seed)};
  return t;
}

/// How write_target_cache writes.
struct TargetCacheOptions {
  int seed = 0;         ///< shifts pixels, masks, box x and the pixel hashes
  int deflate = 0;      ///< the images' zlib level
  bool targets = true;  ///< false: every image kNone (no /targets)
  bool masks = true;    ///< false: no masks dataset; the valid masks become kNone
  std::vector<std::string> classes = target_class_names();
};

/// Writes a cache of kTargetImages 12x16 uint8 images with frame_targets(i, seed) at `path`.
inline void write_target_cache(const std::string& path, const TargetCacheOptions& options = {}) {
  detail::CacheHeader header;
  header.count = kTargetImages;
  header.height = kTargetHeight;
  header.width = kTargetWidth;
  header.deflate = options.deflate;
  header.masks = options.targets && options.masks;
  std::vector<FrameTargets> targets(kTargetImages);
  detail::CacheColumns columns;
  for (std::size_t i = 0; i < kTargetImages; ++i) {
    if (options.targets) targets[i] = frame_targets(i, options.seed);
    if (!header.masks && targets[i].mask_state == TargetState::kValid)
      targets[i].mask_state = TargetState::kNone;
    const std::vector<std::uint8_t> image = image_of(i, options.seed);
    columns.labels.push_back(static_cast<std::int64_t>(i % 2));
    columns.patient_ids.push_back("p" + std::to_string(options.seed) + "_" + std::to_string(i));
    columns.source_paths.push_back("s" + std::to_string(options.seed) + "/img" + std::to_string(i) + ".png");
    columns.source_hashes.push_back(hash_hex(static_cast<std::uint64_t>(options.seed * 100) + i));
    columns.sites.push_back("north");
    columns.frame_indices.push_back(0);
    columns.source_indices.push_back(static_cast<std::int64_t>(i));
    columns.pixel_hashes.push_back(static_cast<std::uint64_t>(options.seed * 1000) + i);
    columns.checksums.push_back(hash64(image.data(), image.size()));
    columns.geometry.push_back({});
    detail::append_targets(columns.targets, targets[i]);
  }
  if (options.targets) columns.targets.classes = options.classes;
  const auto read = [&](std::size_t i, std::uint8_t* out, std::size_t size) {
    const std::vector<std::uint8_t> image = image_of(i, options.seed);
    std::copy(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(size), out);
  };
  const auto read_mask = [&](std::size_t i, std::uint16_t* out) {
    if (targets[i].mask_state != TargetState::kValid) return false;
    std::copy(targets[i].mask.labels.begin(), targets[i].mask.labels.end(), out);
    return true;
  };
  const auto finish = [&](detail::CacheWriter& writer) {
    writer.finish(
        columns, {}, {"a", "b"}, R"({"x":1})", "0123456789abcdef",
        nlohmann::json{{"shard_index", 0}, {"shard_count", 1}, {"count_sources", 6}, {"count_ok_files", 6}});
  };
  detail::assemble_cache(path, header, {"write", ProgressStyle::kQuiet, 1}, read, finish, read_mask);
}

}  // namespace medload::loader::test
