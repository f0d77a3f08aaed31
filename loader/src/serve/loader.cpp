// The loader's pipeline: the caller's thread draws index batches from the sampler and queues
// them; pool workers read samples (and their targets) straight into the batch tensors
// (converting to float, and masks to int64 or uint8, there), the last worker of a batch collates
// the boxes and landmarks and runs the augmentation hook; the caller takes batches in order.

#include "medload/loader/serve/loader.h"

#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>

#include "medload/core/check_range.h"
#include "medload/core/error.h"
#include "medload/core/thread_pool.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/samplers/stream_sampler.h"

namespace medload::loader {

void LoaderOptions::validate() const {
  if (batch_size == 0) throw ConfigError("LoaderOptions.batch_size must be > 0");
  if (augment && augment_targets) {
    throw ConfigError(
        "LoaderOptions.augment and LoaderOptions.augment_targets are both set; set one "
        "(augment_targets augments the images and their targets together)");
  }
  if (augment_strong && augment_targets) {
    throw ConfigError(
        "LoaderOptions.augment_strong and LoaderOptions.augment_targets are both set: a second view "
        "augments the images alone, and its targets would not follow it");
  }
  core::check_range("LoaderOptions.threads", threads, 0, 256);
  core::check_range("LoaderOptions.prefetch", prefetch, 1, 64);
}

struct Loader::Pending {
  std::vector<std::size_t> indices;
  std::vector<std::int64_t> ids;
  Batch batch;  // images, labels, ids and masks allocated by start_batch; boxes by finish
  // Each sample's boxes and landmarks as read, until the last worker collates them.
  std::vector<std::vector<Box>> boxes;
  std::vector<TargetState> box_states;
  std::vector<std::vector<Landmark>> landmarks;
  std::vector<TargetState> landmark_states;
  torch::TensorOptions target_options;  // the pinning of the batch's other tensors
  std::size_t index = 0;
  std::size_t epoch = 0;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> workers_left{0};
  std::atomic<bool> stop{false};  // cancelled, or a read failed
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::string error;  // the first failure, naming the sample

  void fail(std::string message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (error.empty()) error = std::move(message);
    stop = true;
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return done; });
  }

  // One worker's share: it takes the next unread sample until none is left or the batch is
  // stopped, and reads it into its slot of `images` (converted to float there for float output),
  // and its targets (read_targets). A failure stops the batch and names the sample.
  void read_samples(const SampleSource& source, const SampleLayout& layout, const SampleOutput& output,
                    const TargetKinds& targets);
  // Sample j's targets: the mask into its slot of `masks` (through `staging`), boxes and
  // landmarks into their per-sample vectors.
  void read_targets(const SampleSource& source, std::size_t j, const SampleLayout& layout, bool masks_uint8,
                    const TargetKinds& targets, std::vector<std::uint16_t>& staging);
  // Run by the last worker to end: collates the boxes and landmarks, runs the augmentation hook
  // (when there is one and nothing failed), then the batch is done.
  void finish(const LoaderOptions& options, const TargetKinds& targets, const SampleSource& source);
  // Runs `step` unless the batch is stopped; a failure stops it: "<what> batch 3 of epoch 0 (first
  // sample 17 (...) of c.h5) failed: ...".
  template <class Step>
  void run_step(const char* what, const SampleSource& source, Step&& step);
};

// The storage of batch images (and of masks, in a second instance). A tensor from take() hands
// its buffer back here when the last reference to it goes, and the next batch is read into it.
// Without this every batch was a fresh 6-32 MB allocation that the allocator maps and unmaps, so
// each batch paid a page fault per 4 KiB (and, in a VM that reports freed pages to its host, a
// round trip to the host per page): on such a VM, 512 px batches of 32 came at 420 samples/s with
// 2 threads, and most of the time was the kernel's. At most `keep` buffers wait here; more are
// freed, so memory stays bounded by the batches in flight and those the caller still holds.
class Loader::ImageBuffers : public std::enable_shared_from_this<ImageBuffers> {
 public:
  ImageBuffers(std::size_t bytes, std::size_t keep) : bytes_(round_up(bytes)), keep_(keep) {
    free_.reserve(keep);  // give_back() never allocates
  }
  ImageBuffers(const ImageBuffers&) = delete;
  ImageBuffers& operator=(const ImageBuffers&) = delete;
  ~ImageBuffers() {
    for (void* buffer : free_) std::free(buffer);
  }

