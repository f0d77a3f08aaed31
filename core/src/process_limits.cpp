#include "medload/core/process_limits.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

// AddressSanitizer: GCC defines __SANITIZE_ADDRESS__, clang (before 16) only __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define MEDLOAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEDLOAD_ASAN 1
#endif
#endif
#ifdef MEDLOAD_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#include "medload/core/file_descriptor.h"

namespace medload::core {

namespace {

// This process's address space in bytes (VmSize), 0 where there is none to read.
[[maybe_unused]] std::uint64_t address_space_bytes() noexcept {
  const FileDescriptor statm(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
  char text[64] = {};
  if (!statm || ::read(statm.get(), text, sizeof text - 1) <= 0) return 0;
  const unsigned long long pages = std::strtoull(text, nullptr, 10);
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? pages * static_cast<std::uint64_t>(page) : 0;
}

}  // namespace

void cap_address_space_growth(std::uint64_t extra_bytes) noexcept {
#ifndef MEDLOAD_ASAN
  const std::uint64_t now = address_space_bytes();
  rlimit space{};
  if (now == 0 || ::getrlimit(RLIMIT_AS, &space) != 0) return;
  const auto cap = static_cast<rlim_t>(now + extra_bytes);
  if (space.rlim_max != RLIM_INFINITY && cap > space.rlim_max) return;
  space.rlim_cur = space.rlim_max = cap;
  ::setrlimit(RLIMIT_AS, &space);
#else
  (void)extra_bytes;
#endif
}

void disable_core_files() noexcept {
  const rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

void cap_cpu_seconds(unsigned seconds) noexcept {
  rusage used{};
  if (::getrusage(RUSAGE_SELF, &used) != 0) return;
  rlimit cpu{};
  if (::getrlimit(RLIMIT_CPU, &cpu) != 0) return;
  // RLIMIT_CPU counts the process's whole life: the soft limit is what it used so far plus
  // `seconds`, and only the soft one moves, so a later call can give the next piece of work its
  // own allowance.
  const rlim_t spent = static_cast<rlim_t>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) + 1;
  cpu.rlim_cur = spent + static_cast<rlim_t>(seconds);
  if (cpu.rlim_max != RLIM_INFINITY && cpu.rlim_cur > cpu.rlim_max) cpu.rlim_cur = cpu.rlim_max;
  ::setrlimit(RLIMIT_CPU, &cpu);
}

void end_with_parent(int parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent ended before the line above
}

void default_crash_signals() noexcept {
  for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGXCPU}) ::signal(signal, SIG_DFL);
#ifdef MEDLOAD_ASAN
  __sanitizer_set_death_callback(nullptr);
#endif
}

}  // namespace medload::core
