// Crash containment: decoding in worker processes, talking over a socket pair. The workers are
// forked by a single-threaded spawner process (see WorkerSpawner in scan_internal.h), which
// the scan talks to over a control socket: fixed-size requests (spawn a worker, reap one) and
// replies, the new worker's socket passed back as SCM_RIGHTS.
//
// Wire format, both ways: messages of [u64 length][bytes]. A request is one JSON message (the
// SourceFile and the slot of shared memory to use); a reply is one JSON message (the outcome and
// frame headers). The frames' pixels follow in a memory region shared with the worker when they
// fit there ("shared": true in the reply), or else as one socket message per frame. The shared
// region saves the kernel's two copies and the many system calls of moving megabytes through a
// socket. The parent may queue a second request before it has read the first reply, so the
// worker decodes the next file while the parent preprocesses this one; the region has one slot
// per queued request, and a slot is written only between its request and its reply, so the
// parent never reads a slot the worker is writing.
//
// With a FrameStage (the cache build's preprocessing), the worker runs it on each frame and sends
// the stage's output (a description in the frame's header, its bytes as the frame's payload)
// instead of the decoded pixels; an exception the stage throws comes back as "stage_error".

#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include "decoders.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/process_limits.h"
#include "medload/core/text.h"
#include "medload/loader/ingest/scanner.h"
#include "scan_internal.h"

