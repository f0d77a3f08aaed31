#include "medload/loader/serve/cache_dataset.h"

#include <gtest/gtest.h>
#include <torch/data/dataloader.h>
#include <torch/data/samplers/random.h>
#include <torch/data/samplers/sequential.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/loader.h"
#include "medload/loader/serve/split_store.h"
#include "synthetic_images.h"
#include "test_cache.h"

namespace medload::loader {
namespace {

using testing::TempDir;
using testing::TestSample;

constexpr int kSide = 32;

// 90 samples of 45 patients (2 images each; patient 7's second image has no id), classes 2:1.
std::vector<TestSample> samples() {
  std::vector<TestSample> out;
  for (int i = 0; i < 90; ++i) {
    TestSample s;
    s.pixels = testing::chest_like(static_cast<std::uint32_t>(i), kSide, i % 3 == 0);
    s.label = (i / 2) % 3 == 0 ? 1 : 0;
    s.patient = i == 15 ? "" : "P" + std::to_string(i / 2);
    s.path = (s.label ? "pneumonia/" : "normal/") + std::to_string(i) + ".png";
    out.push_back(std::move(s));
  }
  return out;
}

std::string split_cache(const TempDir& dir, std::uint64_t seed = 1) {
  const std::string path = dir.path("cache.h5");
  testing::write_test_cache(path, kSide, kSide, samples());
  StoredSplit split;
  {
    const CacheReader reader(path);
    SplitOptions options;
    options.seed = seed;
    split = make_split(reader, options, 2);
  }
  write_split(path, split);
  return path;
}

DatasetOptions part(const std::string& name) {
  DatasetOptions options;
  options.part = name;
  return options;
}

TEST(CacheDataset, PartsPartitionTheCacheByPatient) {
  TempDir dir;
  const std::string path = split_cache(dir);
  std::set<std::int64_t> ids;
  std::set<std::string> patients_seen;
  std::size_t total = 0;
  for (const char* name : {"train", "val", "test"}) {
    CacheDataset dataset(path, part(name));
    total += *dataset.size();
    ids.insert(dataset.sample_ids().begin(), dataset.sample_ids().end());
    std::set<std::string> patients;
    for (const auto& p : dataset.patient_ids()) {
      if (!p.empty()) patients.insert(p);
    }
    for (const auto& p : patients) EXPECT_EQ(patients_seen.count(p), 0u) << p << " in two parts";
    patients_seen.insert(patients.begin(), patients.end());
  }
  EXPECT_EQ(total, 90u);
  EXPECT_EQ(ids.size(), 90u);
  const StoredSplit split = read_split(path, "default", 90);
  EXPECT_EQ(split.samples_without_patient, 1u);
  EXPECT_EQ(split.patients, 46u);
  EXPECT_NEAR(static_cast<double>(split.sample_counts[0]) / 90.0, 0.7, 0.05);
}

TEST(CacheDataset, ServesNormalizedPixelsWithTheStoredTrainingMeanAndStd) {
  TempDir dir;
  const std::string path = split_cache(dir);
  CacheDataset train(path, part("train"));
  const auto all = samples();
  // The stored mean/std are those of the training images, scaled to [0, 1].
  double s = 0, s2 = 0, n = 0;
  for (std::int64_t row : train.sample_ids()) {
    for (std::uint8_t v : all[static_cast<std::size_t>(row)].pixels) {
      s += v / 255.0;
      s2 += (v / 255.0) * (v / 255.0);
      n += 1;
    }
  }
  const double mean = s / n, std = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(train.mean(), mean, 1e-6);
  EXPECT_NEAR(train.std(), std, 1e-6);

  CacheDataset val(path, part("val"));
  EXPECT_FLOAT_EQ(val.mean(), train.mean());  // val is normalized with the training statistics
  const CacheExample example = val.get(3);
  const auto& pixels = all[static_cast<std::size_t>(example.sample_id)].pixels;
  ASSERT_EQ(example.image.sizes(), (std::vector<std::int64_t>{1, kSide, kSide}));
  for (int k = 0; k < kSide * kSide; k += 37) {
    EXPECT_NEAR(example.image.data_ptr<float>()[k], (pixels[k] / 255.0f - val.mean()) / val.std(), 1e-5);
  }
  EXPECT_EQ(example.label.item<std::int64_t>(), all[static_cast<std::size_t>(example.sample_id)].label);

  DatasetOptions raw = part("val");
  raw.dtype = OutputDtype::kUInt8;
  CacheDataset raw_val(path, raw);
  const CacheExample raw_example = raw_val.get(3);
  EXPECT_EQ(raw_example.image.scalar_type(), torch::kUInt8);
  EXPECT_EQ(std::vector<std::uint8_t>(raw_example.image.data_ptr<std::uint8_t>(),
                                      raw_example.image.data_ptr<std::uint8_t>() + kSide * kSide),
            pixels);
}

TEST(CacheDataset, SixteenBitCachesServeTheSameFloatsAndRefuseUint8Output) {
  TempDir dir;
  const std::string narrow = split_cache(dir);
  const std::string wide = dir.path("wide.h5");
  testing::write_test_cache(wide, kSide, kSide, samples(), {"normal", "pneumonia"}, /*wide=*/true);
  StoredSplit split;
  {
    const CacheReader reader(wide);
    SplitOptions options;
    options.seed = 1;  // as split_cache
    split = make_split(reader, options, 1);
  }
  write_split(wide, split);
  CacheDataset a(narrow, part("val"));
  CacheDataset b(wide, part("val"));
  ASSERT_EQ(a.sample_ids(), b.sample_ids());  // same patients, labels and seed: same split
  EXPECT_NEAR(a.mean(), b.mean(), 1e-6);
  EXPECT_NEAR(a.std(), b.std(), 1e-6);
  EXPECT_TRUE(torch::allclose(a.get(1).image, b.get(1).image, 1e-5, 1e-5));
  LoaderOptions options;
  options.batch_size = 5;
  options.threads = 2;
  Loader loader(b, torch::data::samplers::SequentialSampler(*b.size()), options);
  auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_TRUE(torch::allclose(batch->images[1], a.get(1).image, 1e-5, 1e-5));
  DatasetOptions raw = part("val");
  raw.dtype = OutputDtype::kUInt8;
  EXPECT_THROW(CacheDataset(wide, raw), ConfigError);
}

TEST(CacheDataset, WorksWithTorchDataLoaderAndCollate) {
  TempDir dir;
  const std::string path = split_cache(dir);
  CacheDataset train(path, part("train"));
  const std::size_t size = *train.size();
  auto loader =
      torch::data::make_data_loader(train.map(Collate()), torch::data::samplers::RandomSampler(size),
                                    torch::data::DataLoaderOptions().batch_size(8).workers(2));
  std::size_t seen = 0;
  for (auto& batch : *loader) {
    EXPECT_EQ(batch.data.dim(), 4);
    EXPECT_EQ(batch.data.size(1), 1);
    EXPECT_EQ(batch.target.dim(), 1);
    seen += static_cast<std::size_t>(batch.data.size(0));
  }
  EXPECT_EQ(seen, size);
}

TEST(CacheDataset, MedloadLoaderMatchesGet) {
  TempDir dir;
  const std::string path = split_cache(dir);
  CacheDataset train(path, part("train"));
  LoaderOptions options;
  options.batch_size = 7;
  options.threads = 2;
  Loader loader(train, torch::data::samplers::SequentialSampler(*train.size()), options);
  std::size_t i = 0;
  while (auto batch = loader.next()) {
    for (std::int64_t j = 0; j < batch->images.size(0); ++j, ++i) {
      const CacheExample e = train.get(i);
      EXPECT_EQ(batch->sample_ids[j].item<std::int64_t>(), e.sample_id);
      EXPECT_TRUE(torch::equal(batch->images[j], e.image));
      EXPECT_EQ(batch->labels[j].item<std::int64_t>(), e.label.item<std::int64_t>());
    }
  }
  EXPECT_EQ(i, *train.size());
}

TEST(CacheDataset, KFoldTrainAndValPartitionTheNonTestSamples) {
  TempDir dir;
  const std::string path = split_cache(dir);
  const StoredSplit base = read_split(path, "default", 90);
  StoredSplit folds;
  {
    const CacheReader reader(path);
    folds = make_kfold(reader, 4, 3, base.part, 2);
  }
  write_split(path, folds);
  EXPECT_EQ(list_splits(path), (std::vector<std::string>{"default", "kfold"}));
  DatasetOptions options;
  options.split = "kfold";
  for (int f = 0; f < 4; ++f) {
    options.fold = f;
    options.part = "train";
    CacheDataset train(path, options);
    options.part = "val";
    CacheDataset val(path, options);
    std::set<std::int64_t> ids(train.sample_ids().begin(), train.sample_ids().end());
    for (std::int64_t id : val.sample_ids()) EXPECT_EQ(ids.count(id), 0u);
    ids.insert(val.sample_ids().begin(), val.sample_ids().end());
    for (std::int64_t id : ids)
      EXPECT_NE(base.part[static_cast<std::size_t>(id)], 2) << "a test sample in fold";
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(base.sample_counts[0] + base.sample_counts[1]));
    EXPECT_NEAR(train.mean(), folds.mean[static_cast<std::size_t>(f)], 1e-6);
  }
  options.fold = 4;
  EXPECT_THROW(CacheDataset(path, options), ConfigError);
}

TEST(CacheDataset, AMultiLabelCacheServesUnknownLabelsAsMinusOne) {
  TempDir dir;
  const std::string path = dir.path("multi.h5");
  std::vector<TestSample> rows(3);
  const std::vector<std::vector<std::int8_t>> label_rows{{1, -1, 0}, {-1, -1, -1}, {0, 1, -1}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i].pixels = testing::chest_like(static_cast<std::uint32_t>(i), kSide);
    rows[i].label = i == 0 ? 0 : i == 2 ? 1 : -1;
    rows[i].label_row = label_rows[i];
    rows[i].patient = "P" + std::to_string(i);
    rows[i].path = std::to_string(i) + ".png";
  }
  testing::write_test_cache(path, kSide, kSide, rows, {"effusion", "mass", "nodule"});
  DatasetOptions options = part("all");
  options.split = "";
  options.normalize = false;
  CacheDataset dataset(path, options);
  const auto source = dataset.source();
  ASSERT_EQ(source->label_columns(), 3u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::int64_t> label(3, 7);
    source->label(i, label.data());
    EXPECT_EQ(label, std::vector<std::int64_t>(label_rows[i].begin(), label_rows[i].end())) << i;
    const torch::Tensor served = dataset.get(i).label;
    ASSERT_EQ(served.numel(), 3);
    EXPECT_EQ(std::vector<std::int64_t>(served.data_ptr<std::int64_t>(), served.data_ptr<std::int64_t>() + 3),
              label)
        << i;
  }
  // The first positive class; -1 (unknown) is not a positive.
  EXPECT_EQ(dataset.labels(), (std::vector<std::int64_t>{0, -1, 1}));
}

