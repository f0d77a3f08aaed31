#include "cli.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "medload/core/error.h"
#include "medload/core/json_text.h"

namespace medload::examples {

TrainingData cache_training_data(const std::string& path, const std::string& split);  // cache_data.cpp

void add_common_flags(CLI::App& app, CommonArgs& a) {
  app.add_option("--cache", a.cache, "HDF5 cache built by `medload build` and split by `medload split`");
  app.add_option("--split", a.split, "the stored split to use (train part for training, val for metrics)")
      ->capture_default_str();
  app.add_option("--synthetic", a.synthetic,
                 "train on N generated images with a planted nodule in 10% of them instead of a cache");
  app.add_option("--epochs", a.epochs, "epochs to train")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch", a.batch, "samples per step (per rank)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--size", a.size, "model input size in pixels (0 = the stored size)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  app.add_option("--sampler", a.sampler, "balanced (oversampling), weighted (alias method) or none (shuffle)")
      ->capture_default_str()
      ->check(CLI::IsMember({"balanced", "weighted", "none"}));
  app.add_flag("--weighted-loss", a.weighted_loss, "weight the cross-entropy by inverse class frequency");
  app.add_flag("--no-augment", a.no_augment, "train without augmentation");
  app.add_option("--augment", a.augment_json, "augmentation options (JSON; default: the cache's config)")
      ->check(CLI::ExistingFile);
  app.add_option("--seed", a.seed, "seed of initialisation, sampling and augmentation")
      ->capture_default_str();
  app.add_option("--threads", a.threads, "loader threads (reading and augmenting ahead)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--compute-threads", a.compute_threads, "torch intra-op threads for the model")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--checkpoint", a.checkpoint, "directory for checkpoint.pt (written every epoch)");
  app.add_flag("--resume", a.resume, "continue from the checkpoint in --checkpoint when there is one");
  app.add_option("--checkpoint-every", a.checkpoint_every, "also checkpoint every N steps inside an epoch")
      ->capture_default_str();
  app.add_option("--kill-after-steps", a.kill_after_steps,
                 "testing crash recovery: the process kills itself (SIGKILL) after step N")
      ->capture_default_str();
  app.add_flag("--record-samples", a.record_samples,
               "write the sample ids of every epoch to the metrics file");
  app.add_option("--metrics-out", a.metrics_out, "write per-epoch metrics as JSON");
  app.add_flag("--quiet", a.quiet, "no progress or per-epoch lines");
}

TrainingData load_training_data(const CommonArgs& a) {
  if (a.cache.empty() == (a.synthetic == 0)) {
    throw ConfigError("give exactly one of --cache C.h5 and --synthetic N");
  }
  TrainingData data;
  if (a.synthetic > 0) {
    SyntheticOptions so;
    so.count = a.synthetic;
    so.size = a.size > 0 ? a.size : 32;
    so.seed = a.seed;
    data = synthetic_training_data(so);
  } else {
    data = cache_training_data(a.cache, a.split);
  }
  if (!a.augment_json.empty()) {
    const nlohmann::json j = core::read_json_file(a.augment_json, "the augmentation config");
    // Either a whole pipeline config or just its "augment" object.
    data.augment = augment::AugmentOptions::from_json(j.contains("augment") ? j.at("augment") : j);
  }
  return data;
}

TrainOptions train_options(const CommonArgs& a) {
  TrainOptions o;
  o.epochs = a.epochs;
  o.batch_size = a.batch;
  o.input_size = a.synthetic > 0 ? 0 : a.size;
  o.sampler = sampler_choice_from_string(a.sampler);
  o.weighted_loss = a.weighted_loss;
  o.augment = !a.no_augment;
  o.seed = a.seed;
  o.threads = a.threads;
  o.compute_threads = a.compute_threads;
  o.learning_rate = a.lr;
  o.checkpoint_dir = a.checkpoint;
  o.resume = a.resume;
  o.checkpoint_every = a.checkpoint_every;
  o.record_samples = a.record_samples;
  o.quiet = a.quiet;
  if (a.kill_after_steps > 0) {
    const std::size_t at = a.kill_after_steps;
    o.on_step = [at](std::size_t step) {
      if (step == at) {
        std::cerr << "killing myself after step " << step << " (--kill-after-steps)" << std::endl;
        std::raise(SIGKILL);
      }
    };
  }
  return o;
}

nlohmann::json metrics_json(const TrainResult& result, const TrainingData& data, const CommonArgs& a) {
  auto j = result.to_json(data.class_names);
  j["data"] = data.description;
  j["classes"] = data.class_names;
  j["sampler"] = a.sampler;
  j["weighted_loss"] = a.weighted_loss;
  j["seed"] = a.seed;
  return j;
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw IoError("cannot write " + tmp);
    out << j.dump(2) << "\n";
    if (!out) throw IoError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

int run_guarded(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace medload::examples
