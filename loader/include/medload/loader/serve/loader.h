#pragma once
/// medload's loader: sampler -> batches of indices -> parallel reads on a thread pool ->
/// collated [B,1,H,W] tensors and, when the source has them, targets (label masks, boxes,
/// landmarks) (+ an augmentation hook), prefetched a few batches ahead and returned in sampler
/// order.
///
/// - Memory is bounded: at most `prefetch` batches are being read while the caller holds the one
///   it was given, whatever the size of the cache (nothing else is cached).
/// - Reads go straight from the source into the batch tensor (pinned when CUDA is available),
///   so nothing is copied per worker; masks too (converted from uint16 per sample).
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
#include "medload/loader/ingest/annotation.h"
#include "medload/loader/serve/sample_source.h"

namespace medload::loader {

class CacheDataset;

/// One collated batch. Targets (docs/serve.md, "Targets") are undefined tensors when the source
/// serves no target of that kind (SampleSource::targets()); B is the batch size.
struct Batch {
  /// float32 [B,C,H,W] (normalized as the source says), or uint8 [B,C,H,W]; C is 1 for grayscale.
  torch::Tensor images;
  /// With LoaderOptions::augment_strong: the same samples as read (one read per sample), augmented
  /// by that hook, the same shape and type as images (the strong view of consistency training;
  /// images is then the weak view). Undefined otherwise.
  torch::Tensor images_strong;
  /// int64 [B] class labels (-1 = unlabeled), or int64 [B,K] rows for multi-label data: 1, 0,
  /// or -1 where that label is not known for the sample (an unlabeled sample's row is all -1).
  torch::Tensor labels;
  /// bool, the shape of labels: the label is known (labels >= 0). A loss ignores the others:
  /// `(bce(logits, labels.clamp_min(0).to(kFloat), reduction none) * label_valid).sum() /
  /// label_valid.sum().clamp_min(1)`.
  torch::Tensor label_valid;
  /// int64 [B] sample ids (rows of the cache).
  torch::Tensor sample_ids;
  /// Position of this batch in its epoch (0-based).
  std::size_t index = 0;
  /// Epoch the batch belongs to.
  std::size_t epoch = 0;

  /// int64 [B,1,H,W] class ids per pixel (0 = background), or uint8 with
  /// SampleOutput::masks_uint8; all 0 where mask_valid is false.
  torch::Tensor masks;
  /// bool [B]: the sample's mask is known (TargetState::kValid). A loss skips the others: false
  /// means unknown (none given, or given and unusable), never "all background".
  torch::Tensor mask_valid;
  /// float32 [B,M,5], one row per box: x0, y0, x1, y1 in output-grid pixels (continuous: pixel
  /// (i, j) covers [j, j+1) x [i, i+1)), then the box's class id (>= 1; exact, ids are below
  /// 2^24). M = the most boxes of a sample in this batch as read (0 when no sample has any;
  /// augmentation may drop boxes but keeps M). Rows past box_counts[b] are padding, exactly
  /// (0, 0, 0, 0, -1): a label below 0 marks them. torchvision: boxes = row[:, :4], labels =
  /// row[:, 4].to(int64).
  torch::Tensor boxes;
  /// int64 [B] boxes of each sample (0..M): the rows of boxes[b] before the padding.
  torch::Tensor box_counts;
  /// bool [B]: the sample's boxes are known; valid with a count of 0 is a negative image.
  torch::Tensor box_valid;
  /// float32 [B,L,3], one row per landmark: x, y in output-grid pixels (as boxes), then the class
  /// id (>= 1). L as M for boxes; rows past landmark_counts[b] are padding, exactly (0, 0, -1).
  torch::Tensor landmarks;
  /// int64 [B] landmarks of each sample (0..L).
  torch::Tensor landmark_counts;
  /// bool [B]: the sample's landmarks are known.
  torch::Tensor landmark_valid;