  // An uninitialised tensor of `sizes` and `dtype` on a recycled buffer; at most `bytes` bytes.
  torch::Tensor take(at::IntArrayRef sizes, torch::ScalarType dtype) {
    void* buffer = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        buffer = free_.back();
        free_.pop_back();
      }
    }
    if (buffer == nullptr) {
      buffer = std::aligned_alloc(kAlignment, bytes_);
      if (buffer == nullptr) throw std::bad_alloc();
    }
    return torch::from_blob(
        buffer, sizes, [self = shared_from_this()](void* data) { self->give_back(data); },
        torch::TensorOptions().dtype(dtype));
  }

 private:
  static constexpr std::size_t kAlignment = 64;  // as LibTorch's CPU allocator
  static std::size_t round_up(std::size_t bytes) {
    return std::max<std::size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  }

  void give_back(void* buffer) noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < keep_) {
        free_.push_back(buffer);
        return;
      }
    }
    std::free(buffer);
  }

  std::size_t bytes_;
  std::size_t keep_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

namespace {

template <class T>
void to_float(const T* in, float* out, std::size_t n, float a, float b) {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]) * a + b;
}

void check_sampler_indices(const std::vector<std::size_t>& indices, std::size_t n) {
  for (std::size_t i : indices) {
    if (i >= n) {
      throw ConfigError("Loader: the sampler yielded index " + std::to_string(i) + " but the source has " +
                        std::to_string(n) + " samples");
    }
  }
}

// Each sample's rows of a padded [B,M,D] tensor: the first counts[b] of rows[b] (views).
std::vector<torch::Tensor> rows_per_sample(const torch::Tensor& rows, const torch::Tensor& counts) {
  std::vector<torch::Tensor> out;
  if (!rows.defined()) return out;
  const torch::Tensor n = counts.to(torch::kCPU).contiguous();
  const auto* count = n.data_ptr<std::int64_t>();
  out.reserve(static_cast<std::size_t>(n.numel()));
  for (std::int64_t b = 0; b < n.numel(); ++b) out.push_back(rows[b].slice(0, 0, count[b]));
  return out;
}

}  // namespace

std::vector<torch::Tensor> Batch::box_list() const { return rows_per_sample(boxes, box_counts); }
std::vector<torch::Tensor> Batch::landmark_list() const {
  return rows_per_sample(landmarks, landmark_counts);
}

void convert_mask(const std::uint16_t* in, std::size_t count, void* out, bool as_uint8) {
  if (!as_uint8) {
    auto* ids = static_cast<std::int64_t*>(out);
    for (std::size_t k = 0; k < count; ++k) ids[k] = in[k];
    return;
  }
  auto* ids = static_cast<std::uint8_t*>(out);
  std::uint16_t any_high = 0;  // one branch-free pass; the rare failure looks for its pixel after
  for (std::size_t k = 0; k < count; ++k) {
    any_high |= in[k];
    ids[k] = static_cast<std::uint8_t>(in[k]);
  }
  if (any_high > 255) {
    const std::size_t k =
        static_cast<std::size_t>(std::find_if(in, in + count, [](std::uint16_t v) { return v > 255; }) - in);
    throw FormatError("its mask has class id " + std::to_string(in[k]) + " at pixel " + std::to_string(k) +
                      ", which uint8 masks cannot hold (serve int64 masks)");
  }
}

