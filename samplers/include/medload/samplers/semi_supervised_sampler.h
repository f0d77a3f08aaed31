#pragma once
/// Semi-supervised batches (FixMatch, Mean Teacher, ...): every step is one block of
/// B + mu x B dataset rows, first B labelled rows, then mu x B unlabelled rows. Serve it with
/// batch size step_size(); rows [0, B) of a batch are the labelled ones.
///
/// Each side has its own sampler over its own samples, so each keeps its own balancing: a
/// ClassBalancedSampler over the labelled samples, a plain shuffle over the unlabelled ones (see
/// make_semi_supervised_sampler), or any medload samplers (the general constructor). The inner
/// samplers contribute their configuration only: their streams are prepared with seeds derived
/// from this sampler's seed, so their own seeds, epochs and cursors are not used or moved. The
/// composite shares their streams: like every sampler, use them from one thread.
///
/// The epoch (e) follows the labelled side:
/// - The labelled sampler's epoch e has L indices; the epoch has steps = ceil(L / B) steps. The
///   last step's labelled slots wrap to the start of the labelled epoch, so every block is full.
///   B > L is allowed: the single step then repeats labelled rows.
/// - The unlabelled rows of epoch e are the unlabelled sampler's epochs (e << 32) + 0, 1, 2, ...
///   concatenated (one "pass" each; its length U is the unlabelled sampler's epoch length), cut
///   into mu x B per step. With a shuffle, no unlabelled row repeats inside an epoch until the
///   pool is exhausted; then a new pass (a fresh permutation) starts. Each epoch starts a new pass:
///   when an epoch needs fewer than U unlabelled rows it sees a random subset of the pool.
/// - Everything is a pure function of (seed, e), so save/load resume exactly and DistributedSampler
///   gives rank r whole steps r, r + W, ... (the block is one step).
///
/// The epoch is materialised on set_epoch: 8 bytes per index, steps x (B + mu x B) indices.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "medload/samplers/stream_sampler.h"

namespace medload::samplers {

/// Options of SemiSupervisedSampler.
struct SemiSupervisedOptions {
  /// B: labelled rows per step, >= 1.
  std::size_t labelled_batch = 8;
  /// mu: unlabelled rows per labelled row, >= 1 (FixMatch uses 7); a step has mu x B unlabelled rows.
  std::size_t mu = 7;
  /// Seed of both sides; the same (seed, epoch) gives the same steps everywhere.
  std::uint64_t seed = 0;
};

/// How make_semi_supervised_sampler draws the labelled side.
enum class LabelledBalance {
  kOversample,  ///< ClassBalancedSampler kOversample: every class as often as the largest one
  kShuffle,     ///< a seeded permutation: each labelled sample once per labelled epoch
};

/// B labelled + mu x B unlabelled rows per step (see the file comment).
class SemiSupervisedSampler : public StreamSampler {
 public:
  /// `labelled`: any medload sampler built over the labelled samples only; its index i is dataset
  /// row labelled_rows[i]. Likewise `unlabelled` and unlabelled_rows. Rows need not cover the
  /// dataset (rows of neither side are never drawn). Throws ConfigError naming the field and value
  /// for labelled_batch = 0, mu = 0, no labelled or no unlabelled rows, a row >= dataset_size, a
  /// row listed twice or on both sides, a row map whose size is not its sampler's dataset_size(),
  /// or an inner sampler that is already distributed (distribute the SemiSupervisedSampler).
  SemiSupervisedSampler(const StreamSampler& labelled, std::vector<std::size_t> labelled_rows,
                        const StreamSampler& unlabelled, std::vector<std::size_t> unlabelled_rows,
                        std::size_t dataset_size, SemiSupervisedOptions options);

  /// The next step: `batch_size` must be step_size() (ConfigError naming the value otherwise: set
  /// LoaderOptions.batch_size or DataLoaderOptions.batch_size to step_size()). A DistributedSampler
  /// over this sampler yields whole steps too, but does not check the batch size.
  torch::optional<std::vector<std::size_t>> next(std::size_t batch_size) override;

  /// B: the labelled rows at the start of each step.
  std::size_t labelled_batch() const noexcept { return labelled_batch_; }
  /// mu x B: the unlabelled rows after them.
  std::size_t unlabelled_batch() const noexcept { return labelled_batch_ * mu_; }
  /// B + mu x B: the batch size to serve this sampler with.
  std::size_t step_size() const noexcept { return labelled_batch_ + unlabelled_batch(); }
  /// Steps this sampler yields in the current epoch: ceil(L / B).
  std::size_t steps() const { return size() / step_size(); }

 private:
  std::size_t labelled_batch_;
  std::size_t mu_;
};

/// The common case: `labels[i]` is sample i's class id (>= 0), or -1 for an unlabelled sample
/// (CacheDataset::labels() writes -1 for unlabelled samples). The labelled side is drawn by
/// `balance` over the labelled samples (class ids must be 0..C-1, each with a sample, as for
/// ClassBalancedSampler); the unlabelled side is a seeded permutation of the unlabelled samples.
/// Throws ConfigError naming the value for a label below -1, no labelled sample, no unlabelled
/// sample (use a supervised sampler then), and the errors of SemiSupervisedSampler.
SemiSupervisedSampler make_semi_supervised_sampler(const std::vector<std::int64_t>& labels,
                                                   SemiSupervisedOptions options,
                                                   LabelledBalance balance = LabelledBalance::kOversample);

}  // namespace medload::samplers
