#pragma once
/// The base of every medload sampler: a `torch::data::samplers::Sampler<>` whose epoch is a
/// deterministic "global stream" of dataset indices, a pure function of (seed, epoch).
///
/// Samplers are cheap handles: copies share one cursor (epoch, position). This is what makes them
/// usable with `torch::data::make_data_loader`, which takes its sampler by value: keep a copy, call
/// `set_epoch` on it before each epoch and `save` it with the checkpoint; the loader's copy follows.
/// A sampler is not thread-safe; the torch data loaders call it from one thread.

#include <torch/data/samplers/base.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace medload::samplers {

namespace detail {

/// One epoch's global index stream. Implementations are immutable apart from the prepared epoch.
class Stream {
 public:
  virtual ~Stream() = default;
  /// Builds epoch `epoch` under `seed` (materialising it when the sampler needs a permutation).
  virtual void prepare(std::uint64_t seed, std::uint64_t epoch) = 0;
  /// Indices in the prepared epoch.
  virtual std::size_t length() const = 0;
  /// Writes stream positions [begin, begin + count) of the prepared epoch to `out`.
  virtual void fill(std::size_t begin, std::size_t count, std::size_t* out) const = 0;
  /// Writes positions begin, begin + stride, ... (`count` of them, all < length()) to `out`.
  virtual void fill_strided(std::size_t begin, std::size_t stride, std::size_t count,
                            std::size_t* out) const {
    for (std::size_t i = 0; i < count; ++i) fill(begin + i * stride, 1, out + i);
  }
  /// Samples in the dataset the stream indexes.
  virtual std::size_t dataset_size() const = 0;
  /// Positions that belong together (a P x K batch); distributed slices never split one.
  virtual std::size_t block() const { return 1; }
  /// A short name: "weighted", "oversample", ...
  virtual std::string kind() const = 0;
  /// A hash of the configuration (weights, labels, options), checked when a state is loaded.
  virtual std::uint64_t fingerprint() const = 0;
  /// Whether the stream corrects class imbalance (for the double-correction warning).
  virtual bool balances_classes() const = 0;

  /// Prepares (seed, epoch) unless it is the one already prepared.
  void ensure(std::uint64_t seed, std::uint64_t epoch) {
    if (!prepared_ || seed != prepared_seed_ || epoch != prepared_epoch_) {
      prepare(seed, epoch);
      prepared_ = true;
      prepared_seed_ = seed;
      prepared_epoch_ = epoch;
    }
  }

 private:
  bool prepared_ = false;
  std::uint64_t prepared_seed_ = 0;
  std::uint64_t prepared_epoch_ = 0;
};

}  // namespace detail

/// A medload sampler (see the file comment). Derived classes only choose the stream.
class StreamSampler : public torch::data::samplers::Sampler<> {
 public:
  /// Starts epoch `epoch` at its first index: the order depends on (seed, epoch) only.
  void set_epoch(std::size_t epoch);
  /// The current epoch.
  std::size_t epoch() const noexcept;
  /// The seed (from the options, or from a loaded state).
  std::uint64_t seed() const noexcept;
  /// Indices this sampler yields in the current epoch (its slice, for a distributed sampler).
  std::size_t size() const;
  /// Indices already yielded in the current epoch.
  std::size_t position() const noexcept;
  /// Samples in the dataset (what `reset(new_size)` must match).
  std::size_t dataset_size() const;
  /// The sampler's kind: "weighted", "oversample", "undersample", "sqrt", "target",
  /// "balanced-batch".
  std::string kind() const;
  /// Whether this sampler corrects class imbalance (see `double_correction_warning`).
  bool balances_classes() const;
  /// Number of ranks sharing the global stream (1 unless distributed), and this one's rank.
  std::size_t world_size() const noexcept;
  std::size_t rank() const noexcept;

  /// All indices of the current epoch for this sampler, without moving the cursor.
  std::vector<std::size_t> epoch_indices() const;

  /// Rewinds to the start of the current epoch. `new_size`, when given, must equal
  /// dataset_size() (ConfigError otherwise: a sampler is built for one dataset). Right after
  /// `load`, the first reset keeps the loaded position, so a data loader created after loading
  /// a checkpoint resumes where the checkpoint stopped.
  void reset(torch::optional<std::size_t> new_size = torch::nullopt) override;

  /// The next `batch_size` indices (fewer at the end of the epoch), or nullopt once the epoch is
  /// exhausted. Throws ConfigError when batch_size is 0, or larger than both the dataset and
  /// the epoch's global length.
  torch::optional<std::vector<std::size_t>> next(std::size_t batch_size) override;

  /// Writes the state: kind, configuration fingerprint, seed, epoch, position, world size, rank
  /// (all under "medload_sampler/").
  void save(torch::serialize::OutputArchive& archive) const override;

  /// Restores a state written by `save` of a sampler with the same configuration; the sampler then
  /// yields exactly the indices that were left. Throws FormatError naming the key and both values
  /// when the state belongs to another kind, configuration, world size or rank.
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  /// The cursor that copies of a handle share.
  struct Cursor {
    std::uint64_t seed = 0;
    std::size_t epoch = 0;
    std::size_t position = 0;
    std::size_t world_size = 1;
    std::size_t rank = 0;
    bool drop_last = false;
    bool resume_pending = false;
  };

  StreamSampler(std::shared_ptr<detail::Stream> stream, std::uint64_t seed);
  /// A new handle on `other`'s stream with its own cursor (seed and epoch copied).
  StreamSampler(const StreamSampler& other, std::size_t world_size, std::size_t rank, bool drop_last);

  /// The stream of `sampler` (shared, not copied), for samplers composed of other samplers. Its
  /// prepared epoch belongs to whoever last called `ensure` on it: a composite prepares it with its
  /// own (seed, epoch) and reads it at once.
  static const std::shared_ptr<detail::Stream>& stream_of(const StreamSampler& sampler) noexcept;

  StreamSampler(const StreamSampler&) = default;
  StreamSampler& operator=(const StreamSampler&) = default;
  StreamSampler(StreamSampler&&) = default;
  StreamSampler& operator=(StreamSampler&&) = default;

 private:
  detail::Stream& prepared() const;
  void fill_local(std::size_t begin, std::size_t count, std::size_t* out) const;

  std::shared_ptr<detail::Stream> stream_;
  std::shared_ptr<Cursor> cursor_;
};

}  // namespace medload::samplers
