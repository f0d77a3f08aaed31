#include "medload/loader/serve/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader {
namespace {

// A random dataset: `patients` patients with 1..max_images images each, each patient with one
// class drawn from `prevalence`, some images without a patient id.
SplitInput random_dataset(std::uint32_t seed, std::size_t patients, int max_images,
                          const std::vector<double>& prevalence, double missing_id = 0.0) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> images(1, max_images);
  std::discrete_distribution<int> cls(prevalence.begin(), prevalence.end());
  std::bernoulli_distribution missing(missing_id);
  SplitInput input;
  for (std::size_t p = 0; p < patients; ++p) {
    const int label = cls(rng);
    const int n = images(rng);
    for (int i = 0; i < n; ++i) {
      input.patient_ids.push_back(missing(rng) ? "" : "P" + std::to_string(p));
      input.labels.push_back(label);
    }
  }
  // Shuffle the samples so patients are not contiguous.
  std::vector<std::size_t> order(input.labels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  SplitInput shuffled;
  for (std::size_t i : order) {
    shuffled.patient_ids.push_back(input.patient_ids[i]);
    shuffled.labels.push_back(input.labels[i]);
  }
  return shuffled;
}

void expect_patients_in_one_part(const SplitInput& input, const SplitAssignment& split) {
  std::map<std::string, int> part_of;
  for (std::size_t i = 0; i < input.patient_ids.size(); ++i) {
    if (input.patient_ids[i].empty()) continue;
    auto [it, inserted] = part_of.emplace(input.patient_ids[i], split.part[i]);
    ASSERT_EQ(it->second, split.part[i]) << "patient " << input.patient_ids[i] << " is in two parts";
  }
}

TEST(SplitPatients, NoPatientInTwoPartsOverManyRandomDatasetsAndSeeds) {
  for (std::uint32_t trial = 0; trial < 60; ++trial) {
    std::mt19937 rng(trial);
    const std::size_t patients = 20 + rng() % 400;
    const int max_images = 1 + static_cast<int>(rng() % 8);
    const SplitInput input = random_dataset(trial, patients, max_images, {0.6, 0.25, 0.1, 0.05}, 0.05);
    SplitOptions options;
    options.seed = rng();
    const SplitAssignment split = split_patients(input, options);
    ASSERT_EQ(split.part.size(), input.patient_ids.size());
    expect_patients_in_one_part(input, split);
    const SplitAssignment folds = kfold_patients(input, 2 + trial % 9, trial);
    expect_patients_in_one_part(input, folds);
    for (std::int8_t f : folds.part) ASSERT_LT(static_cast<std::size_t>(f), folds.parts);
  }
}

TEST(SplitPatients, ClassProportionsPerPartWithinTolerance) {
  // 1500 patients, 1..4 images each, classes 60/25/10/5 %. Stated tolerance: every part's share of
  // every class is within 0.02 of its ratio (0.7/0.15/0.15), and so is its share of all samples.
  for (std::uint32_t seed = 0; seed < 5; ++seed) {
    const SplitInput input = random_dataset(100 + seed, 1500, 4, {0.6, 0.25, 0.1, 0.05});
    SplitOptions options;
    options.seed = seed;
    const SplitAssignment split = split_patients(input, options);
    std::vector<double> total(5, 0.0);
    for (const auto& counts : split.class_counts) {
      for (std::size_t c = 0; c < counts.size(); ++c) total[c] += static_cast<double>(counts[c]);
    }
    for (std::size_t s = 0; s < 3; ++s) {
      for (std::size_t c = 0; c < 4; ++c) {
        EXPECT_NEAR(static_cast<double>(split.class_counts[s][c]) / total[c], options.ratios[s], 0.02)
            << "part " << s << " class " << c << " seed " << seed;
      }
      EXPECT_NEAR(static_cast<double>(split.sample_counts[s]) / static_cast<double>(input.labels.size()),
                  options.ratios[s], 0.02);
    }
  }
}

TEST(SplitPatients, RecountedClassCountsMatchTheAssignment) {
  const SplitInput input = random_dataset(7, 300, 5, {0.7, 0.3}, 0.1);
  const SplitAssignment split = split_patients(input, SplitOptions{});
  std::vector<std::vector<std::int64_t>> counts(3, std::vector<std::int64_t>(3, 0));
  for (std::size_t i = 0; i < input.labels.size(); ++i) ++counts[split.part[i]][input.labels[i]];
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(split.class_counts[s][0], counts[s][0]);
    EXPECT_EQ(split.class_counts[s][1], counts[s][1]);
    EXPECT_EQ(split.class_counts[s][2], 0);  // unlabeled column
  }
}

TEST(SplitPatients, SameSeedSameSplitAndSeedsDiffer) {
  const SplitInput input = random_dataset(3, 500, 3, {0.5, 0.5});
  SplitOptions a;
  a.seed = 11;
  EXPECT_EQ(split_patients(input, a).part, split_patients(input, a).part);
  SplitOptions b;
  b.seed = 12;
  EXPECT_NE(split_patients(input, a).part, split_patients(input, b).part);
}

TEST(SplitPatients, SamplesWithoutPatientIdAreEachTheirOwnPatientAndCounted) {
  SplitInput input;
  input.patient_ids = {"", "", "A", "A", ""};
  input.labels = {0, 0, 1, 1, 0};
  const SplitAssignment split = split_patients(input, SplitOptions{});
  EXPECT_EQ(split.samples_without_patient, 3u);
  EXPECT_EQ(split.patients, 4u);
  EXPECT_EQ(split.part[2], split.part[3]);
  const auto ids = effective_patient_ids(input.patient_ids);
  EXPECT_EQ(ids[0], "~sample:0");
  EXPECT_EQ(ids[2], "A");
}

