// Computing splits of a cache and storing them under /splits/<name>.

#include "medload/loader/serve/split_store.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/thread_pool.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/split_table.h"

namespace medload::loader {

std::string StoredSplit::part_label(std::size_t p) const {
  if (kind == "kfold") return "fold" + std::to_string(p);
  return std::string(part_name(static_cast<SplitPart>(p)));
}

nlohmann::json StoredSplit::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json parts_json = nlohmann::json::array();
  for (std::size_t p = 0; p < parts; ++p) {
    nlohmann::json classes = nlohmann::json::object();
    if (p < class_counts.size()) {
      for (std::size_t c = 0; c < class_counts[p].size(); ++c) {
        const bool unlabeled = c + 1 == class_counts[p].size();
        const std::string key = unlabeled                ? "(unlabeled)"
                                : c < class_names.size() ? class_names[c]
                                                         : std::to_string(c);
        classes[key] = class_counts[p][c];
      }
    }
    parts_json.push_back({{"name", part_label(p)},
                          {"samples", p < sample_counts.size() ? sample_counts[p] : 0},
                          {"patients", p < patient_counts.size() ? patient_counts[p] : 0},
                          {"classes", classes}});
  }
  return {{"name", name},
          {"kind", kind},
          {"seed", seed},
          {"ratios", ratios},
          {"patient_set_hash", patient_set_hash},
          {"patients", patients},
          {"samples_without_patient", samples_without_patient},
          {"parts", parts_json},
          {"train_mean", mean},
          {"train_std", std}};
}

namespace {

SplitInput split_input(const CacheReader& cache) {
  SplitInput input;
  input.patient_ids = cache.patient_ids();
  if (cache.multi_label()) {
    input.label_matrix = cache.label_matrix();
    input.label_columns = cache.class_names().size();
  } else {
    input.labels = cache.labels();
  }
  return input;
}

// Per-image sum and sum of squares of the pixels scaled to [0, 1], for the rows where `wanted`.
struct PixelSums {
  std::vector<double> sum, sum_sq;
  double pixels_per_image = 0;
};
PixelSums pixel_sums(const CacheReader& cache, const std::vector<bool>& wanted, std::size_t threads) {
  PixelSums sums;
  const std::size_t n = cache.size();
  sums.sum.assign(n, 0.0);
  sums.sum_sq.assign(n, 0.0);
  const std::size_t bytes = cache.image_bytes();
  const bool wide = cache.dtype() == PixelType::kUInt16;
  const std::size_t count = wide ? bytes / 2 : bytes;
  sums.pixels_per_image = static_cast<double>(count);
  const double scale = wide ? 1.0 / 65535.0 : 1.0 / 255.0;
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < n; ++i) {
    if (wanted[i]) rows.push_back(i);
  }
  ThreadPool pool(threads);
  pool.parallel_for(rows.size(), [&](std::size_t k) {
    const std::size_t row = rows[k];
    thread_local std::vector<std::uint16_t> buffer;
    buffer.resize((bytes + 1) / 2);
    cache.read_image(row, buffer.data());
    // Integer histograms of the values would be exact, but sums in 64-bit integers are too.
    std::uint64_t s = 0, s2 = 0;
    if (wide) {
      for (std::size_t p = 0; p < count; ++p) {
        const std::uint64_t v = buffer[p];
        s += v;
        s2 += v * v;
      }
    } else {
      const auto* px = reinterpret_cast<const std::uint8_t*>(buffer.data());
      for (std::size_t p = 0; p < count; ++p) {
        const std::uint64_t v = px[p];
        s += v;
        s2 += v * v;
      }
    }
    sums.sum[row] = static_cast<double>(s) * scale;
    sums.sum_sq[row] = static_cast<double>(s2) * scale * scale;
  });
  return sums;
}

void mean_std(const PixelSums& sums, const std::vector<bool>& rows, double& mean, double& std) {
  double s = 0, s2 = 0, n = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i]) continue;
    s += sums.sum[i];
    s2 += sums.sum_sq[i];
    n += sums.pixels_per_image;
  }
  if (n == 0) {
    mean = 0.0;
    std = 1.0;
    return;
  }
  mean = s / n;
  const double var = std::max(0.0, s2 / n - mean * mean);
  std = var > 0 ? std::sqrt(var) : 1.0;  // a constant training set: leave the scale alone
}

StoredSplit from_assignment(const SplitAssignment& a) {
  StoredSplit split;
  split.part = a.part;
  split.parts = a.parts;
  split.patient_set_hash = hash_hex(a.patient_set_hash);
  split.patients = a.patients;
  split.samples_without_patient = a.samples_without_patient;
  split.class_counts = a.class_counts;
  split.sample_counts = a.sample_counts;
  split.patient_counts = a.patient_counts;
  return split;
}

}  // namespace

