// CacheDataset: one part of a stored split of a cache, as a torch::data dataset and a SampleSource.

#include "medload/loader/serve/cache_dataset.h"

#include <torch/data/example.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split.h"
#include "medload/loader/serve/split_store.h"

namespace medload::loader {

void DatasetOptions::validate() const {
  if (part != "train" && part != "val" && part != "test" && part != "all") {
    throw ConfigError("DatasetOptions.part is \"" + part + "\"; allowed train, val, test, all");
  }
  if (split.empty() && part != "all") {
    throw ConfigError("DatasetOptions.split is empty (no split), so part must be \"all\", not \"" + part +
                      "\"");
  }
  if (fold < 0) throw ConfigError("DatasetOptions.fold = " + std::to_string(fold) + " is negative");
}

namespace detail {

class CacheSplitSource : public SampleSource {
 public:
  CacheSplitSource(const std::string& path, const DatasetOptions& options) : reader_(path) {
    options.validate();
    const std::size_t n = reader_.size();
    layout_.channels = reader_.channels();
    layout_.height = reader_.height();
    layout_.width = reader_.width();
    layout_.depth = reader_.dtype() == PixelType::kUInt16 ? PixelDepth::kUInt16 : PixelDepth::kUInt8;
    if (reader_.dtype() != PixelType::kUInt8 && reader_.dtype() != PixelType::kUInt16) {
      throw FormatError("the cache " + path + " stores neither uint8 nor uint16 images");
    }
    output_.as_float = options.dtype == OutputDtype::kFloat32;
    output_.scale = layout_.depth == PixelDepth::kUInt16 ? 1.0f / 65535.0f : 1.0f / 255.0f;
    if (!output_.as_float && layout_.depth != PixelDepth::kUInt8) {
      throw ConfigError("DatasetOptions.dtype = uint8, but the cache " + path +
                        " stores 16-bit images: serve float32 instead");
    }

    if (options.split.empty()) {
      if (output_.as_float && options.normalize) {
        throw ConfigError(
            "DatasetOptions.normalize needs a split's training mean/std, but split is empty; "
            "set normalize = false or choose a split of " +
            path);
      }
      rows_.resize(n);
      for (std::size_t i = 0; i < n; ++i) rows_[i] = static_cast<std::int64_t>(i);
    } else {
      const StoredSplit split = read_split(path, options.split, n);
      const std::string current = hash_hex(patient_set_hash(reader_.patient_ids()));
      if (split.patient_set_hash != current) {
        throw ConfigError("the split \"" + options.split + "\" of " + path +
                          " was made for another set of patients "
                          "(patient set hash " +
                          split.patient_set_hash + ", the cache's is " + current +
                          "); run `medload split` again");
      }
      std::size_t stat = 0;
      if (split.kind == "kfold") {
        if (static_cast<std::size_t>(options.fold) >= split.parts) {
          throw ConfigError("DatasetOptions.fold = " + std::to_string(options.fold) + " but the split \"" +
                            options.split + "\" of " + path + " has " + std::to_string(split.parts) +
                            " folds");
        }
        stat = static_cast<std::size_t>(options.fold);
      } else if (options.part == "test" && split.parts < 3) {
        throw ConfigError("the split \"" + options.split + "\" of " + path +
                          " has no test part (ratios train,val)");
      }
      const auto fold = static_cast<std::int8_t>(options.fold);
      for (std::size_t i = 0; i < n; ++i) {
        const std::int8_t p = split.part[i];
        bool in = false;
        if (options.part == "all") {
          in = split.kind == "parts" || p >= 0;
        } else if (split.kind == "kfold") {
          in = p >= 0 && (options.part == "train" ? p != fold : p == fold);
        } else {
          in = p == static_cast<std::int8_t>(part_from_name(options.part));
        }
        if (in) rows_.push_back(static_cast<std::int64_t>(i));
      }
      if (output_.as_float && options.normalize) {
        output_.mean = static_cast<float>(split.mean[stat]);
        output_.std = static_cast<float>(split.std[stat]);
      }
    }
    if (!(output_.as_float && options.normalize)) {
      output_.mean = 0.0f;
      output_.std = 1.0f;
    }
    verify_ = options.verify;
    label_columns_ = reader_.multi_label() ? reader_.class_names().size() : 0;
    if (options.targets) select_targets(options.mask_dtype);
  }

