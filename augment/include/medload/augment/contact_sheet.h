#pragma once
/// The preview contact sheet (`medload preview`): rows are samples, columns are augmented draws,
/// for a person to check that nothing anatomically wrong comes out of an augmentation config.

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/augment/augmenter.h"
#include "medload/augment/target_hook.h"

namespace medload::augment {

/// How the sheet is laid out.
struct ContactSheetOptions {
  /// Augmented columns per sample; column k is the sample's draw in epoch k. Range 1..32.
  int draws = 4;
  /// Side of one tile in pixels (images are letterboxed into it). Range 32..1024.
  int tile = 192;
  /// A first column with the sample as stored (unaugmented).
  bool show_original = true;
  /// A caption under each augmented tile with the main drawn parameters.
  bool show_params = true;
};

/// The largest sheet drawn, in pixels (about 800 MB of BGR): 256 samples of 1024-pixel tiles with
/// 32 draws would be 27 GB. Past it make_contact_sheet throws ConfigError before allocating.
inline constexpr std::int64_t kMaxContactSheetPixels = std::int64_t{1} << 28;

/// Draws the sheet. `images`: uint8 `[N,C,H,W]` (C = 1 or 3) or `[N,H,W]`, CPU; `sample_ids`
/// (N ids: the augmentation of row i is keyed by sample_ids[i]) and `row_labels` (N texts, e.g.
/// "#12 pneumonia") label the rows; column headers name the epoch. Returns uint8 `[H,W,3]` BGR.
/// Throws ConfigError on bad shapes, counts or options, or a sheet past kMaxContactSheetPixels.
torch::Tensor make_contact_sheet(const torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                 const std::vector<std::string>& row_labels, Augmenter& augmenter,
                                 const ContactSheetOptions& options = {});

/// The same sheet with the samples' targets drawn over every tile, each class in its
/// target_colour: a mask's class boundaries as one-pixel outlines (the pixels of a class next to
/// another id, at the tile's resolution), boxes as rectangles, landmarks as crosses. `targets`
/// holds N samples in the serving layout (TargetTensors; undefined tensors are not drawn; CPU),
/// and the augmented columns move them with the draw (warp_targets, with the augmenter's
/// laterality). Throws as above and as warp_targets.
torch::Tensor make_contact_sheet(const torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                 const std::vector<std::string>& row_labels, Augmenter& augmenter,
                                 const TargetTensors& targets, const ContactSheetOptions& options = {});

/// The BGR colour target class `class_id` is drawn in (ids >= 1; a palette of 12 saturated
/// colours, repeating).
std::array<std::uint8_t, 3> target_colour(std::int64_t class_id);

/// Writes a uint8 `[H,W,3]` BGR (or `[H,W]` gray) image as PNG. Throws IoError naming the path.
void write_png(const torch::Tensor& image, const std::string& path);

}  // namespace medload::augment
