#pragma once
// Pieces shared by decode_file, the forked workers and the Scanner.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
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
///
/// Up to kSlots files may be queued: submit() the next file before collect()ing the current one,
/// and the worker decodes it while the caller works on the current one. Results come back in
/// submission order.
class DecodeWorker {
 public:
  static constexpr std::size_t kSlots = 2;

  explicit DecodeWorker(const ValidationOptions& options);
  ~DecodeWorker();
  DecodeWorker(const DecodeWorker&) = delete;
  DecodeWorker& operator=(const DecodeWorker&) = delete;

  /// Queues `source` (which must outlive its collect()); at most kSlots files wait at a time.
  void submit(const SourceFile& source);
  /// decode_file's result for the oldest submitted file, decoded in the worker. When the worker
  /// dies or times out on it, the file is `decoder_crash` (with the signal or the timeout in the
  /// detail), a fresh worker is started, and the files queued behind it are handed to that one.
  FileOutcome collect(std::vector<DecodedImage>& frames);

 private:
  struct Queued {
    const SourceFile* source;
    std::size_t slot;  // where in the shared region the worker puts this file's pixels
    bool sent;
  };

  void start();
  void stop();
  void send_request(Queued& queued);

  ValidationOptions options_;
  pid_t pid_ = -1;
  int fd_ = -1;
  // Memory shared with the worker (mapped before the fork): kSlots slots, one per queued file,
  // for a reply's pixels when they fit.
  std::uint8_t* shared_ = nullptr;
  std::deque<Queued> queue_;
  std::size_t next_slot_ = 0;
  std::chrono::steady_clock::time_point head_started_{};
};

}  // namespace medload::loader::detail
