// medload split: store a stratified patient-level train/val/test split (and, with --kfold, k
// patient-level folds of the non-test samples) in a cache, with the training mean/std.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split_store.h"

namespace medload::cli {
namespace {

std::string describe(const loader::StoredSplit& split, const std::vector<std::string>& class_names) {
  std::ostringstream out;
  out << "split \"" << split.name << "\" (seed " << split.seed << "): " << split.patients << " patients";
  if (split.samples_without_patient > 0) {
    out << ", " << split.samples_without_patient << " samples without a patient id (each its own patient)";
  }
  out << ", patient set " << split.patient_set_hash << "\n";
  out << "  " << std::left << std::setw(8) << "part" << std::right << std::setw(9) << "patients"
      << std::setw(9) << "samples";
  for (const auto& name : class_names) out << "  " << std::setw(6) << name;
  out << "  (unlabeled)\n";
  for (std::size_t p = 0; p < split.parts; ++p) {
    out << "  " << std::left << std::setw(8) << split.part_label(p) << std::right << std::setw(9)
        << split.patient_counts[p] << std::setw(9) << split.sample_counts[p];
    for (std::size_t c = 0; c < split.class_counts[p].size(); ++c) {
      const std::size_t width = c < class_names.size() ? std::max<std::size_t>(6, class_names[c].size()) : 11;
      out << "  " << std::setw(static_cast<int>(width)) << split.class_counts[p][c];
    }
    out << "\n";
  }
  out << std::setprecision(6);
  if (split.kind == "kfold") {
    for (std::size_t f = 0; f < split.mean.size(); ++f) {
      out << "  training mean/std without fold" << f << ": " << split.mean[f] << " / " << split.std[f]
          << "\n";
    }
  } else {
    out << "  training mean/std (pixels scaled to [0, 1]): " << split.mean[0] << " / " << split.std[0]
        << "\n";
  }
  return out.str();
}

}  // namespace

Runner add_split_command(CLI::App& command) {
  struct Args {
    std::string cache;
    std::vector<double> ratios{0.7, 0.15, 0.15};
    std::uint64_t seed = 0;
    std::size_t kfold = 0;
    std::size_t threads = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  command.add_option("CACHE", args->cache, "The cache file")->required()->type_name("CACHE.h5");
  command.add_option("--ratios", args->ratios, "train,val[,test] fractions of the samples, by patient")
      ->delimiter(',')
      ->default_str("0.7,0.15,0.15");
  command.add_option("--seed", args->seed, "Seed: the same seed gives the same split")->default_val(0);
  command
      .add_option("--kfold", args->kfold,
                  "Also store K patient-level folds of the train+val samples (the test part stays held out)")
      ->check(CLI::Range(2, 100));
  command.add_option("--threads", args->threads, "Threads for reading images (mean/std); 0 = all cores")
      ->check(CLI::Range(0, 256))
      ->default_val(0);
  command.add_flag("--json", args->json, "Print the stored splits as JSON");
  command.footer(
      "Stores /splits/default (and /splits/kfold) in the cache; the images are never rewritten.\n"
      "The cache must not be open in another process while the split is written (HDF5 refuses).");

  return [args]() -> int {
    loader::SplitOptions options;
    options.ratios = args->ratios;
    options.seed = args->seed;
    options.validate();
    std::vector<loader::StoredSplit> splits;
    std::vector<std::string> class_names;
    {
      loader::check_cache_in_child(args->cache);
      const loader::CacheReader reader(args->cache);  // closed before the file is opened for writing
      class_names = reader.class_names();
      splits.push_back(loader::make_split(reader, options, args->threads));
      if (args->kfold > 0) {
        splits.push_back(
            loader::make_kfold(reader, args->kfold, args->seed, splits.front().part, args->threads));
      }
    }
    for (const auto& split : splits) loader::write_split(args->cache, split);
    if (args->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& split : splits) out.push_back(split.to_json(class_names));
      std::cout << json_output(out) << '\n';
    } else {
      for (const auto& split : splits) std::cout << describe(split, class_names);
      std::cout << "stored in " << args->cache << "\n";
    }
    return kExitOk;
  };
}

}  // namespace medload::cli
