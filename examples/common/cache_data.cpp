// TrainingData over a medload cache: the train and val parts of a stored patient-level split.
#include <sstream>
#include <string>

#include "medload/core/error.h"
#include "training.h"

#ifdef MEDLOAD_EXAMPLES_HAVE_CACHE
#include <nlohmann/json.hpp>

#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#endif

namespace medload::examples {

TrainingData cache_training_data(const std::string& path, const std::string& split) {
#ifdef MEDLOAD_EXAMPLES_HAVE_CACHE
  loader::DatasetOptions normalized;
  normalized.split = split;
  normalized.part = "train";
  loader::CacheDataset stats(path, normalized);  // only for the stored training mean and std

  // Served unnormalised in [0, 1]: augmentation works on that range, the training step then
  // normalises with the stored statistics.
  loader::DatasetOptions raw = normalized;
  raw.normalize = false;
  auto train = std::make_shared<loader::CacheDataset>(path, raw);
  raw.part = "val";
  auto val = std::make_shared<loader::CacheDataset>(path, raw);

  TrainingData data;
  data.class_names = train->class_names();
  data.train_labels = train->labels();
  data.train_patient_ids = train->patient_ids();
  data.mean = stats.mean();
  data.std = stats.std();
  {
    loader::CacheReader reader(path);
    const auto config = nlohmann::json::parse(reader.config_json(), nullptr, false);
    if (!config.is_discarded() && config.contains("augment")) {
      data.augment = augment::AugmentOptions::from_json(config.at("augment"));
    }
  }
  std::ostringstream d;
  const auto layout = train->layout();
  d << path << ": " << *train->size() << " train / " << *val->size() << " val images of " << layout.height << "x"
    << layout.width << " px (split \"" << split << "\"), classes";
  for (std::size_t c = 0; c < data.class_names.size(); ++c) d << (c ? ", " : " ") << data.class_names[c];
  data.description = d.str();
  data.train = train->source();
  data.val = val->source();
  return data;
#else
  (void)split;
  throw ConfigError("--cache " + path +
                    ": this build of the examples has no cache support (medload's CacheDataset was not built); "
                    "use --synthetic N");
#endif
}

}  // namespace medload::examples
