#pragma once
/// A distributed wrapper for any medload sampler. Every rank computes the same global stream from
/// (seed, epoch) without communicating; rank r takes blocks r, r + W, r + 2W, ... of it (a block is
/// one index, or one P x K batch of a BalancedBatchSampler). Slices are disjoint and of equal size:
/// by default the last round wraps to the start of the stream (like torch's DistributedSampler),
/// with drop_last the incomplete round is dropped. Because every rank strides through one shuffled
/// stream, each rank sees the global class ratio, and together the ranks see exactly the global
/// epoch (plus at most W - 1 wrapped blocks).
///
/// Works with `torch::data::make_data_loader(dataset, sampler, options)` and medload's loader.

#include <cstddef>

#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

/// Options of DistributedSampler.
struct DistributedOptions {
  /// Number of ranks W, >= 1.
  std::size_t world_size = 1;
  /// This process's rank, in [0, W).
  std::size_t rank = 0;
  /// Drop the incomplete last round instead of wrapping to the stream's start.
  bool drop_last = false;
};

/// Rank `rank`'s slice of another sampler's global stream.
class DistributedSampler : public StreamSampler {
 public:
  /// Shares `inner`'s stream (configuration and seed) and starts at `inner`'s epoch; the cursor is
  /// its own. Throws ConfigError for world_size = 0, rank >= world_size, or an already
  /// distributed `inner`.
  DistributedSampler(const StreamSampler& inner, DistributedOptions options);
};

}  // namespace medload::samplers