namespace medload::loader {

namespace detail {

namespace {

// Size of one slot of the shared pixel region: a 4096 x 4096 16-bit image, or several frames of a
// smaller one. Only the pages a reply touches are ever backed by memory.
constexpr std::size_t kSlotBytes = std::size_t{32} << 20;
constexpr std::size_t kSharedBytes = DecodeWorker::kSlots * kSlotBytes;

PreDecodeHook& hook_storage() {
  static PreDecodeHook hook;
  return hook;
}

nlohmann::json info_to_json(const SampleInfo& info) {
  return {{"labels", info.labels},     {"patient_id", info.patient_id},
          {"modality", info.modality}, {"series_uid", info.series_uid},
          {"view", info.view},         {"site", info.site},
          {"metadata", info.metadata}};
}

SampleInfo info_from_json(const nlohmann::json& j) {
  SampleInfo info;
  info.labels = j.at("labels").get<std::vector<std::string>>();
  info.patient_id = j.at("patient_id").get<std::string>();
  info.modality = j.at("modality").get<std::string>();
  info.series_uid = j.at("series_uid").get<std::string>();
  info.view = j.at("view").get<std::string>();
  info.site = j.at("site").get<std::string>();
  info.metadata = j.at("metadata").get<std::map<std::string, std::string>>();
  return info;
}

nlohmann::json outcome_to_json(const FileOutcome& o) {
  return {{"path", o.path},
          {"ok", o.ok},
          {"reason", o.reason ? static_cast<int>(*o.reason) : -1},
          {"detail", o.detail},
          {"warnings", o.warnings},
          {"frames", o.frames},
          {"height", o.height},
          {"width", o.width},
          {"bits_stored", o.bits_stored},
          {"format", o.format},
          {"content_hash", o.content_hash},
          {"pixel_hash", o.pixel_hash}};
}

FileOutcome outcome_from_json(const nlohmann::json& j) {
  FileOutcome o;
  o.path = j.at("path").get<std::string>();
  o.ok = j.at("ok").get<bool>();
  if (const int r = j.at("reason").get<int>(); r >= 0) o.reason = static_cast<Reason>(r);
  o.detail = j.at("detail").get<std::string>();
  o.warnings = j.at("warnings").get<std::vector<std::string>>();
  o.frames = j.at("frames").get<int>();
  o.height = j.at("height").get<int>();
  o.width = j.at("width").get<int>();
  o.bits_stored = j.at("bits_stored").get<int>();
  o.format = j.at("format").get<std::string>();
  o.content_hash = j.at("content_hash").get<std::uint64_t>();
  o.pixel_hash = j.at("pixel_hash").get<std::uint64_t>();
  return o;
}

nlohmann::json frame_header(const DecodedImage& f) {
  nlohmann::json j = {{"height", f.height},           {"width", f.width},
                      {"channels", f.channels},       {"type", static_cast<int>(f.type)},
                      {"bits_stored", f.bits_stored}, {"was_monochrome1", f.was_monochrome1},
                      {"source_path", f.source_path}, {"source_hash", f.source_hash},
                      {"frame_index", f.frame_index}, {"frame_count", f.frame_count},
                      {"format", f.format},           {"info", info_to_json(f.info)}};
  if (f.was_monochrome1) j["monochrome1_mirror"] = f.monochrome1_mirror;
  if (f.voi) {
    const VoiTransform& v = *f.voi;
    j["voi"] = {{"function", static_cast<int>(v.function)}, {"center", v.center},
                {"width", v.width},                          {"first_mapped", v.first_mapped},
                {"table_bits", v.table_bits},                {"table", v.table}};
  }
  return j;
}

DecodedImage frame_from_header(const nlohmann::json& j) {
  DecodedImage f;
  f.height = j.at("height").get<int>();
  f.width = j.at("width").get<int>();
  f.channels = j.at("channels").get<int>();
  f.type = static_cast<PixelType>(j.at("type").get<int>());
  f.bits_stored = j.at("bits_stored").get<int>();
  f.was_monochrome1 = j.at("was_monochrome1").get<bool>();
  f.source_path = j.at("source_path").get<std::string>();
  f.source_hash = j.at("source_hash").get<std::uint64_t>();
  f.frame_index = j.at("frame_index").get<int>();
  f.frame_count = j.at("frame_count").get<int>();
  f.format = j.at("format").get<std::string>();
  f.info = info_from_json(j.at("info"));
  if (j.contains("monochrome1_mirror")) f.monochrome1_mirror = j.at("monochrome1_mirror").get<double>();
  if (j.contains("voi")) {
    const nlohmann::json& v = j.at("voi");
    VoiTransform voi;
    voi.function = static_cast<VoiTransform::Function>(v.at("function").get<int>());
    voi.center = v.at("center").get<double>();
    voi.width = v.at("width").get<double>();
    voi.first_mapped = v.at("first_mapped").get<double>();
    voi.table_bits = v.at("table_bits").get<int>();
    voi.table = v.at("table").get<std::vector<std::uint16_t>>();
    f.voi = std::move(voi);
  }
  return f;
}

// An exception a stage threw, as it crosses from a worker: its medload type and its message.
nlohmann::json stage_error_to_json(const std::exception& e) {
  const char* kind = dynamic_cast<const ConfigError*>(&e)   ? "config"
                     : dynamic_cast<const FormatError*>(&e) ? "format"
                     : dynamic_cast<const IoError*>(&e)     ? "io"
                                                            : "other";
  return {{"kind", kind}, {"what", e.what()}};
}

[[noreturn]] void throw_stage_error(const nlohmann::json& j) {
  const std::string kind = j.at("kind").get<std::string>();
  const std::string what = j.at("what").get<std::string>();
  if (kind == "config") throw ConfigError(what);
  if (kind == "format") throw FormatError(what);
  if (kind == "io") throw IoError(what);
  throw WorkerError(what);
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

bool send_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool send_message(int fd, const void* data, std::size_t size) {
  const std::uint64_t length = size;
  return send_all(fd, &length, sizeof length) && send_all(fd, data, size);
}

bool send_text(int fd, const std::string& text) { return send_message(fd, text.data(), text.size()); }

enum class ReadStatus { kOk, kClosed, kTimedOut };

// Reads exactly `size` bytes, waiting at most until `deadline` (none when `deadline` is max).
ReadStatus read_all(int fd, void* data, std::size_t size, std::chrono::steady_clock::time_point deadline) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return ReadStatus::kTimedOut;
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return ReadStatus::kTimedOut;
      if (ready < 0) return ReadStatus::kClosed;
    }
    const ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ReadStatus::kClosed;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return ReadStatus::kOk;
}

template <typename Bytes>
ReadStatus read_message(int fd, Bytes& out, std::chrono::steady_clock::time_point deadline) {
  std::uint64_t length = 0;
  if (const auto s = read_all(fd, &length, sizeof length, deadline); s != ReadStatus::kOk) return s;
  out.resize(length);
  return read_all(fd, out.data(), length, deadline);
}

// Closes every descriptor the spawner or a worker inherited except stdin, stdout, stderr and
// `keep` (its socket). The process the spawner is forked from may hold other workers' sockets
// (another scan running on another thread); holding such a socket open here would keep that scan
// from ever reading end of file from its worker, so a crash would look like a hang until
// validate.file_timeout_s.
void close_inherited_descriptors(int keep) {
  const auto close_between = [](int first, int last) {  // inclusive
    if (first > last) return;
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, static_cast<unsigned>(first), static_cast<unsigned>(last), 0u) == 0)
      return;
#endif
    const long open_max = ::sysconf(_SC_OPEN_MAX);
    const int end = static_cast<int>(std::min<long>(last, open_max > 0 ? open_max - 1 : 65535));
    for (int fd = first; fd <= end; ++fd) ::close(fd);
  };
  close_between(3, keep - 1);
  close_between(keep + 1, INT_MAX);
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

// Gives the next file `seconds` of CPU time (RLIMIT_CPU counts the process's whole life, so the
// soft limit moves with each file); past it the kernel sends SIGXCPU and the file is reported
// `decoder_crash`.
void limit_cpu_for_next_file(int seconds) {
  if (seconds <= 0) return;
  rusage used{};
  if (::getrusage(RUSAGE_SELF, &used) != 0) return;
  const rlim_t spent = static_cast<rlim_t>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) + 1;
  rlimit cpu{};
  ::getrlimit(RLIMIT_CPU, &cpu);
  cpu.rlim_cur = spent + static_cast<rlim_t>(seconds);
  if (cpu.rlim_max != RLIM_INFINITY && cpu.rlim_cur > cpu.rlim_max) cpu.rlim_cur = cpu.rlim_max;
  ::setrlimit(RLIMIT_CPU, &cpu);
}

