// The loader's pipeline: the caller's thread draws index batches from the sampler and queues
// them; pool workers read samples straight into the batch tensor (converting to float there),
// the last worker of a batch runs the augmentation hook; the caller takes batches in order.

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
  core::check_range("LoaderOptions.threads", threads, 0, 256);
  core::check_range("LoaderOptions.prefetch", prefetch, 1, 64);
}

struct Loader::Pending {
  std::vector<std::size_t> indices;
  std::vector<std::int64_t> ids;
  torch::Tensor images;
  torch::Tensor labels;
  torch::Tensor sample_ids;
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
  // stopped, and reads it into its slot of `images` (converted to float there for float output).
  // A failure stops the batch and names the sample.
  void read_samples(const SampleSource& source, const SampleLayout& layout, const SampleOutput& output);
  // Run by the last worker to end: the augmentation hook (when there is one and nothing failed),
  // then the batch is done.
  void finish(const AugmentHook* hook, const SampleSource& source);
};

// The storage of batch images. A tensor from take() hands its buffer back here when the last
// reference to it goes, and the next batch is read into it. Without this every batch was a fresh
// 6-32 MB allocation that the allocator maps and unmaps, so each batch paid a page fault per 4 KiB
// (and, in a VM that reports freed pages to its host, a round trip to the host per page): on such a
// VM, 512 px batches of 32 came at 420 samples/s with 2 threads, and most of the time was the
// kernel's. At most `keep` buffers wait here; more are freed, so memory stays bounded by the
// batches in flight and those the caller still holds.
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

}  // namespace

void Loader::Pending::read_samples(const SampleSource& source, const SampleLayout& layout,
                                   const SampleOutput& output) {
  const std::size_t count = indices.size();
  const std::size_t pixels = layout.pixels();
  const float a = output.scale / output.std;
  const float b = -output.mean / output.std;
  std::size_t sample = indices.front();
  try {
    // uint16 storage keeps the staging buffer aligned for both depths.
    std::vector<std::uint16_t> staging(output.as_float ? (layout.bytes() + 1) / 2 : 0);
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
    }
  } catch (const std::exception& e) {
    fail("reading " + source.describe(sample) + " failed: " + e.what());
  } catch (...) {
    fail("reading " + source.describe(sample) + " failed with an unknown exception");
  }
}

void Loader::Pending::finish(const AugmentHook* hook, const SampleSource& source) {
  if (hook != nullptr && !stop) {
    try {
      (*hook)(images, ids, static_cast<std::int64_t>(epoch));
    } catch (const std::exception& e) {
      fail("augmenting batch " + std::to_string(index) + " of epoch " + std::to_string(epoch) + " (first " +
           source.describe(indices.front()) + ") failed: " + e.what());
    } catch (...) {
      fail("augmenting batch " + std::to_string(index) + " of epoch " + std::to_string(epoch) +
           " failed with an unknown exception");
    }
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
  }
  pool_ = std::make_unique<ThreadPool>(core::resolve_threads(options_.threads));
}

Loader::Loader(const CacheDataset& dataset, std::shared_ptr<Sampler> sampler, LoaderOptions options)
    : Loader(dataset.source(), std::move(sampler), std::move(options)) {}

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
  const auto batch = static_cast<std::int64_t>(indices.size());
  auto options = torch::TensorOptions().pinned_memory(pinned_);
  const auto image_type = output_.as_float ? torch::kFloat32 : torch::kUInt8;
  const std::vector<std::int64_t> image_sizes{batch, layout_.channels, layout_.height, layout_.width};
  pending->images = buffers_ ? buffers_->take(image_sizes, image_type)
                             : torch::empty(image_sizes, options.dtype(image_type));
  pending->labels = label_columns_ == 0 ? torch::empty({batch}, options.dtype(torch::kInt64))
                                        : torch::empty({batch, static_cast<std::int64_t>(label_columns_)},
                                                       options.dtype(torch::kInt64));
  pending->sample_ids = torch::empty({batch}, options.dtype(torch::kInt64));
  const std::size_t label_width = std::max<std::size_t>(1, label_columns_);
  auto* labels = pending->labels.data_ptr<std::int64_t>();
  auto* ids = pending->sample_ids.data_ptr<std::int64_t>();
  pending->ids.resize(indices.size());
  for (std::size_t j = 0; j < indices.size(); ++j) {
    source_->label(indices[j], labels + j * label_width);
    ids[j] = pending->ids[j] = source_->sample_id(indices[j]);
  }
  pending->indices = std::move(indices);
  pending->index = drawn_++;
  pending->epoch = epoch_;

  const std::size_t workers = std::min(pool_->size(), pending->indices.size());
  pending->workers_left = workers;
  const SampleLayout layout = layout_;
  const SampleOutput output = output_;
  const AugmentHook* hook = options_.augment ? &options_.augment : nullptr;  // the loader outlives its jobs
  const SampleSource* source = source_.get();
  for (std::size_t w = 0; w < workers; ++w) {
    pool_->submit([pending, layout, output, hook, source] {
      pending->read_samples(*source, layout, output);
      if (pending->workers_left.fetch_sub(1) == 1) pending->finish(hook, *source);
    });
  }
  in_flight_.push_back(std::move(pending));
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
  Batch batch;
  batch.images = std::move(pending->images);
  batch.labels = std::move(pending->labels);
  batch.sample_ids = std::move(pending->sample_ids);
  batch.index = pending->index;
  batch.epoch = pending->epoch;
  return batch;
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
