#include "medload/samplers/balanced_batch_sampler.h"

#include <algorithm>

#include "class_pool.h"
#include "medload/core/check_range.h"
#include "medload/core/error.h"

namespace medload::samplers {
namespace {

class BalancedBatchStream final : public detail::Stream {
 public:
  BalancedBatchStream(const std::vector<std::int64_t>& labels, BalancedBatchSamplerOptions options)
      : pool_(labels, options.num_classes, options.patient_ids, options.max_per_patient,
              "BalancedBatchSamplerOptions"),
        options_(std::move(options)) {
    const std::size_t p = options_.classes_per_batch, k = options_.samples_per_class;
    // At most the number of classes.
    core::check_range("BalancedBatchSamplerOptions.classes_per_batch", p, 1, pool_.num_classes());
    if (k == 0) throw ConfigError("BalancedBatchSamplerOptions.samples_per_class = 0: must be >= 1");
    if (p * k > pool_.dataset_size()) {
      throw ConfigError("BalancedBatchSamplerOptions: batch size classes_per_batch x samples_per_class = " +
                        std::to_string(p * k) + " is larger than the dataset (" +
                        std::to_string(pool_.dataset_size()) + " samples)");
    }
    batches_ = options_.num_batches > 0 ? options_.num_batches
                                        : std::max<std::size_t>(1, pool_.dataset_size() / (p * k));
    fingerprint_ = mix64(pool_.fingerprint() ^ mix64(p * 1000003 + k));
    fingerprint_ = mix64(fingerprint_ + options_.num_batches);
  }

  void prepare(std::uint64_t seed, std::uint64_t epoch) override {
    const std::vector<std::vector<std::size_t>>& members = pool_.members_for_epoch(seed, epoch, scratch_);
    const std::size_t p = options_.classes_per_batch, k = options_.samples_per_class;
    std::vector<std::size_t> present;
    for (std::size_t c = 0; c < members.size(); ++c) {
      if (!members[c].empty()) present.push_back(c);
    }
    if (present.size() < p) {
      throw ConfigError("BalancedBatchSamplerOptions.classes_per_batch = " + std::to_string(p) +
                        ", but only " + std::to_string(present.size()) +
                        " classes have eligible samples in epoch " + std::to_string(epoch) +
                        " under max_per_patient = " + std::to_string(options_.max_per_patient));
    }
    std::vector<detail::ClassCycler> cyclers;
    cyclers.reserve(members.size());
    // Each present class is expected to be drawn batches x P x K / |present| times.
    const std::size_t expected = batches_ * p * k / present.size();
    for (std::size_t c = 0; c < members.size(); ++c)
      cyclers.emplace_back(members[c], seed, epoch, c, expected);
    stream_.assign(batches_ * p * k, 0);
    std::size_t out = 0;
    for (std::size_t b = 0; b < batches_; ++b) {
      // A partial Fisher-Yates pass picks P distinct classes uniformly, whatever the order left
      // by the previous batch.
      CounterRng rng(seed, detail::stream_id(detail::kTagBatchClasses, epoch, b));
      for (std::size_t i = 0; i < p; ++i) {
        const std::size_t j = i + static_cast<std::size_t>(rng.next_below(present.size() - i));
        std::swap(present[i], present[j]);
        for (std::size_t s = 0; s < k; ++s) stream_[out++] = cyclers[present[i]].next();
      }
    }
  }

  std::size_t length() const override { return stream_.size(); }
  void fill(std::size_t begin, std::size_t count, std::size_t* out) const override {
    std::copy_n(stream_.begin() + static_cast<std::ptrdiff_t>(begin), count, out);
  }
  std::size_t dataset_size() const override { return pool_.dataset_size(); }
  std::size_t block() const override { return options_.classes_per_batch * options_.samples_per_class; }
  std::string kind() const override { return "balanced-batch"; }
  std::uint64_t fingerprint() const override { return fingerprint_; }
  bool balances_classes() const override { return true; }

 private:
  detail::ClassPool pool_;
  BalancedBatchSamplerOptions options_;
  std::size_t batches_ = 0;
  std::uint64_t fingerprint_ = 0;
  std::vector<std::vector<std::size_t>> scratch_;
  std::vector<std::size_t> stream_;
};

}  // namespace

BalancedBatchSampler::BalancedBatchSampler(const std::vector<std::int64_t>& labels,
                                           BalancedBatchSamplerOptions options)
    : StreamSampler(std::make_shared<BalancedBatchStream>(labels, options), options.seed),
      batch_size_(options.classes_per_batch * options.samples_per_class) {}

}  // namespace medload::samplers
