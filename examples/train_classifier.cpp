// train_classifier: train a small CNN on a medload cache (or on generated data) on one process.
//
//   medload build data/corpus --manifest data/corpus/manifest.csv -o out/cache.h5 --size 64
//   medload split out/cache.h5 --ratios 0.7,0.15,0.15
//   train_classifier --cache out/cache.h5 --epochs 2 --checkpoint out/ckpt --metrics-out out/metrics.json
//
// Patient-level split (the cache's stored split), a class-balanced sampler or a class-weighted
// loss, per-batch augmentation, medload's Loader; per-epoch loss and validation accuracy,
// balanced accuracy, per-class recall and ROC AUC; a checkpoint every epoch that --resume
// continues exactly (model, optimizer, sampler position, augmentation epoch).
#include <iostream>

#include "cli.h"
#include "integer_options.h"

int main(int argc, char** argv) {
  CLI::App app{"Train a classifier on a medload cache with medload's loader, sampler and augmentation"};
  medload::examples::CommonArgs args;
  medload::examples::add_common_flags(app, args);
  try {
    medload::cli::require_decimal_integers(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; a bad flag is a usage error
  }
  return medload::examples::run_guarded("train_classifier", [&] {
    const auto data = medload::examples::load_training_data(args);
    const auto options = medload::examples::train_options(args);
    const auto result = medload::examples::train(data, options);
    const auto j = medload::examples::metrics_json(result, data, args);
    if (!args.metrics_out.empty()) medload::examples::write_json_file(args.metrics_out, j);
    if (!args.quiet) {
      std::cerr << (result.interrupted ? "stopped" : "done") << " after " << result.steps
                << " steps; parameter checksum " << result.param_checksum << "\n";
    }
    return 0;
  });
}
