#pragma once
/// What a sampler draws: per-class counts per epoch, duplicates, per-rank counts and speed. The
/// report is a plain struct and JSON; `medload sample` prints it for a cache.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medload::samplers {

class StreamSampler;

/// One rank's share of an epoch.
struct RankComposition {
  /// The rank.
  std::size_t rank = 0;
  /// Indices the rank draws.
  std::size_t draws = 0;
  /// Draws per class.
  std::vector<std::size_t> class_counts;
};

/// One epoch, all ranks together.
struct EpochComposition {
  /// The epoch number passed to set_epoch.
  std::size_t epoch = 0;
  /// Indices drawn by all ranks.
  std::size_t draws = 0;
  /// Distinct samples among them.
  std::size_t unique = 0;
  /// 1 - unique / draws: the fraction of draws that repeat a sample already drawn this epoch.
  double duplicate_rate = 0.0;
  /// Draws per class, all ranks.
  std::vector<std::size_t> class_counts;
  /// Largest |rank share of class c - global share of class c| over ranks and classes.
  double max_rank_share_deviation = 0.0;
  /// Each rank's share.
  std::vector<RankComposition> ranks;
};

/// The most epochs one composition report draws (each epoch draws the whole dataset once).
inline constexpr std::size_t kMaxReportEpochs = 10000;
/// The most ranks one composition report splits a stream over (counts are kept per rank).
inline constexpr std::size_t kMaxReportWorldSize = 65536;

/// The report of `composition_report`.
struct CompositionReport {
  /// The sampler's kind ("weighted", "oversample", ...).
  std::string sampler;
  /// Seed and first epoch reported.
  std::uint64_t seed = 0;
  std::size_t first_epoch = 0;
  /// Samples in the dataset and ranks.
  std::size_t dataset_size = 0;
  std::size_t world_size = 1;
  /// Class names (empty strings where unknown) and the dataset's samples per class.
  std::vector<std::string> class_names;
  std::vector<std::size_t> dataset_class_counts;
  /// One entry per epoch.
  std::vector<EpochComposition> epochs;
  /// Wall-clock nanoseconds per index to produce the epochs (set_epoch included), one thread.
  double ns_per_index = 0.0;

  /// The report as JSON (nlohmann layout: the fields above, by name).
  std::string to_json(int indent = 2) const;
  /// A human-readable table.
  std::string to_text() const;
};

/// Runs `sampler` (a plain, non-distributed sampler; its own cursor is left untouched) for
/// `epochs` epochs from its current epoch, split over `world_size` ranks by DistributedSampler,
/// and counts what it draws. `labels[i]` is sample i's class in [0, C); C is
/// max(class_names.size(), max label + 1). Throws ConfigError when labels.size() differs from the
/// sampler's dataset size, a label is negative, epochs is outside 1..kMaxReportEpochs or
/// world_size outside 1..kMaxReportWorldSize.
CompositionReport composition_report(const StreamSampler& sampler, const std::vector<std::int64_t>& labels,
                                     std::size_t epochs = 1, std::size_t world_size = 1,
                                     std::vector<std::string> class_names = {});

}  // namespace medload::samplers
