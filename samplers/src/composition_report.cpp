#include "medload/samplers/composition_report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "medload/core/error.h"
#include "medload/samplers/distributed_sampler.h"

namespace medload::samplers {

namespace {

// The number of classes C: one per name at least, and enough for the largest label. Throws
// ConfigError naming the argument that is out of range.
std::size_t checked_class_count(const StreamSampler& sampler, const std::vector<std::int64_t>& labels,
                                std::size_t epochs, std::size_t world_size, std::size_t names) {
  if (labels.size() != sampler.dataset_size()) {
    throw ConfigError("composition_report: labels has " + std::to_string(labels.size()) +
                      " entries but the " + sampler.kind() + " sampler indexes " +
                      std::to_string(sampler.dataset_size()) + " samples");
  }
  if (epochs == 0 || epochs > kMaxReportEpochs) {
    throw ConfigError("composition_report: epochs = " + std::to_string(epochs) + "; allowed 1.." +
                      std::to_string(kMaxReportEpochs));
  }
  if (world_size == 0 || world_size > kMaxReportWorldSize) {
    throw ConfigError("composition_report: world_size = " + std::to_string(world_size) + "; allowed 1.." +
                      std::to_string(kMaxReportWorldSize));
  }
  std::size_t classes = names;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      throw ConfigError("composition_report: labels[" + std::to_string(i) +
                        "] = " + std::to_string(labels[i]) + " is negative");
    }
    classes = std::max(classes, static_cast<std::size_t>(labels[i]) + 1);
  }
  return classes;
}

// Time spent drawing indices, and how many were drawn, over the whole report.
struct DrawTiming {
  double seconds = 0.0;
  std::size_t produced = 0;
};

// The largest gap between a rank's share of a class and the epoch's share of it.
double max_rank_share_deviation(const EpochComposition& epoch, std::size_t classes) {
  double deviation = 0.0;
  for (const RankComposition& rank : epoch.ranks) {
    if (rank.draws == 0 || epoch.draws == 0) continue;
    for (std::size_t c = 0; c < classes; ++c) {
      const double local = static_cast<double>(rank.class_counts[c]) / static_cast<double>(rank.draws);
      const double global = static_cast<double>(epoch.class_counts[c]) / static_cast<double>(epoch.draws);
      deviation = std::max(deviation, std::abs(local - global));
    }
  }
  return deviation;
}

// What every rank draws in epoch `number`, counted by class; `seen` (one counter per sample, all 0
// on entry) counts the draws of each sample across ranks.
EpochComposition compose_epoch(std::vector<DistributedSampler>& ranks,
                               const std::vector<std::int64_t>& labels, std::size_t number,
                               std::size_t classes, std::vector<std::uint32_t>& seen, DrawTiming& timing) {
  EpochComposition epoch;
  epoch.epoch = number;
  epoch.class_counts.assign(classes, 0);
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    const auto start = std::chrono::steady_clock::now();
    ranks[r].set_epoch(epoch.epoch);
    const std::vector<std::size_t> indices = ranks[r].epoch_indices();
    timing.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    timing.produced += indices.size();
    RankComposition rank;
    rank.rank = r;
    rank.draws = indices.size();
    rank.class_counts.assign(classes, 0);
    for (std::size_t i : indices) {
      ++rank.class_counts[static_cast<std::size_t>(labels[i])];
      if (seen[i]++ == 0) ++epoch.unique;
    }
    epoch.draws += rank.draws;
    for (std::size_t c = 0; c < classes; ++c) epoch.class_counts[c] += rank.class_counts[c];
    epoch.ranks.push_back(std::move(rank));
  }
  epoch.duplicate_rate =
      epoch.draws == 0 ? 0.0 : 1.0 - static_cast<double>(epoch.unique) / static_cast<double>(epoch.draws);
  epoch.max_rank_share_deviation = max_rank_share_deviation(epoch, classes);
  return epoch;
}

}  // namespace

