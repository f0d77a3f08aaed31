#include "medload/samplers/stream_sampler.h"

#include <torch/serialize/archive.h>

#include <algorithm>
#include <string>

#include "medload/core/check_range.h"
#include "medload/core/error.h"

namespace medload::samplers {
namespace {

const std::string kPrefix = "medload_sampler/";

std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  if (!archive.try_read(kPrefix + key, value) || !value.isInt()) {
    throw FormatError("sampler state: missing or non-integer key \"" + kPrefix + key + "\"");
  }
  return value.toInt();
}

void check_equal(const std::string& key, std::int64_t saved, std::int64_t expected) {
  if (saved != expected) {
    throw FormatError("sampler state: \"" + kPrefix + key + "\" is " + std::to_string(saved) +
                      " in the saved state but " + std::to_string(expected) +
                      " in this sampler; a state only loads into a sampler built the same way");
  }
}

}  // namespace

StreamSampler::StreamSampler(std::shared_ptr<detail::Stream> stream, std::uint64_t seed)
    : stream_(std::move(stream)), cursor_(std::make_shared<Cursor>()) {
  cursor_->seed = seed;
}

StreamSampler::StreamSampler(const StreamSampler& other, std::size_t world_size, std::size_t rank,
                             bool drop_last)
    : stream_(other.stream_), cursor_(std::make_shared<Cursor>()) {
  if (world_size == 0) throw ConfigError("DistributedOptions.world_size = 0: must be >= 1");
  core::check_range("DistributedOptions.rank", rank, 0, world_size - 1);
  if (other.cursor_->world_size != 1) {
    throw ConfigError("DistributedSampler: the sampler to wrap is already distributed (world_size " +
                      std::to_string(other.cursor_->world_size) + "); wrap the plain sampler");
  }
  cursor_->seed = other.cursor_->seed;
  cursor_->epoch = other.cursor_->epoch;
  cursor_->world_size = world_size;
  cursor_->rank = rank;
  cursor_->drop_last = drop_last;
}

const std::shared_ptr<detail::Stream>& StreamSampler::stream_of(const StreamSampler& sampler) noexcept {
  return sampler.stream_;
}

detail::Stream& StreamSampler::prepared() const {
  stream_->ensure(cursor_->seed, cursor_->epoch);
  return *stream_;
}

void StreamSampler::set_epoch(std::size_t epoch) {
  cursor_->epoch = epoch;
  cursor_->position = 0;
  cursor_->resume_pending = false;
}

std::size_t StreamSampler::epoch() const noexcept { return cursor_->epoch; }
std::uint64_t StreamSampler::seed() const noexcept { return cursor_->seed; }
std::size_t StreamSampler::position() const noexcept { return cursor_->position; }
std::size_t StreamSampler::dataset_size() const { return stream_->dataset_size(); }
std::string StreamSampler::kind() const { return stream_->kind(); }
bool StreamSampler::balances_classes() const { return stream_->balances_classes(); }
std::size_t StreamSampler::world_size() const noexcept { return cursor_->world_size; }
std::size_t StreamSampler::rank() const noexcept { return cursor_->rank; }

std::size_t StreamSampler::size() const {
  const detail::Stream& stream = prepared();
  const std::size_t world = cursor_->world_size;
  if (world == 1) return stream.length();
  const std::size_t block = stream.block();
  const std::size_t blocks = stream.length() / block;
  const std::size_t local_blocks = cursor_->drop_last ? blocks / world : (blocks + world - 1) / world;
  return local_blocks * block;
}

void StreamSampler::fill_local(std::size_t begin, std::size_t count, std::size_t* out) const {
  const detail::Stream& stream = prepared();
  const std::size_t world = cursor_->world_size;
  if (world == 1) {
    stream.fill(begin, count, out);
    return;
  }
  // Rank r takes blocks r, r + W, r + 2W, ... of the one global stream; with padding, the last
  // round wraps to the stream's start so that every rank gets as many indices as the others.
  const std::size_t block = stream.block();
  const std::size_t blocks = stream.length() / block;
  if (block == 1) {
    // One strided run up to the end of the stream, then the wrapped padding (< W indices).
    const std::size_t rank = cursor_->rank;
    const std::size_t in_stream = blocks > rank ? (blocks - rank + world - 1) / world : 0;
    const std::size_t direct = begin < in_stream ? std::min(count, in_stream - begin) : 0;
    if (direct > 0) stream.fill_strided(begin * world + rank, world, direct, out);
    for (std::size_t i = direct; i < count; ++i)
      stream.fill(((begin + i) * world + rank) % blocks, 1, out + i);
    return;
  }
  std::size_t done = 0;
  while (done < count) {
    const std::size_t local = begin + done;
    const std::size_t local_block = local / block;
    const std::size_t offset = local % block;
    std::size_t global_block = local_block * world + cursor_->rank;
    if (global_block >= blocks) global_block %= blocks;
    const std::size_t run = std::min(block - offset, count - done);
    stream.fill(global_block * block + offset, run, out + done);
    done += run;
  }
}

