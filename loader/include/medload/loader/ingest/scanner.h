#pragma once
/// Decodes and validates input files in parallel, each in a crash-contained worker, and reports
/// one outcome per file.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/ingest/staged_frame.h"
#include "medload/loader/ingest/validation_options.h"

namespace medload {
class Progress;
}

namespace medload::loader {

/// Receives every frame of every file that ends `ok`. Called concurrently from the scan's
/// threads, in any order; never for a rejected or duplicate file. `file_index` indexes the
/// `sources` given to Scanner::scan.
using OnImage = std::function<void(std::size_t file_index, DecodedImage&& frame)>;

/// Work on every frame of an ok file, run where the file was decoded: inside its decoder worker
/// (Isolation::kProcess), or on the scan's thread (kInProcess). In a worker, only the stage's
/// output crosses back to the scanning process (a 256 px image instead of a 2048 px one), and a
/// crash in the stage is contained like a decoder's: the file is `decoder_crash`. It runs single-
/// threaded there: OpenCV's parallel loops run serially in the calling thread, since a forked
/// process must not use the thread pool of the process it was forked from. It must not touch
/// state of the scanning process: in a worker it works on a copy made at the fork. An exception
/// it throws stops the scan and is rethrown by scan_with_stage: in process, as it was thrown;
/// from a worker, a ConfigError, FormatError or IoError as itself with its message, anything
/// else derived from std::exception as a WorkerError with its message.
using FrameStage = std::function<StagedFrame(const DecodedImage& frame)>;

/// Receives every frame of every `ok` file with its stage's output, as OnImage does; `frame`
/// keeps its description (size, type, metadata, hashes) but not its pixels (empty). Without a
/// stage (an empty FrameStage), the frame keeps its pixels and `staged` is empty.
using OnStagedImage = std::function<void(std::size_t file_index, DecodedImage&& frame, StagedFrame&& staged)>;

/// A scan over many files: decoding and validation on `threads` workers (forked processes by
/// default, see Isolation), outcomes in input order. Duplicates are decided in input order, so
/// the first copy is kept whatever the thread timing.
class Scanner {
 public:
  /// Throws ConfigError when `options` are out of range.
  explicit Scanner(ValidationOptions options);

  /// Scans `sources`, calling `on_image` for every frame of every `ok` file and advancing
  /// `progress` (when given) once per file. `on_image` runs on the scan's threads, several at
  /// once, for a file once its outcome is final (after every earlier file's); files may reach it
  /// out of order across threads. An exception thrown by `on_image` stops the scan and is
  /// rethrown here. Bad files never throw: they are outcomes in the report.
  ScanReport scan(const std::vector<SourceFile>& sources, const OnImage& on_image = {},
                  Progress* progress = nullptr) const;

  /// As scan, with `stage` run on every frame of every ok file where it was decoded (see
  /// FrameStage); `on_image` receives each frame with the stage's output. The cache build runs
  /// its preprocessing this way.
  ScanReport scan_with_stage(const std::vector<SourceFile>& sources, const FrameStage& stage,
                             const OnStagedImage& on_image, Progress* progress = nullptr) const;

  const ValidationOptions& options() const noexcept { return options_; }

 private:
  ValidationOptions options_;
};

/// Decodes and validates one file in the calling process (no duplicate check, no isolation).
/// Frames of an ok file are appended to `frames`. Never throws for bad input.
FileOutcome decode_file(const SourceFile& source, const ValidationOptions& options,
                        std::vector<DecodedImage>& frames);

namespace detail {
/// Called with each file's path just before it is decoded inside a worker process.
using PreDecodeHook = std::function<void(const std::string& path)>;
/// Test seam for crash containment: tests install a hook that aborts or hangs on chosen files,
/// to prove that the scan survives a decoder that does. Install it before Scanner::scan (the
/// workers are forked with it); an empty function removes it. Not for production use.
void set_pre_decode_hook(PreDecodeHook hook);
}  // namespace detail

}  // namespace medload::loader