TEST(CacheDataset, AMissingSplitIsAConfigErrorNamingTheFileAndTheSplit) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  testing::write_test_cache(path, kSide, kSide, samples());
  try {
    CacheDataset dataset(path, part("train"));
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"default\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("medload split"), std::string::npos) << e.what();
  }
}

TEST(CacheDataset, ANewerSchemaVersionIsAFormatErrorNamingTheFile) {
  TempDir dir;
  const std::string path = split_cache(dir);
  {
    h5::File file = h5::File::open(path, true);
    h5::write_attribute(file.id(), "schema_version", std::int64_t{kCacheSchemaVersion + 1});
    file.close();
  }
  try {
    CacheDataset dataset(path, part("train"));
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("schema_version"), std::string::npos) << e.what();
  }
}

TEST(CacheDataset, ATruncatedCacheIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = split_cache(dir);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  try {
    CacheDataset dataset(path, part("train"));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(CacheDataset, ACorruptedSampleIsAnErrorNamingTheSampleAndTheFile) {
  TempDir dir;
  const std::string path = split_cache(dir);
  const auto all = samples();
  CacheDataset probe(path, part("train"));
  const std::int64_t row = probe.sample_ids()[2];
  // Find the image's bytes in the file and flip one.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto& pixels = all[static_cast<std::size_t>(row)].pixels;
  const std::size_t at = bytes.find(std::string(pixels.begin(), pixels.end()));
  ASSERT_NE(at, std::string::npos);
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(at + 100));
    out.put(static_cast<char>(pixels[100] ^ 0x40));
  }
  CacheDataset train(path, part("train"));
  try {
    train.get(2);
    FAIL() << "no exception";
  } catch (const WorkerError& e) {
    const std::string message = e.what();
    EXPECT_NE(
        message.find("sample " + std::to_string(row) + " (" + all[static_cast<std::size_t>(row)].path + ")"),
        std::string::npos)
        << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("checksum"), std::string::npos) << message;
  }
  // Through the loader as well.
  LoaderOptions options;
  options.batch_size = 4;
  options.threads = 2;
  Loader loader(train, torch::data::samplers::SequentialSampler(*train.size()), options);
  EXPECT_THROW(loader.next(), WorkerError);
}

