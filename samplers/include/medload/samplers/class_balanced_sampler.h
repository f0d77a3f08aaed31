#pragma once
/// Class-balanced sampling of a single-label dataset. Each epoch every class c gets an exact quota
/// q_c of draws (largest-remainder rounding of the mode's shares); inside a class, members are drawn
/// without replacement in random order until the class is exhausted, then a new cycle (a fresh
/// permutation) starts; the whole epoch is then shuffled. Index k of epoch e is a function of
/// (seed, e) only. The epoch is materialised on set_epoch: 8 bytes per index.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

/// How ClassBalancedSampler shares an epoch between classes.
enum class BalanceMode {
  kOversample,   ///< every class gets the largest class's count: epoch = C x max n_c
  kUndersample,  ///< every class gets the smallest class's count: epoch = C x min n_c
  kSqrt,         ///< shares proportional to sqrt(n_c): epoch = N
  kTarget,       ///< shares given by ClassBalancedSamplerOptions::target: epoch = N
};

/// The name used by reports and the command line ("oversample", "undersample", "sqrt", "target").
std::string to_string(BalanceMode mode);
/// Parses a name of to_string; throws ConfigError naming the value otherwise.
BalanceMode balance_mode_from_string(const std::string& name);

/// Options of ClassBalancedSampler.
struct ClassBalancedSamplerOptions {
  /// How the epoch is shared between classes.
  BalanceMode mode = BalanceMode::kOversample;
  /// Seed of every random choice; the same (seed, epoch) gives the same indices everywhere.
  std::uint64_t seed = 0;
  /// Number of classes C; 0 means max(label) + 1. Every class in [0, C) must have a sample.
  std::size_t num_classes = 0;
  /// kTarget only: one finite share >= 0 per class (normalised; need not sum to 1).
  std::vector<double> target;
  /// Indices per epoch; 0 means the mode's default (see BalanceMode).
  std::size_t num_samples = 0;
  /// One patient id per sample ("" = unknown: counted as its own patient); needed when
  /// max_per_patient > 0.
  std::vector<std::string> patient_ids;
  /// At most this many distinct images of one patient are eligible per epoch (chosen at random
  /// per epoch); 0 means no cap. Quotas are computed from the eligible counts.
  std::size_t max_per_patient = 0;
};

/// Oversampling, undersampling, square-root and target-distribution class balancing.
class ClassBalancedSampler : public StreamSampler {
 public:
  /// `labels`: one class index in [0, C) per sample. Throws ConfigError naming the field and
  /// value for empty labels, a label out of range, a class with no samples, a bad target
  /// (wrong length, negative, NaN, infinite, all zero) or a patient_ids size mismatch.
  ClassBalancedSampler(const std::vector<std::int64_t>& labels, ClassBalancedSamplerOptions options = {});
};

}  // namespace medload::samplers