namespace {

// The padded layout of one kind: `rows` float32 [B,M,D+1] (D coordinates, then the label;
// padding rows 0 with label -1), `counts` int64 [B], `valid` bool [B]; `write(target, float* row)`
// writes the D coordinates.
template <class Target, class Write>
void collate(const std::vector<std::vector<Target>>& targets, const std::vector<TargetState>& states,
             std::int64_t dims, const torch::TensorOptions& options, torch::Tensor& rows,
             torch::Tensor& counts, torch::Tensor& valid, Write write) {
  const auto size = static_cast<std::int64_t>(targets.size());
  std::size_t most = 0;
  for (const auto& t : targets) most = std::max(most, t.size());
  const auto m = static_cast<std::int64_t>(most);
  const std::int64_t width = dims + 1;
  rows = torch::zeros({size, m, width}, options.dtype(torch::kFloat32));
  counts = torch::empty({size}, options.dtype(torch::kInt64));
  valid = torch::empty({size}, options.dtype(torch::kBool));
  float* row = rows.data_ptr<float>();
  for (std::size_t b = 0; b < targets.size(); ++b) {
    for (std::size_t k = 0; k < most; ++k, row += width) {
      if (k >= targets[b].size()) {
        row[dims] = -1.0f;
        continue;
      }
      write(targets[b][k], row);
      row[dims] = static_cast<float>(targets[b][k].label);  // exact: class ids are at most 65535
    }
    counts.data_ptr<std::int64_t>()[b] = static_cast<std::int64_t>(targets[b].size());
    valid.data_ptr<bool>()[b] = states[b] == TargetState::kValid;
  }
}

}  // namespace

void collate_boxes(const std::vector<std::vector<Box>>& boxes, const std::vector<TargetState>& states,
                   const torch::TensorOptions& options, Batch& batch) {
  collate(boxes, states, 4, options, batch.boxes, batch.box_counts, batch.box_valid,
          [](const Box& box, float* out) {
            out[0] = static_cast<float>(box.x0);
            out[1] = static_cast<float>(box.y0);
            out[2] = static_cast<float>(box.x1);
            out[3] = static_cast<float>(box.y1);
          });
}

void collate_landmarks(const std::vector<std::vector<Landmark>>& landmarks,
                       const std::vector<TargetState>& states, const torch::TensorOptions& options,
                       Batch& batch) {
  collate(landmarks, states, 2, options, batch.landmarks, batch.landmark_counts, batch.landmark_valid,
          [](const Landmark& point, float* out) {
            out[0] = static_cast<float>(point.x);
            out[1] = static_cast<float>(point.y);
          });
}

void Loader::Pending::read_samples(const SampleSource& source, const SampleLayout& layout,
                                   const SampleOutput& output, const TargetKinds& targets) {
  const std::size_t count = indices.size();
  const std::size_t pixels = layout.pixels();
  const float a = output.scale / output.std;
  const float b = -output.mean / output.std;
  std::size_t sample = indices.front();
  try {
    // uint16 storage keeps the staging buffer aligned for both depths.
    std::vector<std::uint16_t> staging(output.as_float ? (layout.bytes() + 1) / 2 : 0);
    std::vector<std::uint16_t> mask_staging(
        targets.masks ? static_cast<std::size_t>(layout.height) * static_cast<std::size_t>(layout.width) : 0);
    torch::Tensor& images = batch.images;
    while (!stop) {
      const std::size_t j = next.fetch_add(1);
      if (j >= count) break;
      sample = indices[j];
      if (output.as_float) {
        source.read(sample, staging.data());
        float* out = images.data_ptr<float>() + j * pixels;
        if (layout.depth == PixelDepth::kUInt8) {
          to_float(reinterpret_cast<const std::uint8_t*>(staging.data()), out, pixels, a, b);
        } else {
          to_float(staging.data(), out, pixels, a, b);
        }
      } else {
        source.read(sample, images.data_ptr<std::uint8_t>() + j * pixels);
      }
      if (targets.any()) read_targets(source, j, layout, output.masks_uint8, targets, mask_staging);
    }
  } catch (const std::exception& e) {
    fail("reading " + source.describe(sample) + " failed: " + e.what());
  } catch (...) {
    fail("reading " + source.describe(sample) + " failed with an unknown exception");
  }
}

