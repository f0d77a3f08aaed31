#include "medload/samplers/class_balanced_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "class_pool.h"
#include "medload/core/enum_names.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "weights_check.h"

namespace medload::samplers {

namespace {
constexpr auto kBalanceModeNames = core::enum_names<BalanceMode>({{BalanceMode::kOversample, "oversample"},
                                                                  {BalanceMode::kUndersample, "undersample"},
                                                                  {BalanceMode::kSqrt, "sqrt"},
                                                                  {BalanceMode::kTarget, "target"}});
}  // namespace

std::string to_string(BalanceMode mode) { return std::string(kBalanceModeNames.name(mode, "unknown")); }

BalanceMode balance_mode_from_string(const std::string& name) {
  return kBalanceModeNames.value(name, "ClassBalancedSamplerOptions.mode");
}

namespace {

class ClassBalancedStream final : public detail::Stream {
 public:
  ClassBalancedStream(const std::vector<std::int64_t>& labels, ClassBalancedSamplerOptions options)
      : pool_(labels, options.num_classes, options.patient_ids, options.max_per_patient,
              "ClassBalancedSamplerOptions"),
        options_(std::move(options)) {
    const std::size_t classes = pool_.num_classes();
    if (options_.mode == BalanceMode::kTarget) {
      if (options_.target.size() != classes) {
        throw ConfigError("ClassBalancedSamplerOptions.target has " + std::to_string(options_.target.size()) +
                          " entries; mode target needs one per class (" + std::to_string(classes) + ")");
      }
      detail::checked_weight_sum(options_.target, "ClassBalancedSamplerOptions.target");
    } else if (!options_.target.empty()) {
      throw ConfigError("ClassBalancedSamplerOptions.target is set but mode is " + to_string(options_.mode) +
                        "; a target distribution needs mode target");
    }
    fingerprint_ = mix64(pool_.fingerprint() ^ (static_cast<std::uint64_t>(options_.mode) + 1));
    fingerprint_ = mix64(fingerprint_ + options_.num_samples);
    if (!options_.target.empty()) {
      fingerprint_ =
          mix64(fingerprint_ ^ hash64(options_.target.data(), options_.target.size() * sizeof(double)));
    }
  }

  void prepare(std::uint64_t seed, std::uint64_t epoch) override {
    const std::vector<std::vector<std::size_t>>& members = pool_.members_for_epoch(seed, epoch, scratch_);
    const std::size_t classes = members.size();
    std::vector<double> shares(classes, 0.0);
    std::size_t eligible = 0, largest = 0, smallest = std::numeric_limits<std::size_t>::max(), present = 0;
    for (std::size_t c = 0; c < classes; ++c) {
      const std::size_t n = members[c].size();
      eligible += n;
      if (n == 0) continue;  // possible only when a patient cap removes all of a class this epoch
      ++present;
      largest = std::max(largest, n);
      smallest = std::min(smallest, n);
      switch (options_.mode) {
        case BalanceMode::kOversample:
        case BalanceMode::kUndersample:
          shares[c] = 1.0;
          break;
        case BalanceMode::kSqrt:
          shares[c] = std::sqrt(static_cast<double>(n));
          break;
        case BalanceMode::kTarget:
          shares[c] = options_.target[c];
          break;
      }
    }
    std::size_t total = options_.num_samples;
    if (total == 0) {
      switch (options_.mode) {
        case BalanceMode::kOversample:
          total = present * largest;
          break;
        case BalanceMode::kUndersample:
          total = present * smallest;
          break;
        default:
          total = eligible;
          break;
      }
    }
    const std::vector<std::size_t> quota = detail::quotas(shares, total, seed, epoch);
    stream_.clear();
    stream_.reserve(total);
    for (std::size_t c = 0; c < classes; ++c) {
      if (quota[c] == 0) continue;
      detail::ClassCycler cycler(members[c], seed, epoch, c, quota[c]);
      for (std::size_t k = 0; k < quota[c]; ++k) stream_.push_back(cycler.next());
    }
    CounterRng rng(seed, detail::stream_id(detail::kTagShuffle, epoch));
    shuffle(stream_.data(), stream_.size(), rng);
  }

  std::size_t length() const override { return stream_.size(); }
  void fill(std::size_t begin, std::size_t count, std::size_t* out) const override {
    std::copy_n(stream_.begin() + static_cast<std::ptrdiff_t>(begin), count, out);
  }
  std::size_t dataset_size() const override { return pool_.dataset_size(); }
  std::string kind() const override { return to_string(options_.mode); }
  std::uint64_t fingerprint() const override { return fingerprint_; }
  bool balances_classes() const override { return true; }

 private:
  detail::ClassPool pool_;
  ClassBalancedSamplerOptions options_;
  std::uint64_t fingerprint_ = 0;
  std::vector<std::vector<std::size_t>> scratch_;
  std::vector<std::size_t> stream_;
};

}  // namespace

ClassBalancedSampler::ClassBalancedSampler(const std::vector<std::int64_t>& labels,
                                           ClassBalancedSamplerOptions options)
    : StreamSampler(std::make_shared<ClassBalancedStream>(labels, options), options.seed) {}

}  // namespace medload::samplers