// Decodes one requested file (and runs the stage on it) and sends the reply. False when the
// parent is gone. Throws what building the reply throws; the caller answers for the file.
bool serve_request(int fd, const std::vector<char>& request, const ValidationOptions& options,
                   std::uint8_t* shared, const FrameStage* stage) {
  const auto j = nlohmann::json::parse(request.begin(), request.end());
  SourceFile source;
  source.path = percent_unescape(j.at("path").get<std::string>());  // raw bytes, see send_request
  source.report_path = j.at("report_path").get<std::string>();
  source.info = info_from_json(j.at("info"));
  source.outside_root = j.at("outside_root").get<bool>();
  const std::size_t slot = j.at("slot").get<std::size_t>() % DecodeWorker::kSlots;
  if (const auto& hook = hook_storage()) hook(source.path);
  std::vector<DecodedImage> frames;
  const FileOutcome outcome = decode_file(source, options, frames);
  nlohmann::json reply = {{"outcome", outcome_to_json(outcome)}, {"frames", nlohmann::json::array()}};
  std::vector<StagedFrame> staged;
  if (stage != nullptr && *stage && !frames.empty()) {
    try {
      run_stage_serially(*stage, frames, staged);
    } catch (const std::exception& e) {
      reply["stage_error"] = stage_error_to_json(e);
      frames.clear();
      staged.clear();
    }
  }
  // Each frame's payload: its stage output's bytes, or its pixels.
  const auto payload = [&](std::size_t k) -> const std::vector<std::uint8_t>& {
    return staged.empty() ? frames[k].pixels : staged[k].bytes;
  };
  std::size_t total = 0;
  for (std::size_t k = 0; k < frames.size(); ++k) total += payload(k).size();
  const bool in_shared = shared != nullptr && total <= kSlotBytes;
  reply["shared"] = in_shared;
  std::uint8_t* const region = in_shared ? shared + slot * kSlotBytes : nullptr;
  std::size_t offset = 0;
  for (std::size_t k = 0; k < frames.size(); ++k) {
    nlohmann::json header = frame_header(frames[k]);
    const std::vector<std::uint8_t>& bytes = payload(k);
    header["bytes"] = bytes.size();
    if (!staged.empty()) header["stage"] = std::move(staged[k].meta);
    reply["frames"].push_back(std::move(header));
    if (in_shared && !bytes.empty()) {  // an empty vector's data() may be null
      std::memcpy(region + offset, bytes.data(), bytes.size());
      offset += bytes.size();
    }
  }
  // Text that reached an outcome is valid UTF-8; replacement keeps a reply whatever a decoder says.
  bool sent = send_text(fd, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!in_shared) {
    for (std::size_t k = 0; k < frames.size(); ++k) {
      sent = sent && send_message(fd, payload(k).data(), payload(k).size());
    }
  }
  return sent;
}

