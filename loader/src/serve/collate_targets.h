#pragma once
// Collating targets into a Batch: the one home of the padded layout (loader.h, Batch) that both
// medload's Loader and CollateBatch (the torch::data path) produce. Defined in loader.cpp.

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/serve/loader.h"

namespace medload::loader::detail {

// Writes `count` uint16 class ids at `out` as int64 (as_uint8 false) or uint8. uint8: throws
// FormatError naming the first id above 255 (the caller adds the sample).
void convert_mask(const std::uint16_t* in, std::size_t count, void* out, bool as_uint8);

// Sets batch.boxes float32 [B,M,5] (x0, y0, x1, y1, label; padding rows (0, 0, 0, 0, -1)),
// box_counts [B], box_valid [B] from each sample's boxes and state (boxes.size() == states.size()
// == B), allocated with `options` (device, pinning).
void collate_boxes(const std::vector<std::vector<Box>>& boxes, const std::vector<TargetState>& states,
                   const torch::TensorOptions& options, Batch& batch);

// The same for landmarks: batch.landmarks [B,L,3] (x, y, label; padding (0, 0, -1)),
// landmark_counts, landmark_valid.
void collate_landmarks(const std::vector<std::vector<Landmark>>& landmarks,
                       const std::vector<TargetState>& states, const torch::TensorOptions& options,
                       Batch& batch);

}  // namespace medload::loader::detail
