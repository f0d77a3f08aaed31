#pragma once
// Pieces shared by decode_file, the forked workers and the Scanner.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/ingest/validation_options.h"

namespace medload::loader::detail {

/// Reads a whole file; on failure returns false with the reason in `error`.
bool read_file_bytes(const std::string& path, std::vector<std::uint8_t>& bytes, std::string& error);

/// too_small, blank, and the pixel hash of an ok file's frames (frames cleared when rejected).
void validate_frames(const ValidationOptions& options, FileOutcome& outcome,
                     std::vector<DecodedImage>& frames);

/// A forked process that decodes files one at a time, so that a decoder which aborts, crashes
/// or hangs takes down only this worker. The parent side is used by one thread at a time.
class DecodeWorker {
 public:
  explicit DecodeWorker(const ValidationOptions& options);
  ~DecodeWorker();
  DecodeWorker(const DecodeWorker&) = delete;
  DecodeWorker& operator=(const DecodeWorker&) = delete;

  /// decode_file in the worker. When the worker dies or times out, the file is `decoder_crash`
  /// (with the signal or the timeout in the detail) and a fresh worker is started.
  FileOutcome decode(const SourceFile& source, std::vector<DecodedImage>& frames);

 private:
  void start();
  void stop();

  ValidationOptions options_;
  pid_t pid_ = -1;
  int fd_ = -1;
  // Memory shared with the worker (mapped before the fork): a reply's pixels when they fit.
  std::uint8_t* shared_ = nullptr;
};

}  // namespace medload::loader::detail
