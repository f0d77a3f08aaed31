#pragma once
/// P x K batches: each batch holds K samples of each of P distinct classes, grouped by class
/// (K of the first class, then K of the second, ...), as metric learning and heavily imbalanced
/// classification want. Classes are chosen uniformly at random per batch; inside a class, members
/// are drawn without replacement until the class is exhausted, then a new cycle starts. A class
/// with fewer than K members repeats some of them inside a batch. Use batch size P x K with a
/// data loader; a distributed wrapper hands out whole batches.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

/// Options of BalancedBatchSampler.
struct BalancedBatchSamplerOptions {
  /// P: distinct classes per batch, 1 <= P <= number of classes.
  std::size_t classes_per_batch = 2;
  /// K: samples of each class per batch, >= 1.
  std::size_t samples_per_class = 4;
  /// Batches per epoch; 0 means max(1, N / (P x K)).
  std::size_t num_batches = 0;
  /// Seed of every random choice.
  std::uint64_t seed = 0;
  /// Number of classes C; 0 means max(label) + 1. Every class in [0, C) must have a sample.
  std::size_t num_classes = 0;
  /// One patient id per sample ("" = unknown: counted as its own patient); needed when
  /// max_per_patient > 0.
  std::vector<std::string> patient_ids;
  /// At most this many distinct images of one patient are eligible per epoch; 0 means no cap.
  std::size_t max_per_patient = 0;
};

/// P classes x K samples per batch.
class BalancedBatchSampler : public StreamSampler {
 public:
  /// Throws ConfigError naming the field and value for empty labels, a label out of range, a
  /// class with no samples, P = 0, P > C, K = 0, P x K > N, or a patient_ids size mismatch.
  BalancedBatchSampler(const std::vector<std::int64_t>& labels, BalancedBatchSamplerOptions options = {});

  /// P x K: the batch size to use with this sampler.
  std::size_t batch_size() const noexcept { return batch_size_; }

 private:
  std::size_t batch_size_;
};

}  // namespace medload::samplers
