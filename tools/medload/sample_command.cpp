// medload sample CACHE.h5 --sampler weighted|oversample|undersample|sqrt|balanced-batch
//                [--split train] [--epochs E] [--seed S] [--world-size W] [--json]
// medload sample --labels LABELS.csv --sampler ...   (the same report for a labels table)
// What a sampler draws: per-class counts per epoch, duplicates, per-rank counts and ns per index
// (medload::samplers::composition_report).
//
// From a cache, --split names a part of the cache's stored patient-level split (`medload split`);
// --split all takes every sample. Unlabeled samples, and multi-label ones (the samplers draw by
// one class per sample), are left out and counted.
// Runs in medload-torch; the options are declared in sample_options.cpp.

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <algorithm>
#include "medload/core/error.h"
#include "medload/core/regular_file.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split.h"
#include "medload/loader/serve/split_store.h"
#include "medload/samplers/balanced_batch_sampler.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/class_weights.h"
#include "medload/samplers/composition_report.h"
#include "medload/samplers/weighted_random_sampler.h"
#include "torch_commands.h"

namespace medload::cli {
namespace {

// The labelled samples of one split: labels, patient ids and class names.
struct SplitData {
  std::vector<std::int64_t> labels;
  std::vector<std::string> patient_ids;
  std::vector<std::string> class_names;
  std::size_t unlabelled = 0;
  std::size_t multi_label = 0;
};

// Splits one CSV line (no quoting: labels and patient ids are plain tokens).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  std::string field;
  while (std::getline(stream, field, ',')) {
    while (!field.empty() && (field.back() == '\r' || field.back() == ' ')) field.pop_back();
    while (!field.empty() && field.front() == ' ') field.erase(field.begin());
    fields.push_back(field);
  }
  return fields;
}

bool is_integer(const std::string& text) {
  if (text.empty()) return false;
  for (std::size_t i = text[0] == '-' ? 1 : 0; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return text != "-";
}

// A labels table: a header naming a `label` column (class index or class name) and optionally a
// `patient_id` column. Empty labels and negative indices are unlabelled samples, left out.
SplitData read_labels_csv(const std::string& path) {
  core::RegularFileStream in(path, "the labels table");
  std::string line;
  if (!std::getline(in, line)) throw FormatError(path + ": empty; expected a header with a label column");
  const std::vector<std::string> header = split_csv(line);
  std::ptrdiff_t label_column = -1, patient_column = -1;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "label") label_column = static_cast<std::ptrdiff_t>(c);
    if (header[c] == "patient_id") patient_column = static_cast<std::ptrdiff_t>(c);
  }
  if (label_column < 0) throw FormatError(path + ": the header \"" + line + "\" has no \"label\" column");
  std::vector<std::string> raw, patients;
  std::size_t row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> fields = split_csv(line);
    if (static_cast<std::ptrdiff_t>(fields.size()) <= std::max(label_column, patient_column)) {
      throw FormatError(path + ": row " + std::to_string(row) + " has " + std::to_string(fields.size()) +
                        " fields; the header has " + std::to_string(header.size()));
    }
    raw.push_back(fields[static_cast<std::size_t>(label_column)]);
    patients.push_back(patient_column >= 0 ? fields[static_cast<std::size_t>(patient_column)] : "");
  }
  bool numeric = true;
  for (const std::string& label : raw) numeric = numeric && (label.empty() || is_integer(label));
  SplitData data;
  std::map<std::string, std::int64_t> names;
  if (!numeric) {
    for (const std::string& label : raw) {
      if (!label.empty()) names.emplace(label, 0);
    }
    std::int64_t next = 0;
    for (auto& [name, index] : names) {
      index = next++;
      data.class_names.push_back(name);
    }
  }
  for (std::size_t i = 0; i < raw.size(); ++i) {
    std::int64_t label = -1;
    if (!raw[i].empty()) label = numeric ? std::stoll(raw[i]) : names.at(raw[i]);
    if (label < 0) {
      ++data.unlabelled;
      continue;
    }
    data.labels.push_back(label);
    data.patient_ids.push_back(patients[i]);
  }
  if (numeric) {
    std::int64_t max_label = -1;
    for (std::int64_t label : data.labels) max_label = std::max(max_label, label);
    data.class_names.assign(static_cast<std::size_t>(max_label + 1), "");
  }
  return data;
}

// True when sample `i` (label -1) is labeled in /label_matrix without one class: several
// positives, or known negatives beside unknown entries (no positive). A row of -1 is an unlabeled
// sample, and so is a row of 0 (how medload stored one before unknown labels).
bool is_multi_label(const loader::CacheReader& cache, std::size_t i) {
  if (!cache.multi_label()) return false;
  const std::size_t k = cache.class_names().size();
  const std::int8_t* row = cache.label_matrix().data() + i * k;
  const auto count = [&](std::int8_t value) { return std::count(row, row + k, value); };
  return count(1) > 1 || (count(1) == 0 && count(0) > 0 && count(-1) > 0);
}