void Loader::Pending::read_targets(const SampleSource& source, std::size_t j, const SampleLayout& layout,
                                   bool masks_uint8, const TargetKinds& targets,
                                   std::vector<std::uint16_t>& staging) {
  const std::size_t sample = indices[j];
  if (targets.masks) {
    const TargetState state = source.read_mask(sample, staging.data());
    const std::size_t area = staging.size();
    void* out = masks_uint8 ? static_cast<void*>(batch.masks.data_ptr<std::uint8_t>() + j * area)
                            : static_cast<void*>(batch.masks.data_ptr<std::int64_t>() + j * area);
    convert_mask(staging.data(), area, out, masks_uint8);
    batch.mask_valid.data_ptr<bool>()[j] = state == TargetState::kValid;
  }
  if (targets.boxes) box_states[j] = source.boxes(sample, boxes[j]);
  if (targets.landmarks) landmark_states[j] = source.landmarks(sample, landmarks[j]);
}

template <class Step>
void Loader::Pending::run_step(const char* what, const SampleSource& source, Step&& step) {
  if (stop) return;
  const std::string where =
      std::string(what) + " batch " + std::to_string(index) + " of epoch " + std::to_string(epoch);
  try {
    step();
  } catch (const std::exception& e) {
    fail(where + " (first " + source.describe(indices.front()) + ") failed: " + e.what());
  } catch (...) {
    fail(where + " failed with an unknown exception");
  }
}

void Loader::Pending::finish(const LoaderOptions& options, const TargetKinds& targets,
                             const SampleSource& source) {
  if (targets.boxes || targets.landmarks) {
    run_step("collating the targets of", source, [&] {
      if (targets.boxes) collate_boxes(boxes, box_states, target_options, batch);
      if (targets.landmarks) collate_landmarks(landmarks, landmark_states, target_options, batch);
    });
  }
  if (options.augment_targets) {
    run_step("augmenting the images and targets of", source, [&] { options.augment_targets(batch); });
  }
  if (options.augment_strong) {
    // The strong view starts from the images as read, before the weak view changes them.
    run_step("augmenting the strong view of", source, [&] {
      batch.images_strong.copy_(batch.images);
      options.augment_strong(batch.images_strong, ids, static_cast<std::int64_t>(epoch));
    });
  }
  if (options.augment) {
    run_step("augmenting", source,
             [&] { options.augment(batch.images, ids, static_cast<std::int64_t>(epoch)); });
  }
  std::lock_guard<std::mutex> lock(mutex);
  done = true;
  cv.notify_all();
}

Loader::Loader(std::shared_ptr<const SampleSource> source, std::shared_ptr<Sampler> sampler,
               LoaderOptions options)
    : source_(std::move(source)), sampler_(std::move(sampler)), options_(std::move(options)) {
  options_.validate();
  if (!source_) throw ConfigError("Loader: the sample source is null");
  if (!sampler_) throw ConfigError("Loader: the sampler is null");
  layout_ = source_->layout();
  output_ = source_->output();
  label_columns_ = source_->label_columns();
  if (!output_.as_float && layout_.depth != PixelDepth::kUInt8) {
    throw ConfigError(
        "Loader: uint8 output needs 8-bit samples; this source stores 16-bit pixels (serve float32)");
  }
  if (!(output_.std > 0.0f))
    throw ConfigError("Loader: the source's std must be > 0, got " + std::to_string(output_.std));
  check_targets();
  pinned_ = options_.pin_memory && torch::cuda::is_available();
  if (auto* stream = dynamic_cast<samplers::StreamSampler*>(sampler_.get())) {
    epoch_ = stream->epoch();
    returned_ = drawn_ = stream->position() / options_.batch_size;
  }
  if (!pinned_) {
    // Enough for the batches in flight, the one the caller holds and the one it just dropped.
    const std::size_t element = output_.as_float ? sizeof(float) : 1;
    buffers_ = std::make_shared<ImageBuffers>(options_.batch_size * layout_.pixels() * element,
                                              options_.prefetch + 2);
    if (options_.augment_strong) {
      strong_buffers_ = std::make_shared<ImageBuffers>(options_.batch_size * layout_.pixels() * element,
                                                       options_.prefetch + 2);
    }
    if (targets_.masks) {
      const std::size_t mask_element = output_.masks_uint8 ? 1 : sizeof(std::int64_t);
      const auto area = static_cast<std::size_t>(layout_.height) * static_cast<std::size_t>(layout_.width);
      mask_buffers_ =
          std::make_shared<ImageBuffers>(options_.batch_size * area * mask_element, options_.prefetch + 2);
    }
  }
  pool_ = std::make_unique<ThreadPool>(core::resolve_threads(options_.threads));
}