TEST(CacheDataset, ASplitMadeForOtherPatientsIsRefused) {
  TempDir dir;
  const std::string path = split_cache(dir);
  const StoredSplit split = read_split(path, "default", 90);
  const std::string other = dir.path("other.h5");
  auto changed = samples();
  changed[0].patient = "someone-else";
  testing::write_test_cache(other, kSide, kSide, changed);
  write_split(other, split);
  try {
    CacheDataset dataset(other, part("train"));
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("another set of patients"), std::string::npos) << e.what();
  }
}

TEST(SplitStore, RewritingASplitReplacesItAndSeedsAreReproducible) {
  TempDir dir;
  const std::string path = split_cache(dir, 5);
  const StoredSplit first = read_split(path, "default", 90);
  StoredSplit again;
  {
    const CacheReader reader(path);
    SplitOptions options;
    options.seed = 5;
    again = make_split(reader, options, 1);
  }
  EXPECT_EQ(again.part, first.part);
  EXPECT_EQ(again.mean, first.mean);
  write_split(path, again);
  EXPECT_EQ(list_splits(path), (std::vector<std::string>{"default"}));
  EXPECT_EQ(read_split(path, "default").seed, 5u);
  // The images are untouched.
  const CacheReader reader(path);
  for (std::size_t i = 0; i < reader.size(); ++i) EXPECT_TRUE(reader.verify(i));
}

TEST(SplitStore, ASplitCanBeWrittenWhileTheCacheIsOpenAndTheOpenReaderKeepsItsFile) {
  // The split goes into a copy that replaces the cache: a training job holding the cache open is
  // neither refused nor disturbed.
  TempDir dir;
  const std::string path = split_cache(dir);
  StoredSplit split = read_split(path, "default", 90);
  const CacheReader reader(path);  // holds the file open read-only
  std::vector<std::uint8_t> before(reader.image_bytes()), after(reader.image_bytes());
  reader.read_image(0, before.data());
  split.part[0] = split.part[0] == 0 ? 1 : 0;
  write_split(path, split);
  reader.read_image(0, after.data());
  EXPECT_EQ(before, after);
  EXPECT_TRUE(reader.verify(0));
  EXPECT_EQ(read_split(path, "default", 90).part, split.part);
}

}  // namespace
}  // namespace medload::loader