  /// The boxes one tensor per sample, float32 [n_b,5] (x0, y0, x1, y1, label), n_b =
  /// box_counts[b]: the per-image layout detection models take. Slices of `boxes` without its
  /// padding: they share its storage and device (clone one to keep it past a change to the
  /// batch). Empty when boxes is undefined.
  std::vector<torch::Tensor> box_list() const;
  /// The same for landmarks: float32 [n_b,3] (x, y, label) per sample, slices of `landmarks`.
  std::vector<torch::Tensor> landmark_list() const;
};

// ---- Collating targets: the one home of Batch's padded layout -----------------------------------
// What medload's Loader and CollateBatch use, for sources and tools that collate targets of their
// own (medload preview).

/// Writes `count` uint16 class ids at `out` as int64 (`as_uint8` false) or uint8. uint8: throws
/// FormatError naming the first id above 255 (the caller adds the sample).
void convert_mask(const std::uint16_t* in, std::size_t count, void* out, bool as_uint8);

/// Sets batch.boxes float32 [B,M,5] (x0, y0, x1, y1, label; padding rows (0, 0, 0, 0, -1)),
/// box_counts [B], box_valid [B] from each sample's boxes and state (boxes.size() ==
/// states.size() == B), allocated with `options` (device, pinning).
void collate_boxes(const std::vector<std::vector<Box>>& boxes, const std::vector<TargetState>& states,
                   const torch::TensorOptions& options, Batch& batch);

/// The same for landmarks: batch.landmarks [B,L,3] (x, y, label; padding (0, 0, -1)),
/// landmark_counts, landmark_valid.
void collate_landmarks(const std::vector<std::vector<Landmark>>& landmarks,
                       const std::vector<TargetState>& states, const torch::TensorOptions& options,
                       Batch& batch);

/// Augmentation hook: called once per batch on a worker thread, after collation and before the
/// batch is handed out, with the batch's images (modify in place or assign a new tensor of the
/// same shape), its sample ids and the epoch. Seed per-sample randomness on (seed, epoch, id) so
/// results do not depend on thread count or batch composition. An exception thrown here surfaces
/// from Loader::next() as a WorkerError naming the batch.
using AugmentHook = std::function<void(torch::Tensor& images, const std::vector<std::int64_t>& sample_ids,
                                       std::int64_t epoch)>;

/// Augmentation hook for images and their targets: called once per batch on a worker thread,
/// after collation and before the batch is handed out, with the whole batch (images, targets,
/// sample ids, epoch; modify in place, keeping the shapes: a target dropped by the warp leaves
/// its row as padding and lowers the count). medload::augment::make_target_hook is one. Seeding
/// and errors as AugmentHook.
using TargetAugmentHook = std::function<void(Batch& batch)>;

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
  /// Optional per-batch augmentation of the images alone (see AugmentHook). Not allowed with a
  /// source that serves targets: a warp would move the images away from their masks and boxes.
  AugmentHook augment;
  /// Optional per-batch augmentation of images and targets together (see TargetAugmentHook);
  /// at most one of augment and augment_targets.
  TargetAugmentHook augment_targets;
  /// Optional second view (weak/strong consistency training, docs/semisupervised.md): every
  /// batch then also carries Batch::images_strong, a copy of the images made before `augment`
  /// runs, augmented by this hook (medload::augment::make_two_view_hooks makes the pair).
  /// Samples are read once. Not with augment_targets or a source that serves targets.
  AugmentHook augment_strong;

  /// Throws ConfigError naming the field and the limit (or both hooks when both are set).
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

  /// Serves `source` in the order `sampler` yields (indices are positions in the source). Throws
  /// ConfigError for bad options, a null source or sampler, uint8 output of 16-bit samples,
  /// LoaderOptions::augment or augment_strong with a source that serves targets, uint8 masks of
  /// more than 256 classes.
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
  void allocate(Pending& pending, std::int64_t size) const;  // the batch's tensors, before the reads
  void check_targets();                                      // targets_, and what they rule out

  std::shared_ptr<const SampleSource> source_;
  std::shared_ptr<Sampler> sampler_;
  LoaderOptions options_;
  SampleLayout layout_;
  SampleOutput output_;
  TargetKinds targets_;
  std::size_t label_columns_ = 0;
  bool pinned_ = false;
  std::size_t epoch_ = 0;
  std::size_t drawn_ = 0;     // batches drawn from the sampler in this epoch
  std::size_t returned_ = 0;  // batches returned by next() in this epoch
  bool sampler_done_ = false;
  bool finished_ = false;
  std::deque<std::shared_ptr<Pending>> in_flight_;
  std::shared_ptr<ImageBuffers> buffers_;         // shared with the batches' tensors, which may outlive us
  std::shared_ptr<ImageBuffers> strong_buffers_;  // the same for the strong view (null without one)
  std::shared_ptr<ImageBuffers> mask_buffers_;    // the same for masks (null without masks)
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace medload::loader