Loader::Loader(const CacheDataset& dataset, std::shared_ptr<Sampler> sampler, LoaderOptions options)
    : Loader(dataset.source(), std::move(sampler), std::move(options)) {}

void Loader::check_targets() {
  targets_ = source_->targets();
  if (targets_.any() && options_.augment_strong) {
    throw ConfigError(
        "LoaderOptions.augment_strong makes a second view of the images alone, but this source serves "
        "targets (masks, boxes or landmarks) that would not follow it: serve without targets "
        "(DatasetOptions.targets = false)");
  }
  if (targets_.any() && options_.augment) {
    throw ConfigError(
        "LoaderOptions.augment augments the images alone, but this source serves targets (masks, boxes or "
        "landmarks) that a warp would leave behind: set LoaderOptions.augment_targets instead "
        "(medload::augment::make_target_hook), or serve without targets (DatasetOptions.targets = false)");
  }
  if (targets_.masks && output_.masks_uint8 && targets_.classes > 256) {
    throw ConfigError("uint8 masks hold class ids 0..255, but the source has " +
                      std::to_string(targets_.classes) + " target classes: serve int64 masks");
  }
}

Loader::~Loader() {
  for (auto& pending : in_flight_) pending->stop = true;
  pool_.reset();  // the cancelled jobs return at once; then the workers are joined
}

void Loader::cancel_in_flight() {
  for (auto& pending : in_flight_) pending->stop = true;
  for (auto& pending : in_flight_) pending->wait();
  in_flight_.clear();
}

void Loader::set_epoch(std::size_t epoch) {
  cancel_in_flight();
  if (auto* stream = dynamic_cast<samplers::StreamSampler*>(sampler_.get())) {
    stream->set_epoch(epoch);
  } else {
    sampler_->reset(torch::nullopt);
  }
  epoch_ = epoch;
  drawn_ = returned_ = 0;
  sampler_done_ = finished_ = false;
}

void Loader::load_state(const LoaderState& state) {
  set_epoch(state.epoch);
  for (std::size_t b = 0; b < state.batches; ++b) {
    auto indices = sampler_->next(options_.batch_size);
    if (!indices || (options_.drop_last && indices->size() < options_.batch_size)) {
      throw ConfigError("Loader::load_state: epoch " + std::to_string(state.epoch) + " has only " +
                        std::to_string(b) + " batches, the state is at batch " +
                        std::to_string(state.batches));
    }
  }
  drawn_ = returned_ = state.batches;
}

void Loader::start_batch(std::vector<std::size_t> indices) {
  check_sampler_indices(indices, source_->size());
  auto pending = std::make_shared<Pending>();
  allocate(*pending, static_cast<std::int64_t>(indices.size()));
  Batch& batch = pending->batch;
  const std::size_t label_width = std::max<std::size_t>(1, label_columns_);
  auto* labels = batch.labels.data_ptr<std::int64_t>();
  auto* ids = batch.sample_ids.data_ptr<std::int64_t>();
  pending->ids.resize(indices.size());
  for (std::size_t j = 0; j < indices.size(); ++j) {
    source_->label(indices[j], labels + j * label_width);
    ids[j] = pending->ids[j] = source_->sample_id(indices[j]);
  }
  bool* valid = batch.label_valid.data_ptr<bool>();
  for (std::size_t k = 0; k < indices.size() * label_width; ++k) valid[k] = labels[k] >= 0;
  pending->indices = std::move(indices);
  pending->index = batch.index = drawn_++;
  pending->epoch = batch.epoch = epoch_;

  const std::size_t workers = std::min(pool_->size(), pending->indices.size());
  pending->workers_left = workers;
  const SampleLayout layout = layout_;
  const SampleOutput output = output_;
  const TargetKinds targets = targets_;
  const LoaderOptions* options = &options_;  // the loader outlives its jobs
  const SampleSource* source = source_.get();
  for (std::size_t w = 0; w < workers; ++w) {
    pool_->submit([pending, layout, output, targets, options, source] {
      pending->read_samples(*source, layout, output, targets);
      if (pending->workers_left.fetch_sub(1) == 1) pending->finish(*options, targets, *source);
    });
  }
  in_flight_.push_back(std::move(pending));
}

