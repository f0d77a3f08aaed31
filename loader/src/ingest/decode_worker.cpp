// The scan's side of a decoder worker: queue files, collect their replies, and when the worker
// crashes, hangs or answers nonsense, report the file `decoder_crash` and start a fresh one.

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "decoders.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "scan_internal.h"

namespace medload::loader::detail {

namespace {

std::string describe_signal(int sig) {
  const char* name = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (name ? std::string(", ") + name : std::string());
}

// What became of a worker whose socket closed, from its wait status (nullopt: not found).
std::string describe_end(const std::optional<int>& wstatus) {
  if (wstatus && WIFSIGNALED(*wstatus)) {
    return "the decoder crashed on this file (" + describe_signal(WTERMSIG(*wstatus)) + "); the scan went on";
  }
  if (wstatus && WIFEXITED(*wstatus)) {
    return "the decoder's worker process exited with code " + std::to_string(WEXITSTATUS(*wstatus)) +
           " on this file; the scan went on";
  }
  return "the decoder's worker process stopped answering on this file";
}

}  // namespace

DecodeWorker::DecodeWorker(const ValidationOptions& options, WorkerSpawner& spawner, std::size_t index)
    : options_(options), spawner_(spawner), index_(index), shared_(spawner.region(index)) {
  start();
}

DecodeWorker::~DecodeWorker() { stop(); }

void DecodeWorker::start() {
  const WorkerSpawner::Worker worker = spawner_.spawn(index_);
  pid_ = worker.pid;
  fd_.reset(worker.fd);
}

void DecodeWorker::stop() {
  fd_.reset();
  if (pid_ > 0) {
    try {
      spawner_.reap(pid_, true);
    } catch (const WorkerError&) {
      // The spawner is gone, and its workers with it (their parent-death signal).
    }
  }
  pid_ = -1;
}

void DecodeWorker::send_request(Queued& queued) {
  // A failed send means the worker is gone; collect() finds that out and reports it.
  queued.sent = wire::send_message(fd_.get(), wire::encode(wire::Request{*queued.source, queued.slot}));
}

void DecodeWorker::submit(const SourceFile& source) {
  if (queue_.size() >= kSlots) {
    throw WorkerError("a decoder worker takes at most " + std::to_string(kSlots) +
                      " files at a time; collect one before submitting " + source.report_path);
  }
  if (queue_.empty()) head_started_ = std::chrono::steady_clock::now();
  Queued queued{&source, next_slot_++ % kSlots, false};
  send_request(queued);
  queue_.push_back(queued);
}

wire::ReadStatus DecodeWorker::receive(const Queued& head, wire::Deadline deadline, Received& received) {
  std::vector<char> message;
  wire::ReadStatus status = wire::read_header(fd_.get(), message, deadline);
  if (status != wire::ReadStatus::kOk) return status;
  received.reply = wire::decode_reply(message, options_);
  const std::uint8_t* const slot = shared_ == nullptr ? nullptr : shared_ + head.slot * wire::kSlotBytes;
  if (received.reply.shared && slot == nullptr) {
    throw wire::WireError("a decoder worker's reply is in shared memory, but its worker has none");
  }
  std::size_t offset = 0;  // decode_reply checked that the shared payloads fit the slot
  for (wire::FrameHeader& header : received.reply.frames) {
    // The payload lands in its own buffer: the stage's output when there is one, else the pixels.
    StagedFrame output = header.staged ? std::move(*header.staged) : StagedFrame{};
    std::vector<std::uint8_t>& payload = header.staged ? output.bytes : header.frame.pixels;
    if (received.reply.shared) {
      payload.assign(slot + offset, slot + offset + header.bytes);
      offset += header.bytes;
    } else {
      status = wire::read_payload(fd_.get(), payload, header.bytes, deadline);
      if (status != wire::ReadStatus::kOk) return status;
    }
    received.frames.push_back(std::move(header.frame));
    if (header.staged) {
      wire::take_mask_payload(output);
      received.staged.push_back(std::move(output));
    }
  }
  return wire::ReadStatus::kOk;
}

FileOutcome DecodeWorker::collect(std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged) {
  if (queue_.empty()) throw WorkerError("collect() on a decoder worker with no file submitted");
  const Queued head = queue_.front();
  queue_.pop_front();
  // The worker starts on a file when it has finished the one before, so the time limit counts
  // from then.
  const auto deadline = head_started_ + std::chrono::seconds(options_.file_timeout_s);
  Received received;
  wire::ReadStatus status = wire::ReadStatus::kClosed;
  std::string malformed;  // why the reply could not be read, when it was no reply
  if (head.sent) {
    try {
      status = receive(head, deadline, received);
    } catch (const wire::WireError& e) {
      malformed = e.what();
    }
  }
  if (status != wire::ReadStatus::kOk || !malformed.empty())
    return replace_worker(*head.source, status, malformed);
  head_started_ = std::chrono::steady_clock::now();
  FileOutcome outcome = std::move(received.reply.outcome);
  note_source(*head.source, outcome);  // the worker's copy of the source has no warnings
  if (received.reply.stage_failure) received.reply.stage_failure->rethrow();
  for (auto& f : received.frames) frames.push_back(std::move(f));
  for (auto& o : received.staged) staged.push_back(std::move(o));
  return outcome;
}

FileOutcome DecodeWorker::replace_worker(const SourceFile& source, wire::ReadStatus status,
                                         const std::string& malformed) {
  FileOutcome outcome;
  note_source(source, outcome);
  std::string detail;
  if (!malformed.empty()) {
    detail = "the decoder's worker process sent a malformed reply on this file (" + malformed +
             "); it was killed and the scan went on";
    stop();
  } else if (status == wire::ReadStatus::kTimedOut) {
    detail = "the decoder did not finish within " + std::to_string(options_.file_timeout_s) +
             " s (validate.file_timeout_s); its worker process was killed";
    stop();
  } else {
    fd_.reset();
    detail = describe_end(spawner_.reap(pid_, false));
    pid_ = -1;
  }
  reject(outcome, Reason::kDecoderCrash, detail);
  // Keep what is known without the decoder: the file's size and hash are cheap to recompute.
  std::vector<std::uint8_t> bytes;
  if (!read_file_bytes(source.path, options_.max_file_bytes, bytes) && !bytes.empty()) {
    outcome.content_hash = content_hash(bytes.data(), bytes.size()).value_or(0);
    outcome.format = std::string(format_name(sniff_format(bytes.data(), bytes.size())));
  }
  start();
  // The files queued behind this one went down with the worker: hand them to the new one.
  for (Queued& queued : queue_) send_request(queued);
  head_started_ = std::chrono::steady_clock::now();
  return outcome;
}

}  // namespace medload::loader::detail
