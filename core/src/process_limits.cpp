#include "medload/core/process_limits.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

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
#ifndef __SANITIZE_ADDRESS__  // GCC and Clang define it under -fsanitize=address
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

}  // namespace medload::core
