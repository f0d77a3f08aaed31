// TrainingData over a medload cache: the train and val parts of a stored patient-level split.
#include <sstream>
#include <string>

#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "training.h"

#ifdef MEDLOAD_EXAMPLES_HAVE_CACHE
#include <nlohmann/json.hpp>

#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/cache_dataset.h"
#endif

namespace medload::examples {

#ifdef MEDLOAD_EXAMPLES_HAVE_CACHE
namespace {

// The rows `rows` of another source: the training part without its unlabeled samples.
class SubsetSource : public loader::SampleSource {
 public:
  SubsetSource(std::shared_ptr<const loader::SampleSource> inner, std::vector<std::size_t> rows)
      : inner_(std::move(inner)), rows_(std::move(rows)) {}
  std::size_t size() const override { return rows_.size(); }
  loader::SampleLayout layout() const override { return inner_->layout(); }
  loader::SampleOutput output() const override { return inner_->output(); }
  void read(std::size_t index, void* out) const override { inner_->read(rows_.at(index), out); }
  std::size_t label_columns() const override { return inner_->label_columns(); }
  void label(std::size_t index, std::int64_t* out) const override { inner_->label(rows_.at(index), out); }
  std::int64_t sample_id(std::size_t index) const override { return inner_->sample_id(rows_.at(index)); }
  std::string describe(std::size_t index) const override { return inner_->describe(rows_.at(index)); }

 private:
  std::shared_ptr<const loader::SampleSource> inner_;
  std::vector<std::size_t> rows_;
};

}  // namespace
#endif

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
  // Unlabeled samples (-1) stay in the cache (for audits, self-supervision, later labelling) but
  // cannot be trained on with a cross-entropy: the training part keeps the labeled ones.
  const auto all_labels = train->labels();
  const auto all_patients = train->patient_ids();
  std::vector<std::size_t> labeled;
  for (std::size_t i = 0; i < all_labels.size(); ++i) {
    if (all_labels[i] >= 0) {
      labeled.push_back(i);
      data.train_labels.push_back(all_labels[i]);
      data.train_patient_ids.push_back(all_patients[i]);
    }
  }
  const std::size_t unlabeled = all_labels.size() - labeled.size();
  data.mean = stats.mean();
  data.std = stats.std();
  {
    loader::CacheReader reader(path);
    const auto config = core::parse_json(reader.config_json());
    if (!config.is_discarded() && config.contains("augment")) {
      data.augment = augment::AugmentOptions::from_json(config.at("augment"));
    }
  }
  std::ostringstream d;
  const auto layout = train->layout();
  d << path << ": " << labeled.size() << " train (" << unlabeled << " unlabeled left out) / " << *val->size()
    << " val images of " << layout.height << "x" << layout.width << " px (split \"" << split
    << "\"), classes";
  for (std::size_t c = 0; c < data.class_names.size(); ++c) d << (c ? ", " : " ") << data.class_names[c];
  data.description = d.str();
  data.train = std::make_shared<SubsetSource>(train->source(), std::move(labeled));
  data.val = val->source();
  return data;
#else
  (void)split;
  throw ConfigError(
      "--cache " + path +
      ": this build of the examples has no cache support (medload's CacheDataset was not built); "
      "use --synthetic N");
#endif
}

}  // namespace medload::examples