// The reply for a file the worker could not answer for normally (building its reply threw): the
// file is `decoder_crash` with what happened, and the worker goes on with the next file.
bool send_failure(int fd, const std::vector<char>& request, const std::string& what) {
  FileOutcome outcome;
  const auto j = nlohmann::json::parse(request.begin(), request.end(), nullptr, false);
  if (j.is_object() && j.contains("report_path") && j["report_path"].is_string()) {
    outcome.path = j["report_path"].get<std::string>();
  }
  reject(outcome, Reason::kDecoderCrash, "the decoder worker failed on this file: " + what + "; the scan went on");
  const nlohmann::json reply = {{"outcome", outcome_to_json(outcome)}, {"frames", nlohmann::json::array()},
                                {"shared", false}};
  return send_text(fd, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// A worker never lets an exception leave: it runs on a copy of the stack of the process it was
// forked from, and unwinding into that copy would run the parent's code (its error messages, its
// exit) in the worker. Every file gets an answer; anything worse ends the worker with _exit.
[[noreturn]] void worker_main(int fd, const ValidationOptions& options, std::uint8_t* shared,
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
    std::vector<char> request;
    while (read_message(fd, request, std::chrono::steady_clock::time_point::max()) == ReadStatus::kOk) {
      limit_cpu_for_next_file(options.worker_cpu_s);
      bool sent = false;
      try {
        sent = serve_request(fd, request, options, shared, stage);
      } catch (const std::exception& e) {
        sent = send_failure(fd, request, e.what());
      } catch (...) {
        sent = send_failure(fd, request, "an exception that is not a std::exception");
      }
      if (!sent) break;
    }
  } catch (...) {
    ::_exit(70);  // EX_SOFTWARE: the scan reports the file it was on with this exit code
  }
  ::_exit(0);
}

std::string describe_signal(int sig) {
  const char* name = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (name ? std::string(", ") + name : std::string());
}

// How long a reap waits for a worker whose socket has closed to end by itself before killing it.
constexpr auto kReapGrace = std::chrono::seconds(5);

// Waits for worker `pid` to end and returns its wait status (nullopt when it is no child of this
// process). One that has not ended after `grace` is killed.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds grace) {
  const auto give_up = std::chrono::steady_clock::now() + grace;
  auto pause = std::chrono::microseconds(50);
  bool killed = false;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return std::nullopt;
    if (std::chrono::steady_clock::now() >= give_up) {
      ::kill(pid, SIGKILL);
      killed = true;
      continue;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
}

}  // namespace

// The control protocol between the scan and its spawner: one request, one reply.
enum SpawnOp : int { kSpawn = 1, kReap = 2 };