TEST(SplitPatients, KFoldGivesEqualFoldsAndKeepsClassBalance) {
  const SplitInput input = random_dataset(5, 1000, 3, {0.8, 0.2});
  const SplitAssignment folds = kfold_patients(input, 5, 1);
  ASSERT_EQ(folds.parts, 5u);
  for (std::size_t f = 0; f < 5; ++f) {
    EXPECT_NEAR(static_cast<double>(folds.sample_counts[f]) / static_cast<double>(input.labels.size()), 0.2,
                0.01);
    const double minority = static_cast<double>(folds.class_counts[f][1]) /
                            static_cast<double>(folds.class_counts[f][0] + folds.class_counts[f][1]);
    EXPECT_NEAR(minority, 0.2, 0.03) << "fold " << f;
  }
}

TEST(SplitPatients, MultiLabelRowsAreStratifiedPerClass) {
  SplitInput input;
  input.label_columns = 3;
  std::mt19937 rng(9);
  for (int p = 0; p < 600; ++p) {
    const int n = 1 + static_cast<int>(rng() % 3);
    const std::uint8_t row[3] = {static_cast<std::uint8_t>(rng() % 2),
                                 static_cast<std::uint8_t>(rng() % 5 == 0),
                                 static_cast<std::uint8_t>(rng() % 10 == 0)};
    for (int i = 0; i < n; ++i) {
      input.patient_ids.push_back("P" + std::to_string(p));
      input.label_matrix.insert(input.label_matrix.end(), row, row + 3);
    }
  }
  const SplitAssignment split = split_patients(input, SplitOptions{});
  expect_patients_in_one_part(input, split);
  for (std::size_t c = 0; c < 3; ++c) {
    const double total =
        static_cast<double>(split.class_counts[0][c] + split.class_counts[1][c] + split.class_counts[2][c]);
    EXPECT_NEAR(static_cast<double>(split.class_counts[0][c]) / total, 0.7, 0.03) << "class " << c;
  }
}

TEST(SplitPatients, UnknownMultiLabelEntriesAreNotPositives) {
  SplitInput input;
  input.label_columns = 2;
  input.patient_ids = {"P0", "P1", "P2", "P3"};
  input.label_matrix = {1, -1, /**/ -1, -1, /**/ 0, -1, /**/ -1, 1};
  const SplitAssignment split = split_patients(input, SplitOptions{});
  std::vector<std::int64_t> totals(3, 0);
  for (const auto& part : split.class_counts) {
    for (std::size_t c = 0; c < 3; ++c) totals[c] += part[c];
  }
  // One positive per class; the rows without a 1 (all unknown, or a known 0 beside an unknown)
  // count as unlabeled.
  EXPECT_EQ(totals, (std::vector<std::int64_t>{1, 1, 2}));
}

TEST(SplitPatients, PatientSetHashIgnoresOrderAndRepeats) {
  EXPECT_EQ(patient_set_hash({"a", "b", "a"}), patient_set_hash({"b", "a"}));
  EXPECT_NE(patient_set_hash({"a", "b"}), patient_set_hash({"a", "c"}));
}

TEST(SplitOptions, RejectsBadRatiosNamingTheField) {
  SplitOptions options;
  options.ratios = {0.7, 0.2, 0.2};
  try {
    options.validate();
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ratios"), std::string::npos) << e.what();
  }
  options.ratios = {0.7, 0.15, 0.1, 0.05};
  EXPECT_THROW(options.validate(), ConfigError);
  options.ratios = {0.0, 0.5, 0.5};
  EXPECT_THROW(options.validate(), ConfigError);
  options.ratios = {0.8, 0.2};
  EXPECT_NO_THROW(options.validate());
  EXPECT_THROW(kfold_patients(SplitInput{}, 1, 0), ConfigError);
}

TEST(SplitPatients, IdsThatDifferOnlyBySurroundingWhitespaceAreOnePatient) {
  // A cache built before ids were normalised may hold both forms of one patient's id.
  SplitInput input;
  for (int i = 0; i < 40; ++i) {
    input.patient_ids.push_back("P" + std::to_string(i / 4) + (i % 2 ? " " : ""));
    input.labels.push_back(i % 3 == 0);
  }
  const SplitAssignment split = split_patients(input, SplitOptions{});
  EXPECT_EQ(split.patients, 10u);
  for (int i = 0; i < 40; i += 4) {
    for (int k = 1; k < 4; ++k) EXPECT_EQ(split.part[i + k], split.part[i]) << "patient P" << i / 4;
  }
  SplitInput trimmed = input;
  for (auto& id : trimmed.patient_ids) id = normalize_patient_id(id);
  EXPECT_EQ(patient_set_hash(input.patient_ids), patient_set_hash(trimmed.patient_ids));
}

TEST(SplitPatients, ATrainRatioThatGivesTheTrainPartNoPatientIsAnError) {
  // 1e-300 passes the range check, but no patient lands in train: its mean and std, which
  // normalise every batch, would have nothing to come from.
  SplitOptions options;
  options.ratios = {1e-300, 1.0, 0.0};
  try {
    split_patients(random_dataset(3, 40, 3, {0.5, 0.5}), options);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ratios[0] (train)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("none of the 40 patients"), std::string::npos) << e.what();
  }
}

TEST(SplitInput, MismatchedLengthsAreAConfigError) {
  SplitInput input;
  input.patient_ids = {"a", "b"};
  input.labels = {0};
  EXPECT_THROW(split_patients(input, SplitOptions{}), ConfigError);
}

}  // namespace
}  // namespace medload::loader
