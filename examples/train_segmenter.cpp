// train_segmenter: a small U-Net on real MR slices with atlas-derived label masks, end to end
// through medload (Debian's mricron-data must be installed: scripts/setup.sh does it).
//
//   train_segmenter --work out/seg --metrics-out out/seg/metrics.json
//
// 1. writes the slice set (segmentation_data.h): axial slices of the ch2 T1 template, coarse
//    label maps (background, left cerebrum, right cerebrum, cerebellum) from the AAL atlas,
//    cerebellum boxes, a manifest `path,label,patient_id,mask,boxes` and a class map;
// 2. builds a cache from it with medload::loader::build_cache (masks and boxes follow their
//    images through the ROI crop and the letterbox to --size);
// 3. splits it by patient (blocks of contiguous slices) with medload's stratified split;
// 4. trains the U-Net on the masks medload's Loader serves (Batch::masks, Batch::mask_valid);
// 5. writes Dice per class, mean Dice and pixel accuracy on the validation part per epoch.
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "integer_options.h"
#include "medload/augment/target_hook.h"
#include "medload/core/error.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#include "medload/loader/serve/split_store.h"
#include "segmentation_data.h"
#include "segmentation_training.h"

namespace fs = std::filesystem;
using namespace medload;

namespace {

struct Args {
  std::string work = (fs::temp_directory_path() / "medload_train_segmenter").string();
  std::string templates = examples::SegmentationDataOptions{}.templates;
  std::string metrics_out;  // default: <work>/metrics.json
  std::int64_t size = 64;
  double val_fraction = 0.25;
  int block = 8;
  bool no_augment = false;
  examples::SegmentationTrainOptions train;
};

void add_flags(CLI::App& app, Args& a) {
  app.add_option("--work", a.work, "folder for the slice set, the cache and the metrics")
      ->capture_default_str();
  app.add_option("--templates", a.templates, "mricron-data's templates folder")->capture_default_str();
  app.add_option("--metrics-out", a.metrics_out, "metrics JSON (default: WORK/metrics.json)");
  app.add_option("--size", a.size, "cache and model side in pixels (letterboxed)")
      ->capture_default_str()
      ->check(CLI::Range(16, 512));
  app.add_option("--val-fraction", a.val_fraction, "share of the slices (by patient) in the validation part")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 0.9));
  app.add_option("--block", a.block, "contiguous slices per patient id")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--epochs", a.train.epochs, "epochs to train")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch", a.train.batch_size, "samples per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--width", a.train.width, "channels of the U-Net's first level")
      ->capture_default_str()
      ->check(CLI::Range(2, 256));
  app.add_option("--lr", a.train.learning_rate, "Adam learning rate")->capture_default_str();
  app.add_option("--dice-weight", a.train.dice_weight,
                 "weight of the soft Dice loss beside the cross-entropy")
      ->capture_default_str();
  app.add_option("--seed", a.train.seed, "seed of the split, initialisation, shuffle and augmentation")
      ->capture_default_str();
  app.add_option("--threads", a.train.threads, "loader (and cache build) threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--compute-threads", a.train.compute_threads, "torch intra-op threads for the model")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--no-augment", a.no_augment,
               "train without augmentation (default: medload's safe defaults + "
               "left-right flips that swap the hemisphere labels)");
  app.add_flag("--quiet", a.train.quiet, "no progress or per-epoch lines");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Step 2: the cache, built by medload (slices with targets are decoded on every build).
loader::BuildResult build_segmentation_cache(const Args& a, const examples::SegmentationDataResult& slices,
                                             const std::string& cache) {
  loader::BuildOptions b;
  b.root = fs::path(slices.manifest).parent_path().string();
  b.manifest = slices.manifest;
  b.target_classes = slices.class_map;
  b.output = cache;
  b.config.preprocess.letterbox.size = static_cast<int>(a.size);
  b.threads = static_cast<int>(a.train.threads);
  b.progress = a.train.quiet ? ProgressStyle::kQuiet : ProgressStyle::kAuto;
  const auto result = loader::build_cache(b);
  if (result.rejected_files > 0) {
    throw ConfigError(cache + ": " + std::to_string(result.rejected_files) + " slices were rejected; see " +
                      result.report_path);
  }
  return result;
}

