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

}  // namespace medload::core
