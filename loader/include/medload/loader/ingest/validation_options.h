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
  /// Smallest accepted side in pixels; smaller images are `too_small`. Range 1 .. 65535.
  int min_side = 32;
  /// An image whose pixel standard deviation is at most this fraction of its value range
  /// (2^bits_stored - 1) is `blank` (constant or near-constant). Range 0 .. 0.5; 0 = exactly constant only.
  double blank_std_fraction = 0.001;
  /// Reject files whose decoded pixels equal an earlier file's as `duplicate`.
  bool reject_duplicates = true;
  // How the work runs, not what it accepts: set by the caller, not part of the JSON config or
  // its hash (the same files give the same outcomes whatever these are).

  /// Where decoding runs (see Isolation).
  Isolation isolation = Isolation::kProcess;
  /// A worker that takes longer than this on one file is killed and the file is `decoder_crash`.
  /// Seconds, range 1 .. 3600.
  int file_timeout_s = 120;
  /// Decoding threads (and worker processes); 0 = the hardware concurrency. Range 0 .. 256.
  int threads = 0;

  /// Throws ConfigError naming the field and its range when a value is out of range.
  void validate() const;
  /// Parses the "validate" object (max_pixels, min_side, blank_std_fraction, reject_duplicates):
  /// missing keys take defaults; unknown keys and out-of-range values throw ConfigError naming
  /// the key (as `validate.<key>`) and the allowed range.
  static ValidationOptions from_json(const nlohmann::json& j);
  /// The fields that decide outcomes (those from_json reads), with their values.
  nlohmann::json to_json() const;
};

}  // namespace medload::loader