// Step 3: a stratified patient-level train/val split, stored in the cache as "default".
loader::StoredSplit split_by_patient(const Args& a, const std::string& cache) {
  loader::SplitOptions so;
  so.ratios = {1.0 - a.val_fraction, a.val_fraction};
  so.seed = a.train.seed;
  loader::StoredSplit split = [&] {
    const loader::CacheReader reader(cache);
    return loader::make_split(reader, so, a.train.threads);
  }();  // the reader is closed before write_split replaces the file
  loader::write_split(cache, split);
  return split;
}

// Step 4's data: the two parts, normalised with the training part's statistics, masks as int64.
examples::SegmentationData segmentation_data(const std::string& cache, const loader::StoredSplit& split) {
  loader::DatasetOptions o;
  o.part = "train";
  o.targets = true;
  o.mask_dtype = loader::MaskDtype::kInt64;
  const loader::CacheDataset train(cache, o);
  o.part = "val";
  const loader::CacheDataset val(cache, o);
  examples::SegmentationData data;
  data.train = train.source();
  data.val = val.source();
  data.class_names = loader::CacheReader(cache).target_classes().names;
  data.mean = train.mean();
  data.std = train.std();
  std::ostringstream d;
  const auto layout = train.layout();
  d << cache << ": " << *train.size() << " train / " << *val.size() << " val slices ("
    << split.patient_counts.at(0) << " / " << split.patient_counts.at(1)
    << " blocks of contiguous slices) of " << layout.height << "x" << layout.width << " px, classes";
  for (std::size_t c = 0; c < data.class_names.size(); ++c) d << (c ? ", " : " ") << data.class_names[c];
  data.description = d.str();
  return data;
}

// Step 4's augmentation: medload's defaults (small rotations, shifts and scaling, intensity
// changes within the medical limits) and left-right flips, which are safe here because the flip
// swaps the hemisphere classes (laterality) in the warped masks: a mirrored brain with its labels
// swapped is still a brain labelled in the image's convention (the subject's left on the left).
loader::TargetAugmentHook segmentation_augmentation(const examples::SegmentationData& data,
                                                    std::uint64_t seed) {
  augment::AugmentOptions o;
  o.seed = seed;
  o.allow_horizontal_flip = true;
  o.horizontal_flip.probability = 0.5;
  o.laterality = {{examples::kLeftCerebrum, examples::kRightCerebrum}};
  return augment::make_target_hook(o, 1, {data.mean, data.std});
}

int run(Args a) {
  const auto start = std::chrono::steady_clock::now();
  examples::SegmentationDataOptions so;
  so.templates = a.templates;
  so.output = (fs::path(a.work) / "slices").string();
  so.block = a.block;
  const auto slices = examples::prepare_segmentation_data(so);
  const double prepare_s = seconds_since(start);

  const std::string cache = (fs::path(a.work) / ("cache_" + std::to_string(a.size) + ".h5")).string();
  const auto build = build_segmentation_cache(a, slices, cache);
  const auto split = split_by_patient(a, cache);
  const double cache_s = seconds_since(start) - prepare_s;

  const auto data = segmentation_data(cache, split);
  if (!a.no_augment) a.train.augment = segmentation_augmentation(data, a.train.seed);
  const auto result = examples::train_segmenter_model(data, a.train);

  auto j = result.to_json(data.class_names);
  j["program"] = "train_segmenter";
  j["data"] = data.description;
  j["slices"] = slices.summary;
  j["cache"] = {{"path", cache}, {"images", build.images}, {"report", build.report_path}};
  j["split"] = split.to_json(loader::CacheReader(cache).class_names());
  j["classes"] = data.class_names;
  j["size"] = a.size;
  j["width"] = a.train.width;
  j["seed"] = a.train.seed;
  j["augment"] = !a.no_augment;
  j["seconds"] = {{"prepare", prepare_s}, {"cache_and_split", cache_s}, {"total", seconds_since(start)}};
  const std::string out =
      a.metrics_out.empty() ? (fs::path(a.work) / "metrics.json").string() : a.metrics_out;
  examples::write_json_file(out, j);
  if (!a.train.quiet) {
    const auto& v = result.epochs.back().val;
    std::cerr << "validation mean Dice " << v.mean_dice << ", pixel accuracy " << v.pixel_accuracy
              << "; metrics in " << out << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small U-Net on real MR slices with atlas label masks (mricron-data) through medload"};
  Args args;
  add_flags(app, args);
  try {
    medload::cli::require_decimal_integers(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return examples::run_guarded("train_segmenter", [&] { return run(args); });
}
