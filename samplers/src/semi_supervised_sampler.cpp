#include "medload/samplers/semi_supervised_sampler.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/counter_rng.h"

namespace medload::samplers {
namespace {

const std::string kOwner = "SemiSupervisedSampler";

// The streams of the two sides are keyed by (seed, side): a loaded state's seed reproduces both.
constexpr std::uint64_t kLabelledSide = 1;
constexpr std::uint64_t kUnlabelledSide = 2;

// Unlabelled pass `pass` of epoch `epoch`: distinct for epochs and passes below 2^32 (a pass
// holds at least one index, so 2^32 passes would be a 32 GiB epoch).
std::uint64_t unlabelled_epoch(std::uint64_t epoch, std::uint64_t pass) { return (epoch << 32) + pass; }

// One side: an inner sampler's stream and the dataset row of each of its indices.
struct Side {
  std::string name;  // "labelled" or "unlabelled"
  std::shared_ptr<detail::Stream> stream;
  std::vector<std::size_t> rows;
};

void check_options(const SemiSupervisedOptions& options) {
  if (options.labelled_batch == 0)
    throw ConfigError("SemiSupervisedOptions.labelled_batch = 0: must be >= 1");
  if (options.mu == 0) {
    throw ConfigError(
        "SemiSupervisedOptions.mu = 0: must be >= 1 (mu x labelled_batch unlabelled rows per "
        "step); for supervised training use a supervised sampler");
  }
  if (options.mu >= std::numeric_limits<std::size_t>::max() / options.labelled_batch) {
    throw ConfigError("SemiSupervisedOptions.mu = " + std::to_string(options.mu) + " with labelled_batch = " +
                      std::to_string(options.labelled_batch) + ": the step size overflows");
  }
}

void check_side(const Side& side, const StreamSampler& sampler) {
  if (sampler.world_size() != 1) {
    throw ConfigError(
        kOwner + ": the " + side.name + " sampler is already distributed (world_size " +
        std::to_string(sampler.world_size()) +
        "); compose the plain samplers and wrap the SemiSupervisedSampler in DistributedSampler");
  }
  if (side.rows.empty()) {
    std::string message =
        kOwner + ": " + side.name + "_rows is empty: there are no " + side.name + " samples";
    if (side.name == "unlabelled")
      message += ": semi-supervised training needs some; use a supervised sampler";
    throw ConfigError(message);
  }
  if (side.rows.size() != side.stream->dataset_size()) {
    throw ConfigError(kOwner + ": " + side.name + "_rows has " + std::to_string(side.rows.size()) +
                      " entries but the " + side.name + " sampler (" + sampler.kind() + ") was built over " +
                      std::to_string(side.stream->dataset_size()) + " samples; " + side.name +
                      "_rows[i] must be the dataset row of its index i");
  }
}

// Every row is in [0, dataset_size) and listed once, on one side. Memory follows the rows listed,
// not dataset_size (which the caller states and may be far larger).
void check_rows(const Side& labelled, const Side& unlabelled, std::size_t dataset_size) {
  const auto where = [&](std::size_t k) {
    return k < labelled.rows.size() ? "labelled_rows[" + std::to_string(k) + "]"
                                    : "unlabelled_rows[" + std::to_string(k - labelled.rows.size()) + "]";
  };
  std::vector<std::pair<std::size_t, std::size_t>> listed;  // (row, k): k < |labelled| or |labelled| + k
  listed.reserve(labelled.rows.size() + unlabelled.rows.size());
  for (const Side* side : {&labelled, &unlabelled}) {
    for (std::size_t row : side->rows) {
      if (row >= dataset_size) {
        throw ConfigError(kOwner + ": " + where(listed.size()) + " = " + std::to_string(row) +
                          " is out of range: dataset_size is " + std::to_string(dataset_size));
      }
      listed.emplace_back(row, listed.size());
    }
  }
  std::sort(listed.begin(), listed.end());
  // Within a row's run its listings are in order; the repeat a scan in listing order meets first
  // is the smallest second listing of any run.
  std::size_t repeat = listed.size(), first = 0;
  for (std::size_t i = 1; i < listed.size(); ++i) {
    const bool second_of_run =
        listed[i].first == listed[i - 1].first && (i == 1 || listed[i - 2].first != listed[i].first);
    if (second_of_run && listed[i].second < repeat) {
      repeat = listed[i].second;
      first = listed[i - 1].second;
    }
  }
  if (repeat != listed.size()) {
    const std::size_t row = repeat < labelled.rows.size() ? labelled.rows[repeat]
                                                          : unlabelled.rows[repeat - labelled.rows.size()];
    throw ConfigError(kOwner + ": " + where(repeat) + " = " + std::to_string(row) +
                      " is listed again (first as " + where(first) +
                      "); a row is either labelled or unlabelled, and listed once");
  }
}

std::uint64_t side_fingerprint(const Side& side) {
  std::uint64_t h = mix64(side.stream->fingerprint() ^ hash64_text(side.stream->kind()));
  return mix64(h ^ hash64(side.rows.data(), side.rows.size() * sizeof(std::size_t), side.rows.size()));
}

class SemiSupervisedStream final : public detail::Stream {
 public:
  SemiSupervisedStream(Side labelled, Side unlabelled, std::size_t dataset_size,
                       SemiSupervisedOptions options)
      : labelled_(std::move(labelled)),
        unlabelled_(std::move(unlabelled)),
        dataset_size_(dataset_size),
        labelled_batch_(options.labelled_batch),
        unlabelled_batch_(options.labelled_batch * options.mu) {
    check_rows(labelled_, unlabelled_, dataset_size_);
    fingerprint_ = mix64(labelled_batch_ * kGoldenGamma ^ options.mu);
    fingerprint_ = mix64(fingerprint_ ^ side_fingerprint(labelled_));
    fingerprint_ = mix64(fingerprint_ + side_fingerprint(unlabelled_));
    fingerprint_ = mix64(fingerprint_ ^ dataset_size_);
  }

