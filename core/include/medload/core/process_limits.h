#pragma once
/// Resource limits for a child process that handles untrusted input (a decoder worker, the
/// process that checks a cache from elsewhere), so that a damaged file costs that child alone.

#include <cstdint>

namespace medload::core {

/// Caps this process's address space (RLIMIT_AS, soft and hard) at what it holds now plus
/// `extra_bytes`. Relative on purpose: a training program with CUDA initialised holds tens of GB
/// of address space before it forks anything. Does nothing where the current size cannot be read
/// (/proc/self/statm) or a lower hard limit is already set, and in AddressSanitizer builds, whose
/// shadow memory is terabytes of address space.
void cap_address_space_growth(std::uint64_t extra_bytes) noexcept;

/// No core files from this process (RLIMIT_CORE 0): a crash on a hospital image is reported with
/// the file named; a core dump of it would be a copy of patient data left on disk.
void disable_core_files() noexcept;

/// Sets this process's soft CPU-time limit (RLIMIT_CPU) to what it has used so far plus `seconds`
/// (at most the hard limit); call it again to give the next piece of work its own allowance (a
/// decoder worker, before every file). Past it the kernel sends SIGXCPU, whose default action ends
/// the process: a child that spins (libhdf5 loops on some damaged files) ends even when nobody is
/// left to kill it.
void cap_cpu_seconds(unsigned seconds) noexcept;

/// Has the kernel kill this process (SIGKILL) when the thread that forked it ends, and ends it
/// now when that parent is already gone (`parent` is the pid from before the fork): a checking
/// child never outlives the process that waits for it.
void end_with_parent(int parent) noexcept;

/// Restores the default action of the crash signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, and
/// SIGXCPU, which cap_cpu_seconds relies on) in a forked child: a crash there ends the child with
/// its signal, for the parent to report, instead of running handlers the parent installed (a
/// logging library's stack printer, a fuzzer's crash recorder). Under a sanitizer it also clears
/// the death callback.
void default_crash_signals() noexcept;

}  // namespace medload::core
