#pragma once
// What the class-aware samplers share: the members of each class, the per-patient cap, the cyclic
// without-replacement draw inside a class and largest-remainder quotas.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "medload/samplers/counter_rng.h"

namespace medload::samplers::detail {

// Tags keep the random streams of different purposes apart.
enum StreamTag : std::uint64_t {
  kTagShuffle = 1,
  kTagClassCycle = 2,
  kTagPatientCap = 3,
  kTagQuotaTies = 4,
  kTagBatchClasses = 5,
};

inline std::uint64_t stream_id(std::uint64_t tag, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
  return mix64(mix64(mix64(tag * kGoldenGamma ^ a) + b) ^ (c * 0xd6e8feb86659fd93ULL));
}

class ClassPool {
 public:
  // `owner` names the options struct in error messages.
  ClassPool(const std::vector<std::int64_t>& labels, std::size_t num_classes,
            const std::vector<std::string>& patient_ids, std::size_t max_per_patient,
            const std::string& owner);

  std::size_t num_classes() const { return members_.size(); }
  std::size_t dataset_size() const { return dataset_size_; }
  const std::vector<std::vector<std::size_t>>& members() const { return members_; }
  std::uint64_t fingerprint() const { return fingerprint_; }
  bool capped() const { return max_per_patient_ > 0; }

  // The members eligible in (seed, epoch): all of them, or with a cap, at most max_per_patient
  // images of each patient, chosen at random per epoch.
  // Returns `members()` itself when there is no cap, else `scratch` filled for the epoch.
  const std::vector<std::vector<std::size_t>>& members_for_epoch(
      std::uint64_t seed, std::uint64_t epoch, std::vector<std::vector<std::size_t>>& scratch) const;

 private:
  std::size_t dataset_size_ = 0;
  std::vector<std::int64_t> labels_;
  std::vector<std::vector<std::size_t>> members_;
  std::vector<std::vector<std::size_t>> patients_;  // images of each patient with more than the cap
  std::size_t max_per_patient_ = 0;
  std::uint64_t fingerprint_ = 0;
};

// Draws a class's members without replacement in random order; when they run out, a new cycle
// (a fresh permutation) starts. Cycle j of class c in epoch e is a pure function of (seed, e, c, j).
// The permutation is a Fisher-Yates pass done one step per draw. When far fewer draws than members
// are expected (undersampling a majority class), the swaps are kept in a hash map instead of a
// copy of the class: the same sequence, without touching every member.
class ClassCycler {
 public:
  ClassCycler(const std::vector<std::size_t>& members, std::uint64_t seed, std::uint64_t epoch,
              std::uint64_t cls, std::size_t expected_draws)
      : members_(&members),
        seed_(seed),
        epoch_(epoch),
        class_(cls),
        // Below ~256k members a copy is cheaper than hashing.
        sparse_(members.size() > (std::size_t{1} << 18) && expected_draws < members.size() / 8) {
    if (sparse_) swapped_.reserve(expected_draws + expected_draws / 2 + 16);
  }

  std::size_t next() {
    const std::size_t n = members_->size();
    if (position_ == n || cycle_ == 0) {
      rng_ = CounterRng(seed_, stream_id(kTagClassCycle, epoch_, class_, cycle_++));
      position_ = 0;
      if (sparse_) {
        if (cycle_ > 1) swapped_.clear();
      } else {
        permutation_ = *members_;
      }
    }
    const std::size_t j = position_ + static_cast<std::size_t>(rng_.next_below(n - position_));
    if (!sparse_) {
      std::swap(permutation_[position_], permutation_[j]);
      return permutation_[position_++];
    }
    const std::size_t at_j = value(j);
    swapped_[j] = value(position_);
    ++position_;
    return at_j;
  }

 private:
  std::size_t value(std::size_t k) const {
    const auto it = swapped_.find(k);
    return it == swapped_.end() ? (*members_)[k] : it->second;
  }

  const std::vector<std::size_t>* members_;
  std::uint64_t seed_, epoch_, class_;
  bool sparse_;
  std::uint64_t cycle_ = 0;
  CounterRng rng_{0, 0};
  std::vector<std::size_t> permutation_;
  std::unordered_map<std::size_t, std::size_t> swapped_;
  std::size_t position_ = 0;
};

// Splits `total` into integer quotas proportional to `shares` (largest remainder; ties broken at
// random by (seed, epoch) so that no class is favoured epoch after epoch).
std::vector<std::size_t> quotas(const std::vector<double>& shares, std::size_t total, std::uint64_t seed,
                                std::uint64_t epoch);

}  // namespace medload::samplers::detail
