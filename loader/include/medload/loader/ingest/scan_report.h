#pragma once
/// The outcome of every input file (DESIGN.md §2) and the JSON scan report.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/annotation.h"

namespace medload::loader {

/// Why a file was rejected.
enum class Reason : std::uint8_t {
  kEmptyFile,     ///< "empty_file": zero bytes
  kUnreadable,    ///< "unreadable": missing, unreadable, or not a format medload decodes
  kTruncated,     ///< "truncated": the pixel data is shorter than the header declares
  kUnsupported,   ///< "unsupported": a valid file without an image (DICOM SR, RT plan, DICOMDIR)
  kBlank,         ///< "blank": constant or near-constant pixels
  kTooSmall,      ///< "too_small": a side below ValidationOptions::min_side
  kTooLarge,      ///< "too_large": more pixels than ValidationOptions::max_pixels (from the header)
  kDuplicate,     ///< "duplicate": the same decoded pixels as an earlier file
  kDecoderCrash,  ///< "decoder_crash": the decoder aborted, crashed or timed out
  kOutsideRoot,   ///< "outside_root": a manifest path that leaves the manifest's folder (not read)
};

/// The report's code for `reason`, e.g. "too_large".
std::string_view reason_code(Reason reason);
/// The reason for a code; std::nullopt for an unknown code.
std::optional<Reason> reason_from_code(std::string_view code);

/// The outcome of one input file.
struct FileOutcome {
  std::string path;                   ///< SourceFile::report_path (valid UTF-8)
  std::string path_bytes;             ///< SourceFile::path_bytes: set only when the name is not UTF-8
  bool ok = false;                    ///< true: usable; false: rejected for `reason`
  std::optional<Reason> reason;       ///< set when rejected
  std::string detail;                 ///< for a person: why, with the numbers
  std::vector<std::string> warnings;  ///< e.g. "extension_mismatch", "path_not_utf8" (ingest.md)
  int frames = 0;                     ///< frames decoded (a multi-frame DICOM is one entry)
  int height = 0;                     ///< rows of the (first) frame, when known
  int width = 0;                      ///< columns
  int bits_stored = 0;                ///< bits per sample in the source, when known
  std::string format;                 ///< "png", "jpeg", "tiff", "bmp", "dicom", or "" when unknown
  std::string duplicate_of;           ///< for a duplicate: the report path of the first copy
  std::uint64_t content_hash = 0;     ///< XXH64 of the file's bytes (0 when unreadable)
  std::uint64_t pixel_hash = 0;       ///< XXH64 of the decoded frames (0 when not decoded)
  /// What the check of the file's mask, boxes and landmarks found; unset when the source gave none.
  std::optional<TargetReport> targets;

  /// {"path", "path_bytes" (when the name is not UTF-8), "status": "ok"|"rejected",
  ///  "reason": null|code, "detail", "frames", "format", "warnings" (when any), "duplicate_of"
  ///  (for duplicates), "content_hash" (hex), "targets" (when the source gave any: TargetReport::to_json)}
  nlohmann::json to_json() const;
};

/// Outcomes of a whole scan, in input order.
struct ScanReport {
  std::vector<FileOutcome> files;
  double seconds = 0;  ///< wall time of the scan

  std::size_t ok_count() const;
  std::size_t rejected_count() const;
  /// Rejected files per reason code.
  std::map<std::string, std::size_t> count_by_reason() const;
  /// Files with each warning.
  std::map<std::string, std::size_t> count_by_warning() const;
  /// The report of DESIGN.md: {"files": [...], "counts": {"total", "ok", "rejected",
  /// "by_reason": {code: n}, "warnings": {code: n}}, "seconds": s}.
  nlohmann::json to_json() const;
  /// A short human summary: counts by reason and the first few rejected files.
  std::string summary(std::size_t examples = 5) const;
};

}  // namespace medload::loader