// The samples of one part of the cache's stored default split (every sample for "all").
SplitData read_cache_split(const SampleArgs& args) {
  loader::check_cache_in_child(args.cache);
  const loader::CacheReader cache(args.cache);
  std::vector<std::int8_t> part;
  std::int8_t wanted = 0;
  if (args.split != "all") {
    try {
      part = loader::read_split(args.cache, "default", cache.size()).part;
    } catch (const ConfigError& e) {
      throw ConfigError(std::string(e.what()) + "; or use --split all");  // the error says how to make one
    }
    wanted = static_cast<std::int8_t>(loader::part_from_name(args.split));
  }
  SplitData data;
  data.class_names = cache.class_names();
  const std::vector<std::int64_t>& labels = cache.labels();
  const std::vector<std::string>& patients = cache.patient_ids();
  for (std::size_t i = 0; i < cache.size(); ++i) {
    if (!part.empty() && part[i] != wanted) continue;
    if (labels[i] < 0) {
      ++(is_multi_label(cache, i) ? data.multi_label : data.unlabelled);
      continue;
    }
    data.labels.push_back(labels[i]);
    data.patient_ids.push_back(patients[i]);
  }
  return data;
}

SplitData read_split(const SampleArgs& args) {
  if (!args.labels_csv.empty()) {
    if (args.split != "all" && args.split != "train") {
      throw ConfigError("--split " + args.split + ": a labels table has no splits; use --split all");
    }
    return read_labels_csv(args.labels_csv);
  }
  return read_cache_split(args);
}

std::unique_ptr<samplers::StreamSampler> make_sampler(const SampleArgs& args, const SplitData& data) {
  using namespace medload::samplers;
  const std::size_t classes = data.class_names.size();
  if (args.sampler == "weighted") {
    return std::make_unique<WeightedRandomSampler>(inverse_frequency_sample_weights(data.labels, classes),
                                                   WeightedRandomSamplerOptions{args.seed, 0});
  }
  if (args.sampler == "balanced-batch") {
    BalancedBatchSamplerOptions options;
    options.classes_per_batch = args.classes_per_batch;
    options.samples_per_class = args.samples_per_class;
    options.seed = args.seed;
    options.num_classes = classes;
    options.patient_ids = data.patient_ids;
    options.max_per_patient = args.max_per_patient;
    return std::make_unique<BalancedBatchSampler>(data.labels, options);
  }
  ClassBalancedSamplerOptions options;
  options.mode = balance_mode_from_string(args.sampler);
  options.seed = args.seed;
  options.num_classes = classes;
  options.patient_ids = data.patient_ids;
  options.max_per_patient = args.max_per_patient;
  return std::make_unique<ClassBalancedSampler>(data.labels, options);
}

// The class-aware samplers draw every class: a class with no labelled sample in the split is a
// usage error for a cache (a labels table may number classes it does not use).
void check_every_class_has_samples(const SampleArgs& args, const SplitData& data) {
  if (args.sampler == "weighted" || args.cache.empty()) return;
  std::vector<std::size_t> counts(data.class_names.size(), 0);
  for (std::int64_t label : data.labels) ++counts[static_cast<std::size_t>(label)];
  for (std::size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] == 0) {
      throw ConfigError(args.cache + ": class \"" + data.class_names[c] +
                        "\" has no labelled samples in split " + args.split + "; the " + args.sampler +
                        " sampler needs every class (use --sampler weighted, or another split)");
    }
  }
}

int run_sample(const SampleArgs& args) {
  if (args.cache.empty() && args.labels_csv.empty()) {
    throw ConfigError("medload sample: give a cache (CACHE.h5) or --labels LABELS.csv");
  }
  if (args.sampler == "weighted" && args.max_per_patient > 0) {
    throw ConfigError("--max-per-patient " + std::to_string(args.max_per_patient) +
                      ": the weighted sampler has no patient cap; use a class-aware sampler");
  }
  const SplitData data = read_split(args);
  if (data.labels.empty()) {
    throw ConfigError((args.cache.empty() ? args.labels_csv : args.cache) + ": split \"" + args.split +
                      "\" has no labelled samples");
  }
  check_every_class_has_samples(args, data);
  const auto sampler = make_sampler(args, data);
  const samplers::CompositionReport report =
      samplers::composition_report(*sampler, data.labels, args.epochs, args.world_size, data.class_names);
  if (args.json) {
    std::cout << report.to_json() << "\n";
  } else {
    std::cout << (args.cache.empty() ? args.labels_csv : args.cache) << ", split " << args.split << ": "
              << data.labels.size() << " labelled samples";
    if (data.unlabelled > 0) std::cout << " (" << data.unlabelled << " unlabelled left out)";
    if (data.multi_label > 0) std::cout << " (" << data.multi_label << " multi-label left out)";
    std::cout << "\n" << report.to_text();
  }
  return kExitOk;
}

}  // namespace

Runner add_sample_command(CLI::App& command) {
  auto args = std::make_shared<SampleArgs>();
  declare_sample_options(command, *args);
  return [args] { return run_sample(*args); };
}

}  // namespace medload::cli
