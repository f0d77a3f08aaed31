// train_semisupervised: does learning from unlabelled images help? The same small CNN, the same
// steps and seeds, trained on a few labelled patients alone and FixMatch-style with the rest.
//
//   bash scripts/demo.sh     # makes out/cache.h5 (the real corpus, split by patient)
//   train_semisupervised --cache out/cache.h5 --metrics-out out/semi.json
//
// For each seed: keep the labels of --label-fraction of the training patients of each class
// (chosen by patient, seeded; --unit-rows N: by blocks of N consecutive rows of a patient, the
// default 16 because the corpus's training part holds one large subject per class), hide the others; then
// train twice from the same initialisation on the same labelled batches (medload's SemiSupervisedSampler: B
// labelled + mu x B unlabelled rows per step; two augmentation views of each row from one read): supervised
// only, and with the unlabelled rows (pseudo-label from the weak view where its confidence reaches
// --threshold, cross-entropy on the strong view). Validation balanced accuracy and ROC AUC of both, per seed
// and averaged, go to the metrics file, with the paired difference and whether it is within noise.
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "integer_options.h"
#include "medload/core/error.h"
#include "semisupervised.h"

using namespace medload;

namespace {

struct Args {
  std::string cache;
  std::string split = "default";
  double label_fraction = 0.1;
  std::size_t unit_rows = 16;
  std::vector<std::uint64_t> seeds{0, 1, 2};
  std::string metrics_out;
  bool reference = false;
  examples::SemiSupervisedRunOptions run;
};

void add_flags(CLI::App& app, Args& a) {
  app.add_option("--cache", a.cache, "HDF5 cache built by `medload build` and split by `medload split`")
      ->required();
  app.add_option("--split", a.split, "the stored split (train part for training, val for metrics)")
      ->capture_default_str();
  app.add_option("--label-fraction", a.label_fraction,
                 "share of the labelled training patients of each class whose labels are kept (0..1)")
      ->capture_default_str();
  app.add_option("--unit-rows", a.unit_rows,
                 "labels are kept or hidden per patient (0) or per block of N consecutive rows of a patient")
      ->capture_default_str();
  app.add_option("--seeds", a.seeds, "seeds; each gives one pair of runs (supervised, semi-supervised)")
      ->capture_default_str()
      ->delimiter(',');
  app.add_option("--batch", a.run.labelled_batch, "labelled rows per step (B)")->capture_default_str();
  app.add_option("--mu", a.run.mu, "unlabelled rows per labelled row (mu x B per step)")
      ->capture_default_str();
  app.add_option("--steps", a.run.steps, "optimizer steps of each run")->capture_default_str();
  app.add_option("--threshold", a.run.threshold, "confidence a pseudo-label needs")->capture_default_str();
  app.add_option("--lambda-u", a.run.lambda_u, "weight of the unlabelled loss")->capture_default_str();
  app.add_option("--lr", a.run.learning_rate, "Adam learning rate")->capture_default_str();
  app.add_option("--threads", a.run.threads, "loader threads")->capture_default_str();
  app.add_option("--metrics-out", a.metrics_out,
                 "write both runs' metrics per seed and their comparison as JSON");
  app.add_flag("--reference", a.reference,
               "also train on every stored training label (the ceiling the two runs are measured against)");
  app.add_flag("--quiet", a.run.quiet, "no progress lines");
}

std::string figure(const nlohmann::json& j) {
  if (!j.is_number()) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(3) << j.get<double>();
  return s.str();
}

void print_summary(const nlohmann::json& m) {
  for (const char* key : {"val_balanced_accuracy", "val_roc_auc"}) {
    const auto& c = m.at(key);
    std::cout << key << ": supervised " << figure(c["supervised_mean"]) << " (sd "
              << figure(c["supervised_sd"]) << "), semi-supervised " << figure(c["semi_supervised_mean"])
              << " (sd " << figure(c["semi_supervised_sd"]) << "), difference "
              << figure(c["difference_mean"]) << " (sd " << figure(c["difference_sd"]) << ", "
              << c["seeds"].get<std::size_t>()
              << " seeds): " << (c["within_noise"].get<bool>() ? "within noise" : "beyond noise") << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Supervised vs semi-supervised (FixMatch-style) training on a few labelled patients of a medload "
      "cache"};
  Args args;
  add_flags(app, args);
  try {
    medload::cli::require_decimal_integers(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; a bad flag is a usage error
  }
  return examples::run_guarded("train_semisupervised", [&] {
    if (args.seeds.empty()) throw ConfigError("--seeds names no seed");
    args.run.validate();
    const auto data = examples::load_semisupervised_data(args.cache, args.split);
    if (!args.run.quiet) std::cerr << data.description << "\n";
    std::vector<examples::LabelBudget> budgets;
    std::vector<examples::SemiSupervisedResult> supervised, semi, all_labels;
    for (const std::uint64_t seed : args.seeds) {
      budgets.push_back(examples::keep_labels_by_patient(data.train_labels, data.train_patient_ids,
                                                         data.class_names.size(), args.label_fraction, seed,
                                                         args.unit_rows));
      const auto& b = budgets.back();
      if (!args.run.quiet) {
        std::cerr << "seed " << seed << ": labels of " << b.kept_units << " of " << b.labelled_units
                  << (args.unit_rows == 0 ? " patients" : " blocks") << " kept (" << b.labelled_rows
                  << " labelled rows, " << b.unlabelled_rows << " unlabelled)\n";
      }
      auto options = args.run;
      options.seed = seed;
      supervised.push_back(examples::train_semisupervised(data, b, options, false));
      semi.push_back(examples::train_semisupervised(data, b, options, true));
      if (args.reference) {
        // The ceiling: every stored training label, supervised (the cache's unlabelled rows, if
        // any, fill the unused unlabelled slots).
        examples::LabelBudget every = b;
        every.labels = data.train_labels;
        all_labels.push_back(examples::train_semisupervised(data, every, options, false));
      }
    }
    auto metrics = examples::compare_runs(args.seeds, budgets, supervised, semi, data, args.run,
                                          args.label_fraction, args.unit_rows);
    for (std::size_t i = 0; i < all_labels.size(); ++i) {
      metrics["runs"][i]["supervised_all_labels"] = {{"val", all_labels[i].val.to_json(data.class_names)},
                                                     {"steps", all_labels[i].steps}};
    }
    if (!args.metrics_out.empty()) examples::write_json_file(args.metrics_out, metrics);
    print_summary(metrics);
    return 0;
  });
}