CompositionReport composition_report(const StreamSampler& sampler, const std::vector<std::int64_t>& labels,
                                     std::size_t epochs, std::size_t world_size,
                                     std::vector<std::string> class_names) {
  const std::size_t classes = checked_class_count(sampler, labels, epochs, world_size, class_names.size());
  class_names.resize(classes);

  CompositionReport report;
  report.sampler = sampler.kind();
  report.seed = sampler.seed();
  report.first_epoch = sampler.epoch();
  report.dataset_size = labels.size();
  report.world_size = world_size;
  report.class_names = class_names;
  report.dataset_class_counts.assign(classes, 0);
  for (std::int64_t label : labels) ++report.dataset_class_counts[static_cast<std::size_t>(label)];

  std::vector<DistributedSampler> ranks;
  for (std::size_t r = 0; r < world_size; ++r)
    ranks.emplace_back(sampler, DistributedOptions{world_size, r, false});

  std::vector<std::uint32_t> seen(labels.size(), 0);
  DrawTiming timing;
  for (std::size_t e = 0; e < epochs; ++e) {
    std::fill(seen.begin(), seen.end(), 0);
    report.epochs.push_back(compose_epoch(ranks, labels, report.first_epoch + e, classes, seen, timing));
  }
  report.ns_per_index =
      timing.produced == 0 ? 0.0 : timing.seconds * 1e9 / static_cast<double>(timing.produced);
  return report;
}

std::string CompositionReport::to_json(int indent) const {
  nlohmann::json j;
  j["sampler"] = sampler;
  j["seed"] = seed;
  j["first_epoch"] = first_epoch;
  j["dataset_size"] = dataset_size;
  j["world_size"] = world_size;
  j["class_names"] = class_names;
  j["dataset_class_counts"] = dataset_class_counts;
  j["ns_per_index"] = ns_per_index;
  j["epochs"] = nlohmann::json::array();
  for (const EpochComposition& e : epochs) {
    nlohmann::json je;
    je["epoch"] = e.epoch;
    je["draws"] = e.draws;
    je["unique"] = e.unique;
    je["duplicate_rate"] = e.duplicate_rate;
    je["class_counts"] = e.class_counts;
    je["max_rank_share_deviation"] = e.max_rank_share_deviation;
    je["ranks"] = nlohmann::json::array();
    for (const RankComposition& r : e.ranks) {
      je["ranks"].push_back({{"rank", r.rank}, {"draws", r.draws}, {"class_counts", r.class_counts}});
    }
    j["epochs"].push_back(std::move(je));
  }
  return j.dump(indent);
}

std::string CompositionReport::to_text() const {
  std::ostringstream out;
  out << "sampler " << sampler << ", seed " << seed << ", " << dataset_size << " samples, " << world_size
      << (world_size == 1 ? " rank" : " ranks") << "\n";
  char line[256];
  for (const EpochComposition& e : epochs) {
    std::snprintf(line, sizeof line,
                  "epoch %zu: %zu draws, %zu unique, duplicate rate %.4f, max rank share deviation %.4f\n",
                  e.epoch, e.draws, e.unique, e.duplicate_rate, e.max_rank_share_deviation);
    out << line;
    std::snprintf(line, sizeof line, "  %-24s %10s %10s %8s\n", "class", "dataset", "drawn", "share");
    out << line;
    for (std::size_t c = 0; c < class_names.size(); ++c) {
      const std::string name = class_names[c].empty() ? std::to_string(c) : class_names[c];
      std::snprintf(line, sizeof line, "  %-24s %10zu %10zu %8.4f\n", name.c_str(), dataset_class_counts[c],
                    e.class_counts[c],
                    e.draws ? static_cast<double>(e.class_counts[c]) / static_cast<double>(e.draws) : 0.0);
      out << line;
    }
    if (e.ranks.size() > 1) {
      for (const RankComposition& r : e.ranks) {
        out << "  rank " << r.rank << ": " << r.draws << " draws, per class";
        for (std::size_t count : r.class_counts) out << " " << count;
        out << "\n";
      }
    }
  }
  std::snprintf(line, sizeof line, "%.2f ns per index\n", ns_per_index);
  out << line;
  return out.str();
}

}  // namespace medload::samplers
