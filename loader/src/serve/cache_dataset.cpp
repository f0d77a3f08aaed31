// CacheDataset: one part of a stored split of a cache, as a torch::data dataset and a SampleSource.

#include "medload/loader/serve/cache_dataset.h"

#include <torch/data/example.h>

#include <cstring>
#include <string>
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
      const std::uint8_t* bits = reader_.label_matrix().data() + row * label_columns_;
      for (std::size_t k = 0; k < label_columns_; ++k) out[k] = bits[k];
    }
  }
  std::int64_t sample_id(std::size_t index) const override { return rows_[index]; }
  std::string describe(std::size_t index) const override {
    if (index >= rows_.size()) return "sample #" + std::to_string(index) + " of " + reader_.path();
    const auto row = static_cast<std::size_t>(rows_[index]);
    return "sample " + std::to_string(row) + " (" + reader_.source_paths()[row] + ") of " + reader_.path();
  }

  const CacheReader& reader() const { return reader_; }
  const std::vector<std::int64_t>& rows() const { return rows_; }

 private:
  CacheReader reader_;
  std::vector<std::int64_t> rows_;
  SampleLayout layout_;
  SampleOutput output_;
  std::size_t label_columns_ = 0;
  bool verify_ = true;
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
  return example;
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
        if (reader.label_matrix()[r * k + c] != 0) first = static_cast<std::int64_t>(c);
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

}  // namespace medload::loader
