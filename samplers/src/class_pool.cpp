#include "class_pool.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "medload/core/error.h"
#include "medload/core/hash.h"

namespace medload::samplers::detail {

ClassPool::ClassPool(const std::vector<std::int64_t>& labels, std::size_t num_classes,
                     const std::vector<std::string>& patient_ids, std::size_t max_per_patient,
                     const std::string& owner)
    : dataset_size_(labels.size()), labels_(labels), max_per_patient_(max_per_patient) {
  if (labels.empty())
    throw ConfigError(owner + ": labels is empty (zero samples); a sampler needs at least one");
  std::int64_t max_label = -1;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || (num_classes > 0 && static_cast<std::uint64_t>(labels[i]) >= num_classes)) {
      throw ConfigError(owner + ": labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                        " is outside [0, " + (num_classes > 0 ? std::to_string(num_classes) : "inf") + ")");
    }
    max_label = std::max(max_label, labels[i]);
  }
  const std::size_t classes = num_classes > 0 ? num_classes : static_cast<std::size_t>(max_label) + 1;
  members_.assign(classes, {});
  for (std::size_t i = 0; i < labels.size(); ++i) members_[static_cast<std::size_t>(labels[i])].push_back(i);
  for (std::size_t c = 0; c < classes; ++c) {
    if (members_[c].empty()) {
      throw ConfigError(owner + ": class " + std::to_string(c) + " has no samples (labels cover classes 0.." +
                        std::to_string(classes - 1) + "); drop the class or set num_classes");
    }
  }
  fingerprint_ = hash64(labels.data(), labels.size() * sizeof(std::int64_t), classes);
  if (max_per_patient > 0) {
    if (patient_ids.size() != labels.size()) {
      throw ConfigError(owner + ".patient_ids has " + std::to_string(patient_ids.size()) +
                        " entries but labels has " + std::to_string(labels.size()) +
                        "; max_per_patient needs one patient id per sample");
    }
    std::unordered_map<std::string, std::size_t> index;
    std::vector<std::vector<std::size_t>> all;
    for (std::size_t i = 0; i < patient_ids.size(); ++i) {
      fingerprint_ = mix64(fingerprint_ ^ hash64_text(patient_ids[i]));
      // An unknown patient ("") is its own patient: one image, never over the cap.
      if (patient_ids[i].empty()) continue;
      auto [it, inserted] = index.emplace(patient_ids[i], all.size());
      if (inserted) all.emplace_back();
      all[it->second].push_back(i);
    }
    for (auto& images : all) {
      if (images.size() > max_per_patient) patients_.push_back(std::move(images));
    }
    fingerprint_ = mix64(fingerprint_ + max_per_patient);
  }
}

const std::vector<std::vector<std::size_t>>& ClassPool::members_for_epoch(
    std::uint64_t seed, std::uint64_t epoch, std::vector<std::vector<std::size_t>>& out) const {
  if (patients_.empty()) return members_;
  std::vector<char> excluded(dataset_size_, 0);
  std::vector<std::size_t> images;
  for (std::size_t p = 0; p < patients_.size(); ++p) {
    images = patients_[p];
    CounterRng rng(seed, stream_id(kTagPatientCap, epoch, p));
    shuffle(images.data(), images.size(), rng);
    for (std::size_t k = max_per_patient_; k < images.size(); ++k) excluded[images[k]] = 1;
  }
  out.assign(members_.size(), {});
  for (std::size_t c = 0; c < members_.size(); ++c) {
    for (std::size_t i : members_[c]) {
      if (!excluded[i]) out[c].push_back(i);
    }
  }
  return out;
}

std::vector<std::size_t> quotas(const std::vector<double>& shares, std::size_t total, std::uint64_t seed,
                                std::uint64_t epoch) {
  const double sum = std::accumulate(shares.begin(), shares.end(), 0.0);
  std::vector<std::size_t> result(shares.size(), 0);
  if (!(sum > 0.0) || total == 0) return result;
  std::vector<double> remainder(shares.size(), 0.0);
  std::size_t assigned = 0;
  for (std::size_t c = 0; c < shares.size(); ++c) {
    const double exact = shares[c] / sum * static_cast<double>(total);
    result[c] = static_cast<std::size_t>(std::floor(exact));
    remainder[c] = exact - std::floor(exact);
    assigned += result[c];
  }
  // Floating-point rounding can overshoot by one; take it back from the smallest remainders.
  std::vector<std::size_t> order(shares.size());
  std::iota(order.begin(), order.end(), 0);
  CounterRng rng(seed, stream_id(kTagQuotaTies, epoch));
  std::vector<std::uint64_t> tie(shares.size());
  for (auto& t : tie) t = rng.next_u64();
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (remainder[a] != remainder[b]) return remainder[a] > remainder[b];
    return tie[a] < tie[b];
  });
  for (std::size_t k = 0; assigned < total; k = (k + 1) % order.size()) {
    if (shares[order[k]] > 0.0) {
      ++result[order[k]];
      ++assigned;
    }
  }
  for (std::size_t k = order.size(); assigned > total && k > 0; --k) {
    if (result[order[k - 1]] > 0) {
      --result[order[k - 1]];
      --assigned;
    }
  }
  return result;
}

}  // namespace medload::samplers::detail
