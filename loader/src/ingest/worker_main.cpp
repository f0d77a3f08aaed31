// What runs inside a decoder worker process: read a request, decode the file, run the stage on
// its frames, send the reply, and go on with the next request until the scan closes the socket.
// The worker never lets an exception leave and ends with _exit (see worker_main).

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>

#include <opencv2/core/utility.hpp>

#include "decoders.h"
#include "medload/core/process_limits.h"
#include "medload/loader/ingest/scanner.h"
#include "scan_internal.h"
#include "wire_format.h"

namespace medload::loader {

namespace detail {

namespace {

PreDecodeHook& hook_storage() {
  static PreDecodeHook hook;
  return hook;
}

// Limits a decoder worker lives under, so that a decompression bomb or a decoder stuck in a loop
// costs one file, never the machine: how much its address space may grow over what it inherits,
// and no core files.
void limit_worker_resources(const ValidationOptions& options) {
  core::disable_core_files();
  if (options.worker_memory_mb > 0) {
    core::cap_address_space_growth(static_cast<std::uint64_t>(options.worker_memory_mb) << 20);
  }
}

// Runs `stage` on `frames` with every OpenCV parallel loop inside it run serially in this
// thread. A worker is forked from a process whose OpenCV thread pool (TBB on Debian) may already
// have run: the pool's threads do not exist here, and a lock one of them held at the fork would
// stay locked. OpenCV runs a parallel_for_ nested in another one serially, in the calling thread,
// and a one-iteration parallel_for_ runs its body directly, so the stage never enters the pool.
// (With Debian's TBB, a loop in a forked child also ran serially without this; the guard makes
// the worker independent of that, and of the lock hazard, which no test can provoke reliably.)
void run_stage_serially(const FrameStage& stage, std::vector<DecodedImage>& frames,
                        std::vector<StagedFrame>& staged) {
  std::exception_ptr failure;
  cv::parallel_for_(cv::Range(0, 1), [&](const cv::Range&) {
    try {
      run_stage(stage, frames, staged);
    } catch (...) {
      failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
}

// Runs `stage` on an ok file's frames. An exception it throws becomes the reply's stage failure,
// and the file's frames are dropped.
void stage_frames(const FrameStage& stage, std::vector<DecodedImage>& frames,
                  std::vector<StagedFrame>& staged, wire::Reply& reply) {
  try {
    run_stage_serially(stage, frames, staged);
  } catch (const std::exception& e) {
    reply.stage_failure = wire::StageFailure::from(e);
    frames.clear();
    staged.clear();
  }
}

// Moves each frame into the reply's headers and its payload (the stage's output, with its mask's
// labels after it, when there is one; else its pixels) into `payloads`: the pixels are moved,
// never copied. A frame's targets in original coordinates stay here: the stage's travel.
void fill_frames(std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged, wire::Reply& reply,
                 std::vector<std::vector<std::uint8_t>>& payloads) {
  for (std::size_t k = 0; k < frames.size(); ++k) {
    wire::FrameHeader header;
    if (!staged.empty()) wire::append_mask_payload(staged[k]);
    payloads.push_back(staged.empty() ? std::move(frames[k].pixels) : std::move(staged[k].bytes));
    header.bytes = payloads.back().size();
    header.frame = std::move(frames[k]);
    if (!staged.empty()) header.staged = std::move(staged[k]);
    reply.frames.push_back(std::move(header));
  }
}

// Sends `reply` with its payloads: in `slot` of the shared region when they fit, else one
// socket message each after the reply. False when the scan is gone.
bool send_reply(int fd, wire::Reply& reply, const std::vector<std::vector<std::uint8_t>>& payloads,
                std::uint8_t* slot) {
  std::size_t total = 0;
  for (const auto& bytes : payloads) total += bytes.size();
  reply.shared = slot != nullptr && total <= wire::kSlotBytes;
  if (reply.shared) {
    std::size_t offset = 0;
    for (const auto& bytes : payloads) {
      if (bytes.empty()) continue;  // an empty vector's data() may be null
      std::memcpy(slot + offset, bytes.data(), bytes.size());
      offset += bytes.size();
    }
  }
  bool sent = wire::send_message(fd, wire::encode(reply));
  if (!reply.shared) {
    for (const auto& bytes : payloads) sent = sent && wire::send_message(fd, bytes.data(), bytes.size());
  }
  return sent;
}

// Decodes one requested file (and runs the stage on it) and sends the reply. False when the
// scan is gone. Throws what building the reply throws; the caller answers for the file.
bool serve_request(int fd, const wire::Request& request, const ValidationOptions& options,
                   std::uint8_t* region, const FrameStage* stage) {
  if (const auto& hook = hook_storage()) hook(request.source.path);
  std::vector<DecodedImage> frames;
  wire::Reply reply;
  reply.outcome = decode_file(request.source, options, frames);
  std::vector<StagedFrame> staged;
  if (stage != nullptr && *stage && !frames.empty()) stage_frames(*stage, frames, staged, reply);
  std::vector<std::vector<std::uint8_t>> payloads;
  fill_frames(frames, staged, reply, payloads);
  return send_reply(fd, reply, payloads,
                    region == nullptr ? nullptr : region + request.slot * wire::kSlotBytes);
}

// The reply for a file the worker could not answer for normally (reading the request or building
// its reply threw): the file is `decoder_crash` with what happened, and the worker goes on.
bool send_failure(int fd, const std::string& report_path, const std::string& what) {
  wire::Reply reply;
  reply.outcome.path = report_path;
  reject(reply.outcome, Reason::kDecoderCrash,
         "the decoder worker failed on this file: " + what + "; the scan went on");
  return wire::send_message(fd, wire::encode(reply));
}

// Answers every request until the scan closes the socket (or is gone).
void serve_requests(int fd, const ValidationOptions& options, std::uint8_t* region, const FrameStage* stage) {
  std::vector<char> message;
  while (wire::read_header(fd, message, wire::kNoDeadline) == wire::ReadStatus::kOk) {
    // Each file gets its own CPU allowance; past it SIGXCPU ends the worker and the file is
    // `decoder_crash`.
    if (options.worker_cpu_s > 0) core::cap_cpu_seconds(static_cast<unsigned>(options.worker_cpu_s));
    std::string report_path;  // known once the request is read
    bool sent = false;
    try {
      const wire::Request request = wire::decode_request(message);
      report_path = request.source.report_path;
      sent = serve_request(fd, request, options, region, stage);
    } catch (const std::exception& e) {
      sent = send_failure(fd, report_path, e.what());
    } catch (...) {
      sent = send_failure(fd, report_path, "an exception that is not a std::exception");
    }
    if (!sent) return;
  }
}

}  // namespace

// A worker never lets an exception leave: it runs on a copy of the stack of the process it was
// forked from, and unwinding into that copy would run the parent's code (its error messages, its
// exit) in the worker. Every file gets an answer; anything worse ends the worker with _exit.
[[noreturn]] void worker_main(int fd, const ValidationOptions& options, std::uint8_t* region,
                              const FrameStage* stage) noexcept {
  try {
    close_inherited_descriptors(fd);
    limit_worker_resources(options);
#ifdef M_MMAP_THRESHOLD
    // This process only decodes, one file after another: keep freed image buffers (up to glibc's
    // 32 MiB limit) in the heap for the next file instead of unmapping them. Otherwise the kernel
    // zeroes fresh pages for every image: 12 % of the CPU profile of a 2048 px 16-bit PNG build.
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
    serve_requests(fd, options, region, stage);
  } catch (...) {
    ::_exit(70);  // EX_SOFTWARE: the scan reports the file it was on with this exit code
  }
  ::_exit(0);
}

void set_pre_decode_hook(PreDecodeHook hook) { hook_storage() = std::move(hook); }

}  // namespace detail

}  // namespace medload::loader
