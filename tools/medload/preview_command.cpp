// medload preview CACHE.h5 -o grid.png [--augment aug.json] [--n 8] [--draws 4] [--tile 192]
//                [--ids 3,17,42] [--seed S] [--threads T]
// A labelled PNG contact sheet: rows are cached samples, the first column as stored, then one
// column per epoch's augmented draw, for a person to check that nothing anatomically wrong comes
// out of an augmentation config (medload::augment::make_contact_sheet). A cache with targets
// has them drawn over every tile, moved with each draw: mask outlines, boxes, landmarks.
// Runs in medload-torch; the options are declared in preview_options.cpp.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "medload/augment/augment_options.h"
#include "medload/augment/augmenter.h"
#include "medload/augment/contact_sheet.h"
#include "medload/augment/target_hook.h"
#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/loader.h"
#include "torch_commands.h"

namespace medload::cli {
namespace {

// The augment options: from --augment (an augment object, or a pipeline config whose "augment"
// part is used), else the config the cache was built with, else the defaults.
augment::AugmentOptions load_options(const PreviewArgs& args, const loader::CacheReader& cache,
                                     std::string& source) {
  nlohmann::json j;
  if (!args.augment.empty()) {
    j = core::read_json_file(args.augment, "the augmentation config");
    source = args.augment;
  } else {
    j = core::parse_json(cache.config_json());
    if (j.is_discarded()) j = nlohmann::json::object();
    source = "the config " + cache.path() + " was built with";
  }
  if (j.is_object() && j.contains("augment") &&
      (j.contains("preprocess") || j.contains("validate") || j.size() == 1)) {
    j = j.at("augment");
  }
  if (args.augment.empty() && !j.is_object()) j = nlohmann::json::object();
  try {
    augment::AugmentOptions options = augment::AugmentOptions::from_json(j);
    if (args.seed >= 0) options.seed = static_cast<std::uint64_t>(args.seed);
    return options;
  } catch (const ConfigError& e) {
    throw ConfigError((args.augment.empty() ? cache.path() : args.augment) + ": " + e.what());
  }
}

// n sample ids, round-robin over the classes (unlabeled last) so that rare classes appear.
std::vector<std::int64_t> pick_samples(const loader::CacheReader& cache, int n) {
  std::map<std::int64_t, std::vector<std::int64_t>> by_class;
  const auto& labels = cache.labels();
  for (std::size_t i = 0; i < cache.size(); ++i) {
    const std::int64_t label = i < labels.size() ? labels[i] : -1;
    by_class[label < 0 ? INT64_MAX : label].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> picked;
  for (std::size_t round = 0; static_cast<int>(picked.size()) < n; ++round) {
    bool any = false;
    for (const auto& entry : by_class) {
      if (round < entry.second.size() && static_cast<int>(picked.size()) < n) {
        picked.push_back(entry.second[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return picked;
}

std::string row_label(const loader::CacheReader& cache, std::int64_t id) {
  const auto& labels = cache.labels();
  const auto& names = cache.class_names();
  const std::int64_t label = static_cast<std::size_t>(id) < labels.size() ? labels[id] : -1;
  std::string text = label >= 0 && static_cast<std::size_t>(label) < names.size() ? names[label]
                     : label >= 0 ? "class " + std::to_string(label)
                                  : "unlabeled";
  return text.size() > 18 ? text.substr(0, 17) + "~" : text;
}

// The images of `ids` as uint8 [N,C,H,W] (16-bit caches are shown scaled to 8 bits).
torch::Tensor read_samples(const loader::CacheReader& cache, const std::vector<std::int64_t>& ids) {
  const std::int64_t n = static_cast<std::int64_t>(ids.size());
  const std::int64_t c = cache.channels(), h = cache.height(), w = cache.width();
  const bool wide = cache.dtype() == loader::PixelType::kUInt16;
  torch::Tensor raw = torch::empty({n, c, h, w}, wide ? torch::kInt32 : torch::kUInt8);
  if (wide) {
    std::vector<std::uint16_t> buffer(static_cast<std::size_t>(c * h * w));
    std::int32_t* out = raw.data_ptr<std::int32_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      cache.read_image(static_cast<std::size_t>(ids[i]), buffer.data());
      for (std::size_t k = 0; k < buffer.size(); ++k)
        out[i * c * h * w + static_cast<std::int64_t>(k)] = buffer[k];
    }
    return raw.div(257, "floor").to(torch::kUInt8);
  }
  for (std::int64_t i = 0; i < n; ++i) {
    cache.read_image(static_cast<std::size_t>(ids[i]), raw[i].data_ptr());
  }
  return raw;
}

// The targets of `ids` for the sheet to draw (none when the cache has none): masks where the
// cache has them, boxes and landmarks padded, as medload's loader serves them.
augment::TargetTensors read_targets(const loader::CacheReader& cache, const std::vector<std::int64_t>& ids) {
  augment::TargetTensors t;
  if (!cache.has_targets()) return t;
  const auto n = static_cast<std::int64_t>(ids.size());
  if (cache.has_masks()) {
    const std::int64_t area = static_cast<std::int64_t>(cache.height()) * cache.width();
    t.masks = torch::zeros({n, 1, cache.height(), cache.width()}, torch::kInt64);
    std::vector<std::uint16_t> buffer(static_cast<std::size_t>(area));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto row = static_cast<std::size_t>(ids[static_cast<std::size_t>(i)]);
      if (cache.mask_states()[row] != loader::TargetState::kValid) continue;
      cache.read_mask(row, buffer.data());
      loader::convert_mask(buffer.data(), buffer.size(), t.masks.data_ptr<std::int64_t>() + i * area, false);
    }
  }
  std::vector<std::vector<loader::Box>> boxes;
  std::vector<std::vector<loader::Landmark>> landmarks;
  std::vector<loader::TargetState> box_states, landmark_states;
  for (std::int64_t id : ids) {
    const auto row = static_cast<std::size_t>(id);
    boxes.push_back(cache.boxes(row));
    landmarks.push_back(cache.landmarks(row));
    box_states.push_back(cache.box_states()[row]);
    landmark_states.push_back(cache.landmark_states()[row]);
  }
  loader::Batch batch;  // the loader's padded layout, as medload's Loader serves it
  loader::collate_boxes(boxes, box_states, torch::TensorOptions(), batch);
  loader::collate_landmarks(landmarks, landmark_states, torch::TensorOptions(), batch);
  t.boxes = batch.boxes;
  t.box_counts = batch.box_counts;
  t.landmarks = batch.landmarks;
  t.landmark_counts = batch.landmark_counts;
  return t;
}

}  // namespace

Runner add_preview_command(CLI::App& command) {
  auto args = std::make_shared<PreviewArgs>();
  declare_preview_options(command, *args);
  return [args]() -> int {
    loader::check_cache_in_child(args->cache);
    const loader::CacheReader cache(args->cache);
    if (cache.size() == 0) throw ConfigError("medload preview: " + args->cache + " holds no images");
    std::string source;
    const augment::AugmentOptions options = load_options(*args, cache, source);
    std::vector<std::int64_t> ids = args->ids.empty() ? pick_samples(cache, args->n) : args->ids;
    for (std::int64_t id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= cache.size()) {
        throw ConfigError("medload preview: --ids has " + std::to_string(id) + "; " + args->cache +
                          " has samples 0.." + std::to_string(cache.size() - 1));
      }
    }
    std::vector<std::string> labels;
    for (std::int64_t id : ids) labels.push_back(row_label(cache, id));
    augment::Augmenter augmenter(options, args->threads);
    augment::ContactSheetOptions sheet_options;
    sheet_options.draws = args->draws;
    sheet_options.tile = args->tile;
    const augment::TargetTensors targets = read_targets(cache, ids);
    const torch::Tensor sheet =
        augment::make_contact_sheet(read_samples(cache, ids), ids, labels, augmenter, targets, sheet_options);
    augment::write_png(sheet, args->output);
    std::cout << "wrote " << args->output << ": " << ids.size() << " samples x " << args->draws
              << " augmented draws (augmentation from " << source << ")\n";
    if (cache.has_targets()) {
      std::cout << "targets drawn: " << (cache.has_masks() ? "mask outlines, " : "")
                << "boxes and landmarks, each class in its colour\n";
    }
    for (const std::string& o : options.active_overrides()) std::cout << "override in force: " << o << "\n";
    return kExitOk;
  };
}

}  // namespace medload::cli
