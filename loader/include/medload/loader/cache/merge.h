#pragma once
/// Joining caches built with `--shard I/N` (BuildOptions::shard_index/shard_count) into one
/// cache equal, in content and order, to a single build over all the inputs.

#include <cstddef>
#include <string>
#include <vector>

#include "medload/core/progress.h"

namespace medload::loader {

/// What to merge, and where.
struct MergeOptions {
  /// The shard caches, in any order (they are ordered by their shard index). Required, at least 1.
  std::vector<std::string> inputs;
  /// The merged cache to write (atomically: `<output>.tmp`, flushed, renamed). Required; must not
  /// be one of the inputs.
  std::string output;
  /// zlib level of the merged image chunks, 0 = none, 1..9.
  int deflate = 0;
  /// Progress display on stderr.
  ProgressStyle progress = ProgressStyle::kAuto;

  /// Throws ConfigError naming the field.
  void validate() const;
};

/// What a merge did.
struct MergeResult {
  std::size_t shards = 0;      ///< caches merged
  std::size_t images = 0;      ///< images in the merged cache
  std::size_t rejected = 0;    ///< rejected files listed in it
  std::size_t duplicates = 0;  ///< images dropped as duplicates of an image in an earlier shard
};

/// Merges `options.inputs` into `options.output`. Shards of one build (same config hash, library
/// version, image shape, classes and shard count) are ordered by shard index; every shard index
/// must be present exactly once. Caches that are not shards (shard count 1) are concatenated in
/// the order given. Duplicates across shards (the same decoded pixels) are dropped from the later
/// shard and listed as rejected `duplicate`, as a single build would; metadata is imputed again
/// over the merged samples. Caches whose privacy records conflict (privacy.h: verbatim ids with
/// pseudonyms, two keys, two profiles) are refused; the merged cache keeps their record, and
/// under the share profile names its inputs (`merged_from`) by file name only. Throws ConfigError (bad options), FormatError naming the cache and the
/// mismatching property, IoError/HdfError (writing).
MergeResult merge_caches(const MergeOptions& options);

}  // namespace medload::loader
