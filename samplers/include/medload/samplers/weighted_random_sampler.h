#pragma once
/// Weighted random sampling with replacement by the alias method: O(N) to build, O(1) per index,
/// 64-bit sizes (no 2^24 limit as in torch.multinomial, which torch.utils.data's
/// WeightedRandomSampler uses). Index k of epoch e is a pure function of (seed, e, k).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "medload/samplers/alias_table.h"
#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

/// Options of WeightedRandomSampler.
struct WeightedRandomSamplerOptions {
  /// Seed of the index stream; the same (seed, epoch) gives the same indices on every machine.
  std::uint64_t seed = 0;
  /// Indices drawn per epoch; 0 means the number of weights N.
  std::size_t num_samples = 0;
};

/// Draws index i with probability weights[i] / sum(weights), with replacement.
class WeightedRandomSampler : public StreamSampler {
 public:
  /// `weights`: one finite, non-negative weight per sample, at least one > 0 (ConfigError naming
  /// the index and value otherwise). Memory: see AliasTable (8 bytes per sample below 2^32).
  WeightedRandomSampler(const std::vector<double>& weights, WeightedRandomSamplerOptions options = {});

  /// The alias table (shared by copies of this sampler).
  const AliasTable& table() const noexcept { return *table_; }

 private:
  WeightedRandomSampler(std::shared_ptr<const AliasTable> table, const std::vector<double>& weights,
                        const WeightedRandomSamplerOptions& options);

  std::shared_ptr<const AliasTable> table_;
};

}  // namespace medload::samplers