void Loader::allocate(Pending& pending, std::int64_t size) const {
  Batch& batch = pending.batch;
  const auto options = torch::TensorOptions().pinned_memory(pinned_);
  const auto image_type = output_.as_float ? torch::kFloat32 : torch::kUInt8;
  const std::vector<std::int64_t> image_sizes{size, layout_.channels, layout_.height, layout_.width};
  batch.images = buffers_ ? buffers_->take(image_sizes, image_type)
                          : torch::empty(image_sizes, options.dtype(image_type));
  batch.labels = label_columns_ == 0 ? torch::empty({size}, options.dtype(torch::kInt64))
                                     : torch::empty({size, static_cast<std::int64_t>(label_columns_)},
                                                    options.dtype(torch::kInt64));
  batch.label_valid = torch::empty(batch.labels.sizes(), options.dtype(torch::kBool));
  batch.sample_ids = torch::empty({size}, options.dtype(torch::kInt64));
  if (options_.augment_strong) {
    batch.images_strong = strong_buffers_ ? strong_buffers_->take(image_sizes, image_type)
                                          : torch::empty(image_sizes, options.dtype(image_type));
  }
  if (targets_.masks) {
    const auto mask_type = output_.masks_uint8 ? torch::kUInt8 : torch::kInt64;
    const std::vector<std::int64_t> mask_sizes{size, 1, layout_.height, layout_.width};
    batch.masks = mask_buffers_ ? mask_buffers_->take(mask_sizes, mask_type)
                                : torch::empty(mask_sizes, options.dtype(mask_type));
    batch.mask_valid = torch::empty({size}, options.dtype(torch::kBool));
  }
  const auto n = static_cast<std::size_t>(size);
  if (targets_.boxes) {
    pending.boxes.resize(n);
    pending.box_states.assign(n, TargetState::kNone);
  }
  if (targets_.landmarks) {
    pending.landmarks.resize(n);
    pending.landmark_states.assign(n, TargetState::kNone);
  }
  pending.target_options = options;
}

void Loader::fill() {
  while (!sampler_done_ && in_flight_.size() < options_.prefetch) {
    auto indices = sampler_->next(options_.batch_size);
    if (!indices || indices->empty() || (options_.drop_last && indices->size() < options_.batch_size)) {
      sampler_done_ = true;
      break;
    }
    start_batch(std::move(*indices));
  }
}

torch::optional<Batch> Loader::next() {
  if (finished_) return torch::nullopt;
  fill();
  if (in_flight_.empty()) {
    finished_ = true;
    return torch::nullopt;
  }
  std::shared_ptr<Pending> pending = std::move(in_flight_.front());
  in_flight_.pop_front();
  fill();  // keep `prefetch` batches in flight while the caller works on this one
  pending->wait();
  ++returned_;
  if (!pending->error.empty()) {
    throw WorkerError("medload loader: " + pending->error);
  }
  return std::move(pending->batch);
}

Loader::Iterator::Iterator(Loader* loader) : loader_(loader) {
  if (loader_ != nullptr) ++*this;
}

Loader::Iterator& Loader::Iterator::operator++() {
  // Let go of the batch the loop is done with before waiting for the next: when the caller kept
  // no copy, its storage serves a batch being read now, so a loop holds prefetch + 1 batches.
  current_.reset();
  current_ = loader_->next();
  if (!current_) loader_ = nullptr;
  return *this;
}

Loader::Iterator Loader::begin() {
  if (finished_) set_epoch(epoch_ + 1);
  return Iterator(this);
}

}  // namespace medload::loader
