#pragma once
/// What validation accepts and how decoding is isolated: the "validate" part of the pipeline
/// config.

#include <cstdint>

#include <nlohmann/json.hpp>

namespace medload::loader {

/// Where untrusted files are decoded.
enum class Isolation : std::uint8_t {
  /// In a pool of forked worker processes: a decoder that aborts or segfaults takes down only its
  /// worker, the file is reported `decoder_crash` and the worker is replaced. The default.
  kProcess,
  /// In the calling process (faster to start, for trusted data and tests; a crash is fatal).
  kInProcess,
};

/// Validation limits and decoding isolation. Every field has a default inside its range.
struct ValidationOptions {
  /// Largest accepted pixel count (rows x columns x frames), read from the header before any
  /// pixel is decoded, so a decompression bomb never allocates. Range 1 .. 4e9.
  std::int64_t max_pixels = 100'000'000;
  /// Largest input file read, in bytes; a larger file is `too_large` without being read (a
  /// 2048 x 2048 x 500-frame 16-bit DICOM is 4 GiB). Range 1 .. 2^44.
  std::uint64_t max_file_bytes = std::uint64_t{1} << 32;
  /// Smallest accepted side in pixels; smaller images are `too_small`. Range 1 .. 65535.
  int min_side = 32;
  /// An image whose content rises at most this many times above its own noise is `blank`
  /// (constant, or only noise around one level): the spread of its 8x8 block means (0.5th to
  /// 99.5th percentile) against the median block standard deviation (docs/ingest.md, "Blank").
  /// Independent of the bit depth and of how much of it an image uses. Pure noise measures about
  /// 0.65, anatomy tens to thousands. Range 0 .. 1000; 0 = exactly constant only.
  double blank_contrast_to_noise = 3.0;
  /// Reject files whose decoded pixels equal an earlier file's as `duplicate`.
  bool reject_duplicates = true;
  /// Read manifest entries whose path leaves the manifest's folder (`../..`, `/etc/...`); by
  /// default they are `outside_root` and never opened: a manifest from elsewhere cannot make
  /// medload read arbitrary files.
  bool allow_outside_root = false;
  // How the work runs, not what it accepts: set by the caller, not part of the JSON config or
  // its hash (the same files give the same outcomes whatever these are).

  /// Where decoding runs (see Isolation).
  Isolation isolation = Isolation::kProcess;
  /// A worker that takes longer than this on one file is killed and the file is `decoder_crash`.
  /// Seconds, range 1 .. 3600.
  int file_timeout_s = 120;
  /// Decoding threads (and worker processes); 0 = the hardware concurrency. Range 0 .. 256.
  int threads = 0;
  /// Address space each decoder worker process may add to what it inherits, in MiB (RLIMIT_AS):
  /// a decoder that allocates past it fails on that file alone (`decoder_crash`), never the
  /// machine. 0 = no limit. Not applied in AddressSanitizer builds, whose shadow memory is
  /// terabytes of address space. Range 0 .. 2^24.
  std::int64_t worker_memory_mb = 16384;
  /// CPU seconds a decoder worker may spend on one file (RLIMIT_CPU, reset for every file): a
  /// decoder stuck in a loop costs that file alone. 0 = no limit. Range 0 .. 86400.
  int worker_cpu_s = 300;

  /// Throws ConfigError naming the field and its range when a value is out of range.
  void validate() const;
  /// Parses the "validate" object (max_pixels, max_file_bytes, min_side, blank_contrast_to_noise,
  /// reject_duplicates, allow_outside_root):
  /// missing keys take defaults; unknown keys and out-of-range values throw ConfigError naming
  /// the key (as `validate.<key>`) and the allowed range.
  static ValidationOptions from_json(const nlohmann::json& j);
  /// The fields that decide outcomes (those from_json reads), with their values.
  nlohmann::json to_json() const;
};

}  // namespace medload::loader
