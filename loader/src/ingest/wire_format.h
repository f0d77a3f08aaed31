#pragma once
// The messages between a scan and its decoder workers: the one place both sides call to write
// and read them, and where what comes from a worker is checked before the scan trusts it.
//
// Framing, both ways: messages of [u64 length][bytes] on the worker's socket. A Request is one
// message (the file and the slot of shared memory to use); a Reply is one message (the outcome
// and the frames' headers). The frames' payloads (a stage's output, or else the decoded pixels)
// follow in the memory region the worker shares with the scan when they fit their slot
// (Reply::shared), back to back, or else as one message per frame. The shared region saves the
// kernel's two copies and the many system calls of moving megabytes through a socket. The scan
// may queue a second request before it has read the first reply, so the worker decodes the next
// file while the scan works on this one; the region has one slot per queued request, and a slot
// is written only between its request and its reply, so the scan never reads a slot the worker
// is writing.
//
// The messages are JSON inside the frame (text that is not UTF-8, a file name, travels
// percent-escaped); a header field is never a free-form object.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/ingest/staged_frame.h"
#include "medload/loader/ingest/validation_options.h"

namespace medload::loader::detail::wire {

/// Files a worker may have queued at once, and so the slots of its shared region.
constexpr std::size_t kSlots = 2;
/// One slot of the shared region: a 4096 x 4096 16-bit image, or several frames of a smaller one.
/// Only the pages a reply touches are ever backed by memory.
constexpr std::size_t kSlotBytes = std::size_t{32} << 20;
/// One worker's shared region: kSlots slots, slot k at k * kSlotBytes.
constexpr std::size_t kRegionBytes = kSlots * kSlotBytes;
/// The largest request or reply header read (a reply carries each frame's VOI table: a 500-frame
/// DICOM with 64 K-entry tables is a few hundred MB of text).
constexpr std::uint64_t kMaxHeaderBytes = std::uint64_t{1} << 30;
/// The largest stage output a frame may carry (a decoded frame's size is fixed by its shape).
constexpr std::uint64_t kMaxStagedBytes = std::uint64_t{1} << 32;

/// What a worker sent is no well-formed reply (unparseable, a field missing, of the wrong type or
/// out of range, a length past the limits, a payload of another size than its header says). The
/// scan treats the worker as broken: the file is `decoder_crash`, never a crash of the scan.
class WireError : public WorkerError {
 public:
  using WorkerError::WorkerError;
};

/// A file to decode, scan -> worker.
struct Request {
  SourceFile source;     ///< path, report_path, info and outside_root travel (not the warnings)
  std::size_t slot = 0;  ///< where in the shared region the payloads go, < kSlots
};

/// An exception a stage threw in the worker, as it crosses to the scan: its medload type and
/// its message.
struct StageFailure {
  enum class Kind : std::uint8_t { kConfig, kFormat, kIo, kOther };
  Kind kind = Kind::kOther;
  std::string what;

  static StageFailure from(const std::exception& e);
  /// Throws it as ConfigError, FormatError or IoError, anything else as a WorkerError.
  [[noreturn]] void rethrow() const;
};

/// One frame of a reply: its description (pixels empty), its stage output's description (bytes
/// empty) when the worker ran a stage, and how many payload bytes follow for it.
struct FrameHeader {
  DecodedImage frame;
  std::optional<StagedFrame> staged;
  std::uint64_t bytes = 0;
};

/// A worker's answer for one file, worker -> scan.
struct Reply {
  FileOutcome outcome;  ///< path, ok, reason, detail, warnings, sizes, format and hashes travel
  std::vector<FrameHeader> frames;
  bool shared = false;  ///< the payloads are in the request's slot, else one message each
  std::optional<StageFailure> stage_failure;  ///< the stage threw (frames then empty)
};

/// Bytes of `staged`'s mask labels in its payload (0 unless its mask is valid). A stage output's
/// payload is its image's bytes followed by its mask's labels (uint16, native order).
std::uint64_t mask_payload_bytes(const StagedFrame& staged);
/// Worker side: moves `staged`'s mask labels to the end of its bytes.
void append_mask_payload(StagedFrame& staged);
/// Scan side: moves the mask labels off the end of `staged`'s bytes (a reply decode_reply checked).
void take_mask_payload(StagedFrame& staged);

std::string encode(const Request& request);
/// Throws nlohmann::json::exception on a malformed request (the worker answers for the file).
Request decode_request(const std::vector<char>& message);

std::string encode(const Reply& reply);
/// The reply in `message`, checked against what the scan asked for: enums in range, frame shapes
/// within `options` and payload sizes that match them (stage outputs up to kMaxStagedBytes).
/// Throws WireError naming what is wrong.
Reply decode_reply(const std::vector<char>& message, const ValidationOptions& options);

using Deadline = std::chrono::steady_clock::time_point;
/// No time limit (a worker waiting for its next request).
constexpr Deadline kNoDeadline = Deadline::max();

enum class ReadStatus { kOk, kClosed, kTimedOut };

/// Sends one framed message; false when the other end is gone.
bool send_message(int fd, const void* data, std::size_t size);
inline bool send_message(int fd, const std::string& text) {
  return send_message(fd, text.data(), text.size());
}

/// Reads one framed header message (a request or reply) into `out`, waiting at most until
/// `deadline`. Throws WireError when it announces more than kMaxHeaderBytes.
ReadStatus read_header(int fd, std::vector<char>& out, Deadline deadline);
/// Reads one framed payload message straight into `out` (a frame's own buffer), which must
/// announce exactly `expected` bytes; throws WireError otherwise.
ReadStatus read_payload(int fd, std::vector<std::uint8_t>& out, std::uint64_t expected, Deadline deadline);

}  // namespace medload::loader::detail::wire