  std::size_t size() const override { return rows_.size(); }
  SampleLayout layout() const override { return layout_; }
  SampleOutput output() const override { return output_; }
  void read(std::size_t index, void* out) const override {
    const auto row = static_cast<std::size_t>(rows_.at(index));
    reader_.read_image(row, out);
    if (verify_ && hash64(out, reader_.image_bytes()) != reader_.checksums()[row]) {
      throw FormatError("its pixels do not match their stored checksum (the file is corrupted)");
    }
  }
  std::size_t label_columns() const override { return label_columns_; }
  void label(std::size_t index, std::int64_t* out) const override {
    const auto row = static_cast<std::size_t>(rows_[index]);
    if (label_columns_ == 0) {
      *out = reader_.labels()[row];
    } else {
      const std::int8_t* entries = reader_.label_matrix().data() + row * label_columns_;
      std::copy_n(entries, label_columns_, out);  // 1, 0 or -1 (unknown)
    }
  }
  std::int64_t sample_id(std::size_t index) const override { return rows_[index]; }

  TargetKinds targets() const override { return targets_; }
  TargetState read_mask(std::size_t index, std::uint16_t* out) const override {
    const auto row = static_cast<std::size_t>(rows_.at(index));
    const TargetState state = targets_.masks ? reader_.mask_states()[row] : TargetState::kNone;
    if (state == TargetState::kValid) {
      reader_.read_mask(row, out);
    } else {
      std::fill_n(out, mask_area(), std::uint16_t{0});  // no read: the cache stores nothing there
    }
    return state;
  }
  TargetState boxes(std::size_t index, std::vector<Box>& out) const override {
    const auto row = static_cast<std::size_t>(rows_.at(index));
    const TargetState state = targets_.boxes ? reader_.box_states()[row] : TargetState::kNone;
    if (state == TargetState::kValid) {
      out = reader_.boxes(row);
    } else {
      out.clear();
    }
    return state;
  }
  TargetState landmarks(std::size_t index, std::vector<Landmark>& out) const override {
    const auto row = static_cast<std::size_t>(rows_.at(index));
    const TargetState state = targets_.landmarks ? reader_.landmark_states()[row] : TargetState::kNone;
    if (state == TargetState::kValid) {
      out = reader_.landmarks(row);
    } else {
      out.clear();
    }
    return state;
  }
  std::size_t mask_area() const {
    return static_cast<std::size_t>(layout_.height) * static_cast<std::size_t>(layout_.width);
  }
  std::string describe(std::size_t index) const override {
    if (index >= rows_.size()) return "sample #" + std::to_string(index) + " of " + reader_.path();
    const auto row = static_cast<std::size_t>(rows_[index]);
    return "sample " + std::to_string(row) + " (" + reader_.source_paths()[row] + ") of " + reader_.path();
  }

  const CacheReader& reader() const { return reader_; }
  const std::vector<std::int64_t>& rows() const { return rows_; }

 private:
  // The kinds the cache holds for any image (of the whole cache, so every part of a split serves
  // the same tensors), and the masks' dtype.
  void select_targets(MaskDtype mask_dtype) {
    if (!reader_.has_targets()) return;
    const auto given = [](const std::vector<TargetState>& states) {
      return std::any_of(states.begin(), states.end(), [](TargetState s) { return s != TargetState::kNone; });
    };
    targets_.masks = reader_.has_masks();
    targets_.boxes = given(reader_.box_states());
    targets_.landmarks = given(reader_.landmark_states());
    targets_.classes = reader_.target_classes().names.size();
    output_.masks_uint8 = mask_dtype == MaskDtype::kUInt8;
    if (targets_.masks && output_.masks_uint8 && targets_.classes > 256) {
      throw ConfigError("DatasetOptions.mask_dtype = uint8, but the cache " + reader_.path() + " has " +
                        std::to_string(targets_.classes) + " target classes (ids up to " +
                        std::to_string(targets_.classes - 1) + "): serve int64 masks");
    }
  }