  void prepare(std::uint64_t seed, std::uint64_t epoch) override {
    const std::vector<std::size_t> labelled = labelled_epoch(seed, epoch);
    const std::size_t steps = (labelled.size() + labelled_batch_ - 1) / labelled_batch_;
    const std::vector<std::size_t> unlabelled = unlabelled_draws(seed, epoch, steps * unlabelled_batch_);
    interleave(labelled, unlabelled, steps);
  }

  std::size_t length() const override { return stream_.size(); }
  void fill(std::size_t begin, std::size_t count, std::size_t* out) const override {
    std::copy_n(stream_.begin() + static_cast<std::ptrdiff_t>(begin), count, out);
  }
  std::size_t dataset_size() const override { return dataset_size_; }
  std::size_t block() const override { return labelled_batch_ + unlabelled_batch_; }
  std::string kind() const override { return "semi-supervised"; }
  std::uint64_t fingerprint() const override { return fingerprint_; }
  bool balances_classes() const override { return labelled_.stream->balances_classes(); }

 private:
  // The labelled sampler's epoch `epoch`, as dataset rows.
  std::vector<std::size_t> labelled_epoch(std::uint64_t seed, std::uint64_t epoch) {
    detail::Stream& stream = *labelled_.stream;
    stream.ensure(stream_key(seed, kLabelledSide), epoch);
    if (stream.length() == 0) {
      throw ConfigError(kOwner + ": the labelled sampler (" + stream.kind() + ") yields no index in epoch " +
                        std::to_string(epoch) + "; every step needs labelled rows");
    }
    return rows_of(labelled_, stream.length());
  }

  // The first `count` rows of the unlabelled passes of epoch `epoch` (see unlabelled_epoch).
  std::vector<std::size_t> unlabelled_draws(std::uint64_t seed, std::uint64_t epoch, std::size_t count) {
    detail::Stream& stream = *unlabelled_.stream;
    std::vector<std::size_t> rows;
    rows.reserve(count);
    for (std::uint64_t pass = 0; rows.size() < count; ++pass) {
      stream.ensure(stream_key(seed, kUnlabelledSide), unlabelled_epoch(epoch, pass));
      if (stream.length() == 0) {
        throw ConfigError(kOwner + ": the unlabelled sampler (" + stream.kind() +
                          ") yields no index in pass " + std::to_string(pass) + " of epoch " +
                          std::to_string(epoch));
      }
      const std::vector<std::size_t> part =
          rows_of(unlabelled_, std::min(stream.length(), count - rows.size()));
      rows.insert(rows.end(), part.begin(), part.end());
    }
    return rows;
  }

  // The first `count` positions of `side`'s prepared stream, as dataset rows.
  static std::vector<std::size_t> rows_of(const Side& side, std::size_t count) {
    std::vector<std::size_t> indices(count);
    side.stream->fill(0, count, indices.data());
    for (std::size_t& index : indices) index = side.rows[index];
    return indices;
  }

  // Step s: labelled positions s x B .. s x B + B - 1 (wrapping to the epoch's start), then
  // unlabelled draws s x mu B .. s x mu B + mu B - 1.
  void interleave(const std::vector<std::size_t>& labelled, const std::vector<std::size_t>& unlabelled,
                  std::size_t steps) {
    stream_.resize(steps * block());
    auto out = stream_.begin();
    auto from_unlabelled = unlabelled.begin();
    for (std::size_t s = 0; s < steps; ++s) {
      for (std::size_t j = 0; j < labelled_batch_; ++j)
        *out++ = labelled[(s * labelled_batch_ + j) % labelled.size()];
      out = std::copy_n(from_unlabelled, unlabelled_batch_, out);
      from_unlabelled += static_cast<std::ptrdiff_t>(unlabelled_batch_);
    }
  }

  Side labelled_;
  Side unlabelled_;
  std::size_t dataset_size_;
  std::size_t labelled_batch_;
  std::size_t unlabelled_batch_;
  std::uint64_t fingerprint_ = 0;
  std::vector<std::size_t> stream_;
};

// Each of n samples once per epoch, in a random order that depends on (seed, epoch) only.
class ShuffleStream final : public detail::Stream {
 public:
  explicit ShuffleStream(std::size_t size) : size_(size) {}