struct SpawnRequest {
  int op;
  int kill;             // kReap: SIGKILL the worker first
  std::uint64_t index;  // kSpawn: the worker's shared region
  pid_t pid;            // kReap
};

struct SpawnReply {
  int error;  // errno of a failed spawn, 0 otherwise
  int found;  // kReap: the worker was waited for
  int status;
  pid_t pid;
};

namespace {

// Sends `reply`, with `fd` attached when it is not -1.
bool send_reply(int control, const SpawnReply& reply, int fd) {
  iovec iov{const_cast<SpawnReply*>(&reply), sizeof reply};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control_bytes[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    message.msg_control = control_bytes;
    message.msg_controllen = sizeof control_bytes;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
  }
  for (;;) {
    const ssize_t n = ::sendmsg(control, &message, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof reply);
  }
}

// The spawner process: serves spawn and reap requests one at a time until the scan closes the
// control socket, then exits; the workers it leaves are killed by their parent-death signal.
void serve_spawn_requests(int control, const ValidationOptions& options, std::uint8_t* shared,
                          std::size_t workers, const FrameStage* stage) {
  close_inherited_descriptors(control);
  // A program that ignores SIGCHLD would have its children reaped without their status, which
  // names the signal a decoder crashed with.
  ::signal(SIGCHLD, SIG_DFL);
  const pid_t self = ::getpid();
  for (;;) {
    SpawnRequest request{};
    ssize_t n = 0;
    while ((n = ::recv(control, &request, sizeof request, 0)) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof request)) ::_exit(0);
    SpawnReply reply{};
    int scan_end = -1;
    if (request.op == kSpawn && request.index < workers) {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        reply.error = errno;
      } else {
        // Large socket buffers: a 2048 x 2048 16-bit frame is 8 MB, moved in few system calls
        // when it does not fit the shared region.
        const int buffer = 4 << 20;
        for (int fd : fds) {
          ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
          ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
        }
        const pid_t pid = ::fork();
        if (pid == 0) {
          ::close(control);
          ::close(fds[0]);
#ifdef __linux__
          ::prctl(PR_SET_PDEATHSIG, SIGKILL);   // never outlive the spawner, which never outlives the scan
          if (::getppid() != self) ::_exit(0);  // it ended before the line above
#endif
          worker_main(fds[1], options, shared == nullptr ? nullptr : shared + request.index * kSharedBytes,
                      stage);
        }
        ::close(fds[1]);
        if (pid < 0) {
          reply.error = errno;
          ::close(fds[0]);
        } else {
          reply.pid = pid;
          scan_end = fds[0];
        }
      }
    } else if (request.op == kReap) {
      const auto status = wait_for(request.pid, request.kill ? std::chrono::milliseconds(0) : kReapGrace);
      reply.found = status.has_value();
      reply.status = status.value_or(0);
    } else {
      reply.error = EINVAL;
    }
    const bool sent = send_reply(control, reply, scan_end);
    if (scan_end >= 0) ::close(scan_end);
    if (!sent) ::_exit(0);
  }
}

[[noreturn]] void spawner_main(int control, const ValidationOptions& options, std::uint8_t* shared,
                               std::size_t workers, const FrameStage* stage) noexcept {
  // Like a worker, the spawner never unwinds into the stack it was forked with.
  try {
    serve_spawn_requests(control, options, shared, workers, stage);
  } catch (...) {
    ::_exit(70);
  }
  ::_exit(0);
}

}  // namespace

void set_pre_decode_hook(PreDecodeHook hook) { hook_storage() = std::move(hook); }