StoredSplit make_split(const CacheReader& cache, const SplitOptions& options, std::size_t threads) {
  options.validate();
  const SplitInput input = split_input(cache);
  StoredSplit split = from_assignment(split_patients(input, options));
  split.name = "default";
  split.kind = "parts";
  split.seed = options.seed;
  split.ratios = options.ratios;
  std::vector<bool> train(cache.size());
  for (std::size_t i = 0; i < train.size(); ++i) train[i] = split.part[i] == 0;
  const PixelSums sums = pixel_sums(cache, train, threads);
  split.mean.resize(1);
  split.std.resize(1);
  mean_std(sums, train, split.mean[0], split.std[0]);
  return split;
}

StoredSplit make_kfold(const CacheReader& cache, std::size_t k, std::uint64_t seed,
                       const std::vector<std::int8_t>& within, std::size_t threads) {
  const SplitInput all = split_input(cache);
  const std::size_t n = cache.size();
  if (!within.empty() && within.size() != n) {
    throw ConfigError("make_kfold: `within` has " + std::to_string(within.size()) + " entries, the cache " +
                      std::to_string(n));
  }
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < n; ++i) {
    if (within.empty() || within[i] != static_cast<std::int8_t>(SplitPart::kTest)) rows.push_back(i);
  }
  SplitInput subset;
  subset.label_columns = all.label_columns;
  for (std::size_t i : rows) {
    subset.patient_ids.push_back(all.patient_ids[i]);
    if (all.label_columns == 0) {
      subset.labels.push_back(all.labels[i]);
    } else {
      subset.label_matrix.insert(subset.label_matrix.end(), all.label_matrix.begin() + i * all.label_columns,
                                 all.label_matrix.begin() + (i + 1) * all.label_columns);
    }
  }
  const SplitAssignment folds = kfold_patients(subset, k, seed);
  StoredSplit split = from_assignment(folds);
  split.name = "kfold";
  split.kind = "kfold";
  split.seed = seed;
  split.ratios.assign(k, 1.0 / static_cast<double>(k));
  split.patient_set_hash = hash_hex(patient_set_hash(all.patient_ids));
  split.part.assign(n, -1);
  for (std::size_t r = 0; r < rows.size(); ++r) split.part[rows[r]] = folds.part[r];
  std::vector<bool> in_folds(n, false);
  for (std::size_t i : rows) in_folds[i] = true;
  const PixelSums sums = pixel_sums(cache, in_folds, threads);
  split.mean.resize(k);
  split.std.resize(k);
  for (std::size_t f = 0; f < k; ++f) {
    std::vector<bool> train(n, false);
    for (std::size_t i : rows) train[i] = split.part[i] != static_cast<std::int8_t>(f);
    mean_std(sums, train, split.mean[f], split.std[f]);
  }
  return split;
}

namespace {

// write_split's copy of the cache at PATH is PATH + kCopySuffix + its process id.
constexpr const char* kCopySuffix = ".split-tmp-";

// Removes the copies that runs killed before they could publish left beside the cache at `path`:
// those whose process is gone (a running split's copy is left alone).
void remove_copies_of_killed_runs(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path cache(path);
  const std::string prefix = cache.filename().string() + kCopySuffix;
  std::error_code ec;
  const fs::path folder = cache.has_parent_path() ? cache.parent_path() : fs::path(".");
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
}

}  // namespace

void write_split(const std::string& path, const StoredSplit& split) {
  check_split_name(split.name);
  // The cache is never written in place: a kill in the middle of an HDF5 write can leave a file
  // HDF5 cannot open. The split goes into a copy (a reflink where the filesystem has them), which
  // then replaces the cache in one rename, as `medload build` publishes its caches. Readers that
  // have the cache open keep reading the file they opened.
  remove_copies_of_killed_runs(path);
  const std::string copy = path + kCopySuffix + std::to_string(::getpid());
  ::unlink(copy.c_str());  // left by an earlier run of this process id that was killed
  copy_file_for_update(path, copy);
  TemporaryFile remove_unless_published(copy);
  // Closes the copy before returning, so that a full disk shows here, before anything is published.
  write_split_table(copy, split, path);
  publish_atomically(copy, path);
  remove_unless_published.release();
}

std::vector<std::string> list_splits(const std::string& path) { return split_table_names(path); }

// The cache library reads the table and validates it (split_table.h).
StoredSplit read_split(const std::string& path, const std::string& name, std::size_t expected_size) {
  StoredSplit split;
  static_cast<SplitTable&>(split) = read_split_table(path, name, expected_size);
  return split;
}

}  // namespace medload::loader