std::vector<std::size_t> StreamSampler::epoch_indices() const {
  std::vector<std::size_t> indices(size());
  fill_local(0, indices.size(), indices.data());
  return indices;
}

void StreamSampler::reset(torch::optional<std::size_t> new_size) {
  if (new_size.has_value() && *new_size != dataset_size()) {
    throw ConfigError("sampler reset: new_size = " + std::to_string(*new_size) + ", but this " + kind() +
                      " sampler was built for a dataset of " + std::to_string(dataset_size()) +
                      " samples; build a new sampler for a different dataset");
  }
  if (cursor_->resume_pending) {
    cursor_->resume_pending = false;
    return;
  }
  cursor_->position = 0;
}

torch::optional<std::vector<std::size_t>> StreamSampler::next(std::size_t batch_size) {
  if (batch_size == 0) throw ConfigError("sampler next: batch_size = 0; must be >= 1");
  // A batch larger than the dataset is a configuration mistake, unless the epoch was explicitly
  // made longer than the dataset (num_samples of a sampler drawing with replacement).
  if (batch_size > std::max(dataset_size(), prepared().length())) {
    throw ConfigError("sampler next: batch_size = " + std::to_string(batch_size) +
                      " is larger than the dataset (" + std::to_string(dataset_size()) +
                      " samples) and than the epoch (" + std::to_string(prepared().length()) + " indices)");
  }
  cursor_->resume_pending = false;
  const std::size_t total = size();
  if (cursor_->position >= total) return torch::nullopt;
  const std::size_t count = std::min(batch_size, total - cursor_->position);
  std::vector<std::size_t> batch(count);
  fill_local(cursor_->position, count, batch.data());
  cursor_->position += count;
  return batch;
}

void StreamSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write(kPrefix + "kind", c10::IValue(kind()));
  archive.write(kPrefix + "fingerprint", c10::IValue(static_cast<std::int64_t>(stream_->fingerprint())));
  archive.write(kPrefix + "seed", c10::IValue(static_cast<std::int64_t>(cursor_->seed)));
  archive.write(kPrefix + "epoch", c10::IValue(static_cast<std::int64_t>(cursor_->epoch)));
  archive.write(kPrefix + "position", c10::IValue(static_cast<std::int64_t>(cursor_->position)));
  archive.write(kPrefix + "world_size", c10::IValue(static_cast<std::int64_t>(cursor_->world_size)));
  archive.write(kPrefix + "rank", c10::IValue(static_cast<std::int64_t>(cursor_->rank)));
  archive.write(kPrefix + "drop_last", c10::IValue(static_cast<std::int64_t>(cursor_->drop_last)));
}

void StreamSampler::load(torch::serialize::InputArchive& archive) {
  c10::IValue saved_kind;
  if (!archive.try_read(kPrefix + "kind", saved_kind) || !saved_kind.isString()) {
    throw FormatError("sampler state: missing key \"" + kPrefix + "kind\"; not a medload sampler state");
  }
  if (saved_kind.toStringRef() != kind()) {
    throw FormatError("sampler state: \"" + kPrefix + "kind\" is \"" + saved_kind.toStringRef() +
                      "\" in the saved state but \"" + kind() + "\" in this sampler");
  }
  check_equal("fingerprint", read_int(archive, "fingerprint"),
              static_cast<std::int64_t>(stream_->fingerprint()));
  check_equal("world_size", read_int(archive, "world_size"), static_cast<std::int64_t>(cursor_->world_size));
  check_equal("rank", read_int(archive, "rank"), static_cast<std::int64_t>(cursor_->rank));
  check_equal("drop_last", read_int(archive, "drop_last"), static_cast<std::int64_t>(cursor_->drop_last));
  const std::int64_t epoch = read_int(archive, "epoch");
  const std::int64_t position = read_int(archive, "position");
  if (epoch < 0 || position < 0) {
    throw FormatError("sampler state: negative epoch (" + std::to_string(epoch) + ") or position (" +
                      std::to_string(position) + ")");
  }
  cursor_->seed = static_cast<std::uint64_t>(read_int(archive, "seed"));
  cursor_->epoch = static_cast<std::size_t>(epoch);
  const std::size_t length = size();
  if (static_cast<std::size_t>(position) > length) {
    throw FormatError("sampler state: \"" + kPrefix + "position\" is " + std::to_string(position) +
                      " but epoch " + std::to_string(epoch) + " has only " + std::to_string(length) +
                      " indices");
  }
  cursor_->position = static_cast<std::size_t>(position);
  cursor_->resume_pending = true;
}

}  // namespace medload::samplers
