#pragma once
// Pieces shared by decode_file, the decoder worker processes and the Scanner.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "medload/core/file_descriptor.h"
#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/scanner.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/ingest/validation_options.h"
#include "wire_format.h"

namespace medload::loader::detail {

/// Why read_file_bytes read nothing: the outcome's reason and a detail for a person.
struct ReadFailure {
  Reason reason;
  std::string detail;
};

/// Reads a whole regular file of at most `max_bytes`. Opens it non-blocking and checks that it is
/// a regular file before reading a byte, so a FIFO, socket or device listed as an input never
/// blocks (`unreadable`); a larger file is `too_large` without being read.
std::optional<ReadFailure> read_file_bytes(const std::string& path, std::uint64_t max_bytes,
                                           std::vector<std::uint8_t>& bytes);

/// What kind of content bytes that are no image look like ("text", "a PDF document", ...), for
/// a report that must never copy a file's content.
std::string_view describe_content(const std::uint8_t* data, std::size_t size);

/// too_small, blank, and the pixel hash of an ok file's frames (frames cleared when rejected).
void validate_frames(const ValidationOptions& options, FileOutcome& outcome,
                     std::vector<DecodedImage>& frames);

/// Runs `stage` on each of `frames` (an ok file's), putting its outputs in `staged` and letting go
/// of the frames' pixels. Exceptions propagate.
void run_stage(const FrameStage& stage, std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged);

struct SpawnRequest;
struct SpawnReply;

/// Closes every descriptor the spawner or a worker inherited except stdin, stdout, stderr and
/// `keep` (its socket). The process the spawner is forked from may hold other workers' sockets
/// (another scan running on another thread); holding such a socket open here would keep that scan
/// from ever reading end of file from its worker, so a crash would look like a hang until
/// validate.file_timeout_s.
void close_inherited_descriptors(int keep);

/// The body of a decoder worker process (worker_main.cpp): answers the requests on socket `fd`
/// until the scan closes it, decoding into `region` (its shared memory, or nullptr) and running
/// `stage` (when not null) on what it decodes, under the resource limits of `options`. Never
/// returns and never throws: it ends with _exit.
[[noreturn]] void worker_main(int fd, const ValidationOptions& options, std::uint8_t* region,
                              const FrameStage* stage) noexcept;

/// Forks the decoder workers from a small single-threaded process of its own, itself forked when
/// a scan starts, before the scan's threads run. Forking the scanning process once its threads
/// run is unsafe: a lock another thread holds at that instant stays locked forever in the child
/// (AddressSanitizer's allocator, which unlike glibc's malloc is not locked around fork(), or any
/// library's), and a replacement worker started after a crash could hang on it. The spawner also
/// owns the memory each worker shares with the scan: one region per worker, reused by its
/// replacements. spawn() and reap() may be called from any thread.
class WorkerSpawner {
 public:
  struct Worker {
    pid_t pid;
    int fd;  // the scan's end of the worker's socket (close-on-exec)
  };

  /// Starts the spawner, with a shared region for each of `workers` workers. Its workers run
  /// `stage` (when not null; it must stay alive until the spawner is destroyed) on what they decode.
  WorkerSpawner(const ValidationOptions& options, std::size_t workers, const FrameStage* stage = nullptr);
  ~WorkerSpawner();
  WorkerSpawner(const WorkerSpawner&) = delete;
  WorkerSpawner& operator=(const WorkerSpawner&) = delete;

  /// A fresh worker that decodes into region(index).
  Worker spawn(std::size_t index);
  /// Waits for worker `pid` to end (killing it first when `kill`, or when it has not ended a few
  /// seconds after its socket closed) and returns its wait status; nullopt when it was not found.
  std::optional<int> reap(pid_t pid, bool kill);
  /// Worker `index`'s shared region; nullptr when the memory could not be mapped (the pixels then
  /// go through the socket).
  std::uint8_t* region(std::size_t index) const;

 private:
  // Sends `request` and waits for the reply; a worker's socket lands in `*fd` when there is one.
  SpawnReply call(const SpawnRequest& request, int* fd);

  std::mutex mutex_;  // one request at a time on the control socket
  pid_t pid_ = -1;
  int fd_ = -1;
  std::uint8_t* shared_ = nullptr;
  std::size_t workers_ = 0;
};

/// A worker process that decodes files one at a time, so that a decoder which aborts, crashes
/// or hangs takes down only this worker. The parent side is used by one thread at a time.
///
/// Up to kSlots files may be queued: submit() the next file before collect()ing the current one,
/// and the worker decodes it while the caller works on the current one. Results come back in
/// submission order.
class DecodeWorker {
 public:
  static constexpr std::size_t kSlots = wire::kSlots;

  /// A worker started by `spawner` (which must outlive it), decoding into its region `index`.
  DecodeWorker(const ValidationOptions& options, WorkerSpawner& spawner, std::size_t index);
  ~DecodeWorker();
  DecodeWorker(const DecodeWorker&) = delete;
  DecodeWorker& operator=(const DecodeWorker&) = delete;

  /// Queues `source` (which must outlive its collect()); at most kSlots files wait at a time.
  void submit(const SourceFile& source);
  /// decode_file's result for the oldest submitted file, decoded in the worker. When the worker
  /// dies or times out on it, the file is `decoder_crash` (with the signal or the timeout in the
  /// detail), a fresh worker is started, and the files queued behind it are handed to that one.
  /// With a stage, the frames come without pixels and their stage outputs land in `staged`; an
  /// exception the stage threw in the worker is rethrown here.
  FileOutcome collect(std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged);

 private:
  struct Queued {
    const SourceFile* source;
    std::size_t slot;  // where in the shared region the worker puts this file's pixels
    bool sent;
  };

  // A reply read whole: its outcome, and its frames with their payloads in place.
  struct Received {
    wire::Reply reply;
    std::vector<DecodedImage> frames;
    std::vector<StagedFrame> staged;
  };

  void start();
  void stop();
  void send_request(Queued& queued);
  // Reads the reply for `head` and its payloads into `received`. Throws wire::WireError when what
  // the worker sent is no well-formed reply.
  wire::ReadStatus receive(const Queued& head, wire::Deadline deadline, Received& received);
  // The outcome for a file whose worker died, hung (`status`) or sent a malformed reply
  // (`malformed` says how): decoder_crash; the worker is replaced and the files queued behind
  // the head are handed to the new one.
  FileOutcome replace_worker(const SourceFile& source, wire::ReadStatus status, const std::string& malformed);

  ValidationOptions options_;
  WorkerSpawner& spawner_;
  std::size_t index_;
  pid_t pid_ = -1;
  core::FileDescriptor fd_;  // the socket to the worker
  // The region shared with the worker: kSlots slots, one per queued file, for a reply's pixels
  // when they fit.
  std::uint8_t* shared_ = nullptr;
  std::deque<Queued> queue_;
  std::size_t next_slot_ = 0;
  std::chrono::steady_clock::time_point head_started_{};
};

}  // namespace medload::loader::detail
