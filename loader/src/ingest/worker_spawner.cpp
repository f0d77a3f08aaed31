// The decoder workers' spawner: a small single-threaded process, forked when a scan starts,
// that forks every worker (the replacements for crashed ones included) and reaps them. The scan
// talks to it over a control socket: fixed-size requests (spawn a worker, reap one) and replies,
// the new worker's socket passed back as SCM_RIGHTS. See WorkerSpawner in scan_internal.h.

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <optional>
#include <thread>

#include "medload/core/error.h"
#include "medload/core/process_limits.h"
#include "scan_internal.h"
#include "wire_format.h"

namespace medload::loader {

namespace detail {

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

namespace {

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

// What the spawner's forks share: the scan's options, the workers' regions and the stage.
struct SpawnerContext {
  int control;
  const ValidationOptions& options;
  std::uint8_t* shared;  // nullptr: no shared regions
  std::size_t workers;
  const FrameStage* stage;
};

// Forks worker `index` on a fresh socket pair: the reply names it, and `*scan_end` is the
// scan's end of its socket (-1 when the fork failed).
SpawnReply spawn_worker(const SpawnerContext& context, std::uint64_t index, pid_t spawner, int* scan_end) {
  SpawnReply reply{};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    reply.error = errno;
    return reply;
  }
  // Large socket buffers: a 2048 x 2048 16-bit frame is 8 MB, moved in few system calls when it
  // does not fit the shared region.
  const int buffer = 4 << 20;
  for (int fd : fds) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(context.control);
    ::close(fds[0]);
    core::end_with_parent(spawner);  // never outlive the spawner, which never outlives the scan
    std::uint8_t* const region =
        context.shared == nullptr ? nullptr : context.shared + index * wire::kRegionBytes;
    worker_main(fds[1], context.options, region, context.stage);
  }
  ::close(fds[1]);
  if (pid < 0) {
    reply.error = errno;
    ::close(fds[0]);
  } else {
    reply.pid = pid;
    *scan_end = fds[0];
  }
  return reply;
}

// The spawner process: serves spawn and reap requests one at a time until the scan closes the
// control socket, then exits; the workers it leaves are killed by their parent-death signal.
void serve_spawn_requests(const SpawnerContext& context) {
  close_inherited_descriptors(context.control);
  // A program that ignores SIGCHLD would have its children reaped without their status, which
  // names the signal a decoder crashed with.
  ::signal(SIGCHLD, SIG_DFL);
  const pid_t self = ::getpid();
  for (;;) {
    SpawnRequest request{};
    ssize_t n = 0;
    while ((n = ::recv(context.control, &request, sizeof request, 0)) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof request)) ::_exit(0);
    SpawnReply reply{};
    int scan_end = -1;
    if (request.op == kSpawn && request.index < context.workers) {
      reply = spawn_worker(context, request.index, self, &scan_end);
    } else if (request.op == kReap) {
      const auto status = wait_for(request.pid, request.kill ? std::chrono::milliseconds(0) : kReapGrace);
      reply.found = status.has_value();
      reply.status = status.value_or(0);
    } else {
      reply.error = EINVAL;
    }
    const bool sent = send_reply(context.control, reply, scan_end);
    if (scan_end >= 0) ::close(scan_end);
    if (!sent) ::_exit(0);
  }
}

[[noreturn]] void spawner_main(const SpawnerContext& context) noexcept {
  // Like a worker, the spawner never unwinds into the stack it was forked with.
  try {
    serve_spawn_requests(context);
  } catch (...) {
    ::_exit(70);
  }
  ::_exit(0);
}

}  // namespace

WorkerSpawner::WorkerSpawner(const ValidationOptions& options, std::size_t workers, const FrameStage* stage)
    : workers_(workers) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw IoError(std::string("cannot create the decoder workers' control socket: ") + std::strerror(errno));
  }
  // Without the shared regions (mmap refused), pixels go through the sockets. Only the pages a
  // reply touches are ever backed by memory.
  void* shared = ::mmap(nullptr, workers * wire::kRegionBytes, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  shared_ = shared == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(shared);
  const pid_t scan = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    if (shared_ != nullptr) ::munmap(shared_, workers * wire::kRegionBytes);
    throw IoError(std::string("cannot fork the decoder workers' spawner: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::close(fds[0]);
    core::end_with_parent(scan);  // never outlive the scan
    spawner_main({fds[1], options, shared_, workers, stage});
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
  if (shared_ != nullptr) ::munmap(shared_, workers_ * wire::kRegionBytes);
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
  return shared_ == nullptr || index >= workers_ ? nullptr : shared_ + index * wire::kRegionBytes;
}

}  // namespace detail

}  // namespace medload::loader