  void prepare(std::uint64_t seed, std::uint64_t epoch) override {
    order_.resize(size_);
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    CounterRng rng(seed, epoch);
    shuffle(order_.data(), order_.size(), rng);
  }
  std::size_t length() const override { return size_; }
  void fill(std::size_t begin, std::size_t count, std::size_t* out) const override {
    std::copy_n(order_.begin() + static_cast<std::ptrdiff_t>(begin), count, out);
  }
  std::size_t dataset_size() const override { return size_; }
  std::string kind() const override { return "shuffle"; }
  std::uint64_t fingerprint() const override { return mix64(size_ + kGoldenGamma); }
  bool balances_classes() const override { return false; }

 private:
  std::size_t size_;
  std::vector<std::size_t> order_;
};

class ShuffleSampler final : public StreamSampler {
 public:
  explicit ShuffleSampler(std::size_t size) : StreamSampler(std::make_shared<ShuffleStream>(size), 0) {}
};

std::shared_ptr<detail::Stream> make_stream(Side labelled, const StreamSampler& labelled_sampler,
                                            Side unlabelled, const StreamSampler& unlabelled_sampler,
                                            std::size_t dataset_size, const SemiSupervisedOptions& options) {
  check_options(options);
  check_side(labelled, labelled_sampler);
  check_side(unlabelled, unlabelled_sampler);
  return std::make_shared<SemiSupervisedStream>(std::move(labelled), std::move(unlabelled), dataset_size,
                                                options);
}

// Splits `labels` into the labelled rows (with their class ids) and the unlabelled rows (-1).
struct LabelSplit {
  std::vector<std::size_t> labelled_rows;
  std::vector<std::int64_t> labelled_classes;
  std::vector<std::size_t> unlabelled_rows;
};

LabelSplit split_labels(const std::vector<std::int64_t>& labels) {
  LabelSplit split;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < -1) {
      throw ConfigError("make_semi_supervised_sampler: labels[" + std::to_string(i) +
                        "] = " + std::to_string(labels[i]) +
                        "; a label is a class id >= 0, or -1 for an unlabelled sample");
    }
    if (labels[i] == -1) {
      split.unlabelled_rows.push_back(i);
    } else {
      split.labelled_rows.push_back(i);
      split.labelled_classes.push_back(labels[i]);
    }
  }
  if (split.labelled_rows.empty()) {
    throw ConfigError("make_semi_supervised_sampler: labels has no labelled samples (all " +
                      std::to_string(labels.size()) + " labels are -1)");
  }
  if (split.unlabelled_rows.empty()) {
    throw ConfigError("make_semi_supervised_sampler: labels has no unlabelled samples (none of the " +
                      std::to_string(labels.size()) +
                      " labels is -1): semi-supervised training needs some; use a supervised sampler "
                      "(ClassBalancedSampler)");
  }
  return split;
}

}  // namespace

SemiSupervisedSampler::SemiSupervisedSampler(const StreamSampler& labelled,
                                             std::vector<std::size_t> labelled_rows,
                                             const StreamSampler& unlabelled,
                                             std::vector<std::size_t> unlabelled_rows,
                                             std::size_t dataset_size, SemiSupervisedOptions options)
    : StreamSampler(make_stream({"labelled", stream_of(labelled), std::move(labelled_rows)}, labelled,
                                {"unlabelled", stream_of(unlabelled), std::move(unlabelled_rows)}, unlabelled,
                                dataset_size, options),
                    options.seed),
      labelled_batch_(options.labelled_batch),
      mu_(options.mu) {}

torch::optional<std::vector<std::size_t>> SemiSupervisedSampler::next(std::size_t batch_size) {
  if (batch_size != step_size()) {
    throw ConfigError(
        "SemiSupervisedSampler: batch_size = " + std::to_string(batch_size) +
        ", but a step is labelled_batch + mu x labelled_batch = " + std::to_string(labelled_batch()) + " + " +
        std::to_string(unlabelled_batch()) + " = " + std::to_string(step_size()) +
        " indices; set LoaderOptions.batch_size to the sampler's step_size()");
  }
  return StreamSampler::next(batch_size);
}

SemiSupervisedSampler make_semi_supervised_sampler(const std::vector<std::int64_t>& labels,
                                                   SemiSupervisedOptions options, LabelledBalance balance) {
  LabelSplit split = split_labels(labels);
  const ShuffleSampler unlabelled(split.unlabelled_rows.size());
  if (balance == LabelledBalance::kShuffle) {
    const ShuffleSampler labelled(split.labelled_rows.size());
    return SemiSupervisedSampler(labelled, std::move(split.labelled_rows), unlabelled,
                                 std::move(split.unlabelled_rows), labels.size(), options);
  }
  ClassBalancedSamplerOptions balanced;
  balanced.mode = BalanceMode::kOversample;
  const ClassBalancedSampler labelled(split.labelled_classes, balanced);
  return SemiSupervisedSampler(labelled, std::move(split.labelled_rows), unlabelled,
                               std::move(split.unlabelled_rows), labels.size(), options);
}

}  // namespace medload::samplers
