#pragma once
// Checking an ok file's mask, boxes and landmarks against its decoded frames (annotation.h has the
// rule for bad targets). Runs where the file was decoded: in its decoder worker, so that a
// hostile mask file costs that worker, like a hostile image.

#include <vector>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/ingest/validation_options.h"

namespace medload::loader::detail {

/// Decodes `source`'s mask (within `options`' limits), checks it, the boxes and the landmarks
/// against `frames` (an ok file's, not empty) and sets each frame's targets and
/// `outcome.targets`, with a warning for each kind that is invalid ("mask_invalid",
/// "boxes_invalid", "landmarks_invalid") and "boxes_clipped" when boxes were clipped. Never
/// throws for bad input and never rejects the file.
void check_targets(const SourceFile& source, const ValidationOptions& options, FileOutcome& outcome,
                   std::vector<DecodedImage>& frames);

}  // namespace medload::loader::detail
