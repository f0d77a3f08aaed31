#pragma once
/// medload's loader: sampler -> batches of indices -> parallel reads on a thread pool ->
/// collated [B,1,H,W] tensors (+ an augmentation hook), prefetched a few batches ahead and
/// returned in sampler order.
///
/// - Memory is bounded: at most `prefetch` batches are being read while the caller holds the one
///   it was given, whatever the size of the cache (nothing else is cached).
/// - Reads go straight from the source into the batch tensor (pinned when CUDA is available),
///   so nothing is copied per worker.
/// - A failed read (or augmentation) is rethrown from `next()` as a WorkerError that names the
///   sample and the file, when the caller reaches that batch.
/// - Destroying the loader at any point cancels the queued reads and joins its threads.
/// - `state()` / `load_state()` resume exactly inside an epoch for samplers whose epoch order is a
///   function of (seed, epoch): every medload sampler and torch's SequentialSampler (not torch's
///   RandomSampler, which draws a new permutation on every reset).

#include <torch/data/samplers/base.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "medload/core/thread_pool.h"
#include "medload/loader/serve/sample_source.h"

namespace medload::loader {

class CacheDataset;

/// One collated batch.
struct Batch {
  /// float32 [B,C,H,W] (normalized as the source says), or uint8 [B,C,H,W]; C is 1 for grayscale.
  torch::Tensor images;
  /// int64 [B] class labels (-1 = unlabeled), or int64 [B,K] 0/1 rows for multi-label data.
  torch::Tensor labels;
  /// int64 [B] sample ids (rows of the cache).
  torch::Tensor sample_ids;
  /// Position of this batch in its epoch (0-based).
  std::size_t index = 0;
  /// Epoch the batch belongs to.
  std::size_t epoch = 0;
};

/// Augmentation hook: called once per batch on a worker thread, after collation and before the
/// batch is handed out, with the batch's images (modify in place or assign a new tensor of the
/// same shape), its sample ids and the epoch. Seed per-sample randomness on (seed, epoch, id) so
/// results do not depend on thread count or batch composition. An exception thrown here surfaces
/// from Loader::next() as a WorkerError naming the batch.
using AugmentHook = std::function<void(torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                       std::int64_t epoch)>;

/// Options of Loader.
struct LoaderOptions {
  /// Samples per batch (> 0).
  std::size_t batch_size = 32;
  /// Reader threads (0 = one per hardware thread, at most 256).
  std::size_t threads = 0;
  /// Batches read ahead of the caller (>= 1, at most 64).
  std::size_t prefetch = 2;
  /// Drop the last batch of an epoch when it is smaller than batch_size.
  bool drop_last = false;
  /// Allocate batches in pinned (page-locked) memory when CUDA is available (ignored otherwise).
  bool pin_memory = true;
  /// Optional per-batch augmentation (see AugmentHook).
  AugmentHook augment;

  /// Throws ConfigError naming the field and the limit.
  void validate() const;
};

/// Where a loader is inside its epochs: enough to resume exactly.
struct LoaderState {
  /// Current epoch.
  std::size_t epoch = 0;
  /// Batches of that epoch already returned by next().
  std::size_t batches = 0;
};

/// The loader (see the file comment). Not copyable; one consumer thread calls next().
class Loader {
 public:
  using Sampler = torch::data::samplers::Sampler<>;

  /// Serves `source` in the order `sampler` yields (indices are positions in the source).
  Loader(std::shared_ptr<const SampleSource> source, std::shared_ptr<Sampler> sampler, LoaderOptions options);
  /// Serves a CacheDataset (one split of a cache).
  Loader(const CacheDataset& dataset, std::shared_ptr<Sampler> sampler, LoaderOptions options);
  /// Any sampler by value (a medload sampler's copies share its cursor, so the caller's copy can
  /// still be inspected; the loader drives its own).
  template <class S, class = std::enable_if_t<std::is_base_of_v<Sampler, std::decay_t<S>>>>
  Loader(std::shared_ptr<const SampleSource> source, S&& sampler, LoaderOptions options)
      : Loader(std::move(source), std::make_shared<std::decay_t<S>>(std::forward<S>(sampler)),
               std::move(options)) {}
  template <class S, class = std::enable_if_t<std::is_base_of_v<Sampler, std::decay_t<S>>>>
  Loader(const CacheDataset& dataset, S&& sampler, LoaderOptions options)
      : Loader(dataset, std::make_shared<std::decay_t<S>>(std::forward<S>(sampler)), std::move(options)) {}

  /// Cancels queued reads and joins the threads (safe at any point of an epoch).
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch of the current epoch, or nullopt when the epoch is over. Throws WorkerError
  /// naming the sample and file when a read of this batch failed (the loader then continues
  /// with the next batch on the next call), ConfigError when the sampler yields an index
  /// outside the source.
  torch::optional<Batch> next();

  /// Starts epoch `epoch` from its first batch (medload samplers: set_epoch; other samplers:
  /// reset). Batches already read ahead are discarded.
  void set_epoch(std::size_t epoch);
  /// The current epoch.
  std::size_t epoch() const noexcept { return epoch_; }

  /// The position to checkpoint: (epoch, batches returned in it).
  LoaderState state() const noexcept { return {epoch_, returned_}; }
  /// Resumes at `state`: the next batch is the one that followed it (requires a sampler whose
  /// epoch order depends on (seed, epoch) only; see the file comment).
  void load_state(const LoaderState& state);

  /// The source being served.
  const SampleSource& source() const noexcept { return *source_; }
  /// The options.
  const LoaderOptions& options() const noexcept { return options_; }

  /// Input iterator over the rest of the current epoch; `begin()` on a finished epoch starts the
  /// next one (so `for (Batch& b : loader)` once per epoch walks the epochs in turn).
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Batch& operator*() { return *current_; }
    Batch* operator->() { return &*current_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return loader_ == other.loader_; }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    friend class Loader;
    explicit Iterator(Loader* loader);
    Loader* loader_ = nullptr;  // nullptr = end
    torch::optional<Batch> current_;
  };
  /// See Iterator.
  Iterator begin();
  /// See Iterator.
  Iterator end() { return Iterator(nullptr); }

  struct Pending;      // a batch being read (loader.cpp)
  class ImageBuffers;  // batch image storage that returns to the loader (loader.cpp)

 private:
  void fill();
  void cancel_in_flight();
  void start_batch(std::vector<std::size_t> indices);

  std::shared_ptr<const SampleSource> source_;
  std::shared_ptr<Sampler> sampler_;
  LoaderOptions options_;
  SampleLayout layout_;
  SampleOutput output_;
  std::size_t label_columns_ = 0;
  bool pinned_ = false;
  std::size_t epoch_ = 0;
  std::size_t drawn_ = 0;     // batches drawn from the sampler in this epoch
  std::size_t returned_ = 0;  // batches returned by next() in this epoch
  bool sampler_done_ = false;
  bool finished_ = false;
  std::deque<std::shared_ptr<Pending>> in_flight_;
  std::shared_ptr<ImageBuffers> buffers_;  // shared with the batches' tensors, which may outlive us
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace medload::loader