WorkerSpawner::WorkerSpawner(const ValidationOptions& options, std::size_t workers, const FrameStage* stage)
    : workers_(workers) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw IoError(std::string("cannot create the decoder workers' control socket: ") + std::strerror(errno));
  }
  // Without the shared regions (mmap refused), pixels go through the sockets. Only the pages a
  // reply touches are ever backed by memory.
  void* shared = ::mmap(nullptr, workers * kSharedBytes, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  shared_ = shared == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(shared);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    if (shared_ != nullptr) ::munmap(shared_, workers * kSharedBytes);
    throw IoError(std::string("cannot fork the decoder workers' spawner: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::close(fds[0]);
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the scan
#endif
    spawner_main(fds[1], options, shared_, workers, stage);
  }
  ::close(fds[1]);
  pid_ = pid;
  fd_ = fds[0];
}

WorkerSpawner::~WorkerSpawner() {
  ::close(fd_);  // the spawner reads end of file and exits
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  if (shared_ != nullptr) ::munmap(shared_, workers_ * kSharedBytes);
}

SpawnReply WorkerSpawner::call(const SpawnRequest& request, int* fd) {
  SpawnReply reply{};
  iovec iov{&reply, sizeof reply};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control_bytes[CMSG_SPACE(sizeof(int))] = {};
  message.msg_control = control_bytes;
  message.msg_controllen = sizeof control_bytes;
  std::lock_guard lock(mutex_);
  ssize_t n = 0;
  while ((n = ::send(fd_, &request, sizeof request, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof request)) {
    while ((n = ::recvmsg(fd_, &message, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
  }
  if (n != static_cast<ssize_t>(sizeof reply)) {
    throw WorkerError(
        "the decoder workers' spawner process is gone (killed or crashed); the scan cannot go on");
  }
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    int received = -1;
    std::memcpy(&received, CMSG_DATA(header), sizeof received);
    if (fd != nullptr && *fd < 0) {
      *fd = received;
    } else {
      ::close(received);
    }
  }
  return reply;
}

WorkerSpawner::Worker WorkerSpawner::spawn(std::size_t index) {
  SpawnRequest request{};
  request.op = kSpawn;
  request.index = index;
  int fd = -1;
  const SpawnReply reply = call(request, &fd);
  if (reply.error != 0 || fd < 0) {
    if (fd >= 0) ::close(fd);
    throw IoError(std::string("cannot start a decoder worker: ") +
                  std::strerror(reply.error != 0 ? reply.error : EPROTO));
  }
  return {reply.pid, fd};
}

std::optional<int> WorkerSpawner::reap(pid_t pid, bool kill) {
  SpawnRequest request{};
  request.op = kReap;
  request.kill = kill ? 1 : 0;
  request.pid = pid;
  const SpawnReply reply = call(request, nullptr);
  if (!reply.found) return std::nullopt;
  return reply.status;
}

std::uint8_t* WorkerSpawner::region(std::size_t index) const {
  return shared_ == nullptr || index >= workers_ ? nullptr : shared_ + index * kSharedBytes;
}

DecodeWorker::DecodeWorker(const ValidationOptions& options, WorkerSpawner& spawner, std::size_t index)
    : options_(options), spawner_(spawner), index_(index), shared_(spawner.region(index)) {
  start();
}

DecodeWorker::~DecodeWorker() { stop(); }

void DecodeWorker::start() {
  const WorkerSpawner::Worker worker = spawner_.spawn(index_);
  pid_ = worker.pid;
  fd_ = worker.fd;
}

void DecodeWorker::stop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
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
  const SourceFile& source = *queued.source;
  // JSON carries only UTF-8: a file name that is not travels percent-escaped.
  const nlohmann::json request = {{"path", percent_escape_non_utf8(source.path)},
                                  {"report_path", source.report_path},
                                  {"info", info_to_json(source.info)},
                                  {"outside_root", source.outside_root},
                                  {"slot", queued.slot}};
  // A failed send means the worker is gone; collect() finds that out and reports it.
  queued.sent = send_text(fd_, request.dump());
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

FileOutcome DecodeWorker::collect(std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged) {
  if (queue_.empty()) throw WorkerError("collect() on a decoder worker with no file submitted");
  const Queued head = queue_.front();
  queue_.pop_front();
  const SourceFile& source = *head.source;
  // The worker starts on a file when it has finished the one before, so the time limit counts
  // from then.
  const auto deadline = head_started_ + std::chrono::seconds(options_.file_timeout_s);
  std::vector<char> message;
  ReadStatus status = head.sent ? read_message(fd_, message, deadline) : ReadStatus::kClosed;
  if (status == ReadStatus::kOk) {
    const auto reply = nlohmann::json::parse(message.begin(), message.end());
    FileOutcome outcome = outcome_from_json(reply.at("outcome"));
    note_source(source, outcome);  // the worker's copy of the source has no warnings
    std::vector<DecodedImage> decoded;
    std::vector<StagedFrame> outputs;
    const bool in_shared = reply.at("shared").get<bool>();
    const std::uint8_t* const region = shared_ == nullptr ? nullptr : shared_ + head.slot * kSlotBytes;
    std::size_t offset = 0;
    for (const auto& header : reply.at("frames")) {
      DecodedImage frame = frame_from_header(header);
      // The payload is the stage's output when there is one, else the frame's pixels.
      StagedFrame output;
      const bool has_stage = header.contains("stage");
      std::vector<std::uint8_t>& payload = has_stage ? output.bytes : frame.pixels;
      if (in_shared) {
        const std::size_t bytes = header.at("bytes").get<std::size_t>();
        if (region == nullptr || offset + bytes > kSlotBytes) {
          throw WorkerError("a decoder worker's reply does not fit its shared memory (" +
                            std::to_string(bytes) + " bytes at offset " + std::to_string(offset) + ")");
        }
        payload.assign(region + offset, region + offset + bytes);
        offset += bytes;
      } else {
        status = read_message(fd_, payload, deadline);
        if (status != ReadStatus::kOk) break;
      }
      decoded.push_back(std::move(frame));
      if (has_stage) {
        output.meta = header.at("stage");
        outputs.push_back(std::move(output));
      }
    }
    if (status == ReadStatus::kOk) {
      head_started_ = std::chrono::steady_clock::now();
      if (reply.contains("stage_error")) throw_stage_error(reply.at("stage_error"));
      for (auto& f : decoded) frames.push_back(std::move(f));
      for (auto& o : outputs) staged.push_back(std::move(o));
      return outcome;
    }
  }
  // The worker died or hung on this file: report it and start a fresh one.
  FileOutcome outcome;
  note_source(source, outcome);
  std::string detail;
  if (status == ReadStatus::kTimedOut) {
    detail = "the decoder did not finish within " + std::to_string(options_.file_timeout_s) +
             " s (validate.file_timeout_s); its worker process was killed";
    stop();
  } else {
    ::close(fd_);
    fd_ = -1;
    const std::optional<int> wstatus = spawner_.reap(pid_, false);
    pid_ = -1;
    if (wstatus && WIFSIGNALED(*wstatus)) {
      detail =
          "the decoder crashed on this file (" + describe_signal(WTERMSIG(*wstatus)) + "); the scan went on";
    } else if (wstatus && WIFEXITED(*wstatus)) {
      detail = "the decoder's worker process exited with code " + std::to_string(WEXITSTATUS(*wstatus)) +
               " on this file; the scan went on";
    } else {
      detail = "the decoder's worker process stopped answering on this file";
    }
  }
  detail::reject(outcome, Reason::kDecoderCrash, detail);
  // Keep what is known without the decoder: the file's size and hash are cheap to recompute.
  std::vector<std::uint8_t> bytes;
  if (!read_file_bytes(source.path, options_.max_file_bytes, bytes) && !bytes.empty()) {
    outcome.content_hash = hash64(bytes.data(), bytes.size(), 0);
    outcome.format = std::string(format_name(sniff_format(bytes.data(), bytes.size())));
  }
  start();
  // The files queued behind this one went down with the worker: hand them to the new one.
  for (Queued& queued : queue_) send_request(queued);
  head_started_ = std::chrono::steady_clock::now();
  return outcome;
}

}  // namespace detail

}  // namespace medload::loader
