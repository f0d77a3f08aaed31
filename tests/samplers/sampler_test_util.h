#pragma once
// Shared by the sampler tests: state round trips through torch::serialize, draining a sampler.

#include <torch/serialize/archive.h>

#include <sstream>
#include <string>
#include <vector>

#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/stream_sampler.h"

namespace medload::samplers::testing {

inline std::string save_state(const StreamSampler& sampler) {
  torch::serialize::OutputArchive archive;
  sampler.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

inline void load_state(StreamSampler& sampler, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  sampler.load(archive);
}

inline ClassBalancedSamplerOptions mode_options(BalanceMode mode, std::uint64_t seed) {
  ClassBalancedSamplerOptions options;
  options.mode = mode;
  options.seed = seed;
  return options;
}

// Every index the sampler still yields this epoch, `batch` at a time.
inline std::vector<std::size_t> drain(StreamSampler& sampler, std::size_t batch) {
  std::vector<std::size_t> all;
  while (auto indices = sampler.next(batch)) all.insert(all.end(), indices->begin(), indices->end());
  return all;
}

// Labels with `counts[c]` samples of class c, interleaved so that class members are not contiguous.
inline std::vector<std::int64_t> labels_with_counts(const std::vector<std::size_t>& counts) {
  std::vector<std::int64_t> labels;
  std::vector<std::size_t> left = counts;
  bool any = true;
  while (any) {
    any = false;
    for (std::size_t c = 0; c < left.size(); ++c) {
      if (left[c] > 0) {
        labels.push_back(static_cast<std::int64_t>(c));
        --left[c];
        any = true;
      }
    }
  }
  return labels;
}

}  // namespace medload::samplers::testing