  CacheReader reader_;
  std::vector<std::int64_t> rows_;
  SampleLayout layout_;
  SampleOutput output_;
  std::size_t label_columns_ = 0;
  bool verify_ = true;
  TargetKinds targets_;
};

}  // namespace detail

CacheDataset::CacheDataset(const std::string& path, DatasetOptions options)
    : options_(std::move(options)), source_(std::make_shared<detail::CacheSplitSource>(path, options_)) {}

CacheExample CacheDataset::get(std::size_t index) {
  const detail::CacheSplitSource& s = *source_;
  if (index >= s.size()) {
    throw std::out_of_range("CacheDataset::get: index " + std::to_string(index) + " of a dataset of " +
                            std::to_string(s.size()) + " samples (" + s.reader().path() + ")");
  }
  const SampleLayout layout = s.layout();
  const SampleOutput output = s.output();
  CacheExample example;
  example.sample_id = s.sample_id(index);
  const std::vector<std::int64_t> shape{layout.channels, layout.height, layout.width};
  try {
    if (!output.as_float) {
      example.image = torch::empty(shape, torch::kUInt8);
      s.read(index, example.image.data_ptr<std::uint8_t>());
    } else {
      std::vector<std::uint16_t> staging((layout.bytes() + 1) / 2);
      s.read(index, staging.data());
      example.image = torch::empty(shape, torch::kFloat32);
      float* out = example.image.data_ptr<float>();
      const float a = output.scale / output.std;
      const float b = -output.mean / output.std;
      const std::size_t n = layout.pixels();
      if (layout.depth == PixelDepth::kUInt8) {
        const auto* in = reinterpret_cast<const std::uint8_t*>(staging.data());
        for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<float>(in[k]) * a + b;
      } else {
        for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<float>(staging[k]) * a + b;
      }
    }
  } catch (const std::exception& e) {
    throw WorkerError("reading " + s.describe(index) + " failed: " + e.what());
  }
  if (s.label_columns() == 0) {
    std::int64_t label = 0;
    s.label(index, &label);
    example.label = torch::tensor(label, torch::kInt64);
  } else {
    example.label = torch::empty({static_cast<std::int64_t>(s.label_columns())}, torch::kInt64);
    s.label(index, example.label.data_ptr<std::int64_t>());
  }
  if (s.targets().any()) {
    try {
      read_targets(index, example);
    } catch (const std::exception& e) {
      throw WorkerError("reading the targets of " + s.describe(index) + " failed: " + e.what());
    }
  }
  return example;
}

void CacheDataset::read_targets(std::size_t index, CacheExample& example) const {
  const detail::CacheSplitSource& s = *source_;
  const TargetKinds kinds = s.targets();
  if (kinds.masks) {
    const SampleLayout layout = s.layout();
    std::vector<std::uint16_t> ids(s.mask_area());
    example.mask_state = s.read_mask(index, ids.data());
    const bool as_uint8 = s.output().masks_uint8;
    example.mask = torch::empty({1, layout.height, layout.width}, as_uint8 ? torch::kUInt8 : torch::kInt64);
    convert_mask(ids.data(), ids.size(), example.mask.data_ptr(), as_uint8);
  }
  // One sample's boxes and landmarks in the batch layout: collated as a batch of one, which has
  // no padding (M is its own count).
  Batch one;
  const auto options = torch::TensorOptions();
  if (kinds.boxes) {
    std::vector<std::vector<Box>> boxes(1);
    const std::vector<TargetState> states{s.boxes(index, boxes[0])};
    collate_boxes(boxes, states, options, one);
    example.boxes = one.boxes[0];
    example.box_state = states[0];
  }
  if (kinds.landmarks) {
    std::vector<std::vector<Landmark>> points(1);
    const std::vector<TargetState> states{s.landmarks(index, points[0])};
    collate_landmarks(points, states, options, one);
    example.landmarks = one.landmarks[0];
    example.landmark_state = states[0];
  }
}

std::vector<CacheExample> CacheDataset::get_batch(torch::ArrayRef<std::size_t> indices) {
  std::vector<CacheExample> batch;
  batch.reserve(indices.size());
  for (std::size_t i : indices) batch.push_back(get(i));
  return batch;
}

torch::optional<std::size_t> CacheDataset::size() const { return source_->size(); }
std::shared_ptr<const SampleSource> CacheDataset::source() const { return source_; }
const std::vector<std::int64_t>& CacheDataset::sample_ids() const { return source_->rows(); }

std::vector<std::int64_t> CacheDataset::labels() const {
  const CacheReader& reader = source_->reader();
  std::vector<std::int64_t> out;
  out.reserve(source_->rows().size());
  const std::size_t k = source_->label_columns();
  for (std::int64_t row : source_->rows()) {
    const auto r = static_cast<std::size_t>(row);
    if (k == 0) {
      out.push_back(reader.labels()[r]);
    } else {
      std::int64_t first = -1;
      for (std::size_t c = 0; c < k && first < 0; ++c) {
        if (reader.label_matrix()[r * k + c] == 1) first = static_cast<std::int64_t>(c);
      }
      out.push_back(first);
    }
  }
  return out;
}

std::vector<std::string> CacheDataset::patient_ids() const {
  std::vector<std::string> out;
  for (std::int64_t row : source_->rows())
    out.push_back(source_->reader().patient_ids()[static_cast<std::size_t>(row)]);
  return out;
}

const std::vector<std::string>& CacheDataset::class_names() const { return source_->reader().class_names(); }
TargetKinds CacheDataset::targets() const { return source_->targets(); }
const TargetClasses& CacheDataset::target_classes() const { return source_->reader().target_classes(); }
float CacheDataset::mean() const { return source_->output().mean; }
float CacheDataset::std() const { return source_->output().std; }
SampleLayout CacheDataset::layout() const { return source_->layout(); }
const std::string& CacheDataset::path() const { return source_->reader().path(); }

torch::data::Example<> Collate::apply_batch(std::vector<CacheExample> examples) {
  if (examples.empty()) throw ConfigError("Collate: empty batch");
  std::vector<torch::Tensor> images, labels;
  images.reserve(examples.size());
  labels.reserve(examples.size());
  for (auto& e : examples) {
    images.push_back(std::move(e.image));
    labels.push_back(std::move(e.label));
  }
  return {torch::stack(images), torch::stack(labels)};
}

namespace {

// Example e's boxes (landmarks), float32 [n,5] ([n,3]) rows of coordinates and label, back in
// the per-sample form the collation takes. ConfigError naming the sample for another layout.
template <class Target>
std::vector<Target> unpack(const CacheExample& e, const torch::Tensor& rows, const char* name) {
  constexpr std::int64_t kWidth = std::is_same_v<Target, Box> ? 5 : 3;
  if (rows.scalar_type() != torch::kFloat32 || rows.dim() != 2 || rows.size(1) != kWidth) {
    throw ConfigError("CollateBatch: sample " + std::to_string(e.sample_id) + "'s " + name +
                      " must be float32 [n," + std::to_string(kWidth) + "]; got " +
                      std::string(c10::toString(rows.scalar_type())) + " " + c10::str(rows.sizes()));
  }
  const torch::Tensor host = rows.to(torch::kCPU).contiguous();
  const float* p = host.data_ptr<float>();
  std::vector<Target> out(static_cast<std::size_t>(host.size(0)));
  for (std::size_t k = 0; k < out.size(); ++k, p += kWidth) {
    if constexpr (std::is_same_v<Target, Box>) {
      out[k] = {p[0], p[1], p[2], p[3], 0};
    } else {
      out[k] = {p[0], p[1], 0};
    }
    out[k].label = static_cast<std::int32_t>(p[kWidth - 1]);
  }
  return out;
}

}  // namespace

Batch CollateBatch::apply_batch(std::vector<CacheExample> examples) {
  if (examples.empty()) throw ConfigError("CollateBatch: empty batch");
  const CacheExample& first = examples.front();
  for (const CacheExample& e : examples) {
    if (e.mask.defined() != first.mask.defined() || e.boxes.defined() != first.boxes.defined() ||
        e.landmarks.defined() != first.landmarks.defined()) {
      throw ConfigError("CollateBatch: sample " + std::to_string(e.sample_id) +
                        " has other kinds of target than sample " + std::to_string(first.sample_id));
    }
  }
  const auto size = static_cast<std::int64_t>(examples.size());
  Batch batch;
  std::vector<torch::Tensor> images, labels, masks;
  batch.sample_ids = torch::empty({size}, torch::kInt64);
  for (std::size_t b = 0; b < examples.size(); ++b) {
    images.push_back(examples[b].image);
    labels.push_back(examples[b].label);
    if (first.mask.defined()) masks.push_back(examples[b].mask);
    batch.sample_ids.data_ptr<std::int64_t>()[b] = examples[b].sample_id;
  }
  batch.images = torch::stack(images);
  batch.labels = torch::stack(labels);
  if (first.mask.defined()) {
    batch.masks = torch::stack(masks);
    batch.mask_valid = torch::empty({size}, torch::kBool);
    for (std::size_t b = 0; b < examples.size(); ++b) {
      batch.mask_valid.data_ptr<bool>()[b] = examples[b].mask_state == TargetState::kValid;
    }
  }
  if (first.boxes.defined()) {
    std::vector<std::vector<Box>> boxes;
    std::vector<TargetState> states;
    for (const CacheExample& e : examples) {
      boxes.push_back(unpack<Box>(e, e.boxes, "boxes"));
      states.push_back(e.box_state);
    }
    collate_boxes(boxes, states, torch::TensorOptions(), batch);
  }
  if (first.landmarks.defined()) {
    std::vector<std::vector<Landmark>> points;
    std::vector<TargetState> states;
    for (const CacheExample& e : examples) {
      points.push_back(unpack<Landmark>(e, e.landmarks, "landmarks"));
      states.push_back(e.landmark_state);
    }
    collate_landmarks(points, states, torch::TensorOptions(), batch);
  }
  return batch;
}

}  // namespace medload::loader
