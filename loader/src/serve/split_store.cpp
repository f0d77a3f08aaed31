// Computing splits of a cache and storing them under /splits/<name>.

#include "medload/loader/serve/split_store.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "h5.h"
#include "schema.h"
#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/thread_pool.h"
#include "medload/core/version.h"
#include "medload/loader/cache/cache_reader.h"

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

std::vector<double> to_doubles(const std::vector<std::int64_t>& v) { return {v.begin(), v.end()}; }

// int8 per sample (h5.h's typed helpers have no int8).
void write_parts(hid_t group, const std::vector<std::int8_t>& part) {
  h5::Dataset dataset =
      h5::create_dataset(group, "part", H5T_NATIVE_INT8, {static_cast<hsize_t>(part.size())});
  if (part.empty()) return;
  h5::check_status(H5Dwrite(dataset.id(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, part.data()),
                   "write", "the dataset \"part\"", group);
}
void write_split_group(hid_t group, const StoredSplit& split) {
  write_parts(group, split.part);
  h5::write_attribute(group, "kind", split.kind);
  h5::write_attribute(group, "parts", static_cast<std::int64_t>(split.parts));
  h5::write_attribute(group, "seed", std::to_string(split.seed));  // uint64: text keeps every bit
  h5::write_attribute(group, "ratios", split.ratios);
  h5::write_attribute(group, "patient_set_hash", split.patient_set_hash);
  h5::write_attribute(group, "patients", static_cast<std::int64_t>(split.patients));
  h5::write_attribute(group, "samples_without_patient",
                      static_cast<std::int64_t>(split.samples_without_patient));
  h5::write_attribute(group, "class_counts", nlohmann::json(split.class_counts).dump());
  h5::write_attribute(group, "sample_counts", to_doubles(split.sample_counts));
  h5::write_attribute(group, "patient_counts", to_doubles(split.patient_counts));
  h5::write_attribute(group, "mean", split.mean);
  h5::write_attribute(group, "std", split.std);
  h5::write_attribute(group, "library_version", std::string(kVersion));
}

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
  if (split.name.empty() || split.name.find('/') != std::string::npos || split.name[0] == '.') {
    throw ConfigError("split name \"" + split.name + "\" is not a plain name");
  }
  h5::silence_errors();
  // The cache is never written in place: a kill in the middle of an HDF5 write can leave a file
  // HDF5 cannot open. The split goes into a copy (a reflink where the filesystem has them), which
  // then replaces the cache in one rename, as `medload build` publishes its caches. Readers that
  // have the cache open keep reading the file they opened.
  remove_copies_of_killed_runs(path);
  const std::string copy = path + kCopySuffix + std::to_string(::getpid());
  ::unlink(copy.c_str());  // left by an earlier run of this process id that was killed
  copy_file_for_update(path, copy);
  TemporaryFile remove_unless_published(copy);
  {
    h5::File file = h5::File::open(copy, /*read_write=*/true);
    {
      h5::Dataset images = h5::open_dataset(file.id(), "images");
      const auto dims = h5::shape(images);
      if (dims.empty() || dims[0] != split.part.size()) {
        throw ConfigError("the split has " + std::to_string(split.part.size()) + " samples but " + path +
                          " has " + (dims.empty() ? std::string("none") : std::to_string(dims[0])));
      }
    }
    {
      h5::Group splits = h5::require_group(file.id(), "splits");
      if (h5::exists(splits.id(), split.name)) h5::remove(splits.id(), split.name);
      h5::Group group = h5::create_group(splits.id(), split.name);
      write_split_group(group.id(), split);
    }
    // Every object is closed first: with one still open, H5Fclose only marks the file, the real
    // flush happens when that object closes, and a full disk there went unnoticed (a cache HDF5
    // could not open again was published).
    file.close();
  }
  publish_atomically(copy, path);
  remove_unless_published.release();
}

std::vector<std::string> list_splits(const std::string& path) {
  return schema::split_names(schema::CacheFile(path));
}

// The part, kind, parts, mean and std are read and validated by the cache schema (schema.h);
// the descriptive attributes (seed, ratios, counts) are read here.
StoredSplit read_split(const std::string& path, const std::string& name, std::size_t expected_size) {
  const schema::CacheFile file(path);
  const std::vector<std::string> names = schema::split_names(file);
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string there;
    for (const auto& n : names) there += (there.empty() ? "" : ", ") + n;
    throw ConfigError("the cache " + path + " has no split \"" + name + "\" (" +
                      (names.empty() ? std::string("it has no splits; run `medload split " + path + "`")
                                     : "it has: " + there) +
                      ")");
  }
  schema::SplitCore core =
      schema::read_split_core(file, name, expected_size != 0 ? expected_size : schema::kStoredLength);
  h5::Group group = h5::open_group(file.id(), std::string(schema::kSplits) + "/" + name);
  const hid_t g = group.id();
  auto malformed = [&](const std::string& what) -> FormatError {
    return FormatError("the split \"" + name + "\" of " + path + " is malformed: " + what);
  };
  StoredSplit split;
  split.name = name;
  split.kind = std::move(core.kind);
  split.parts = core.parts;
  split.part = std::move(core.part);
  split.mean = std::move(core.mean);
  split.std = std::move(core.std);
  for (const char* attribute : {"seed", "ratios", "patient_set_hash"}) {
    if (!h5::has_attribute(g, attribute))
      throw malformed(std::string("it has no attribute \"") + attribute + "\"");
  }
  try {
    split.seed = std::stoull(h5::read_string_attribute(g, "seed"));
  } catch (const std::logic_error&) {
    throw malformed("its seed is not a decimal number");
  }
  split.ratios = h5::read_double_attribute(g, "ratios");
  split.patient_set_hash = h5::read_string_attribute(g, "patient_set_hash");
  if (h5::has_attribute(g, "patients"))
    split.patients = static_cast<std::size_t>(h5::read_int_attribute(g, "patients"));
  if (h5::has_attribute(g, "samples_without_patient")) {
    split.samples_without_patient =
        static_cast<std::size_t>(h5::read_int_attribute(g, "samples_without_patient"));
  }
  if (h5::has_attribute(g, "class_counts")) {
    try {
      split.class_counts = nlohmann::json::parse(h5::read_string_attribute(g, "class_counts"))
                               .get<std::vector<std::vector<std::int64_t>>>();
    } catch (const nlohmann::json::exception& e) {
      throw malformed(std::string("class_counts: ") + e.what());
    }
  }
  for (const char* counts : {"sample_counts", "patient_counts"}) {
    if (!h5::has_attribute(g, counts)) continue;
    std::vector<std::int64_t>& out =
        std::string(counts) == "sample_counts" ? split.sample_counts : split.patient_counts;
    for (double v : h5::read_double_attribute(g, counts)) {
      if (!(v >= 0 && v <= static_cast<double>(schema::kMaxImages))) {
        throw malformed(std::string(counts) + " holds " + std::to_string(v));
      }
      out.push_back(static_cast<std::int64_t>(v));
    }
  }
  return split;
}

}  // namespace medload::loader
