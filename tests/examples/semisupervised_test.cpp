// The semi-supervised example's label budget: labels kept or hidden by whole patients (or blocks
// of a patient's rows), a seeded share per class, never a class left without labels.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "semisupervised.h"

using medload::ConfigError;
using medload::examples::keep_labels_by_patient;
using medload::examples::LabelBudget;

namespace {

// 40 patients of class 0 and 10 of class 1, three rows each, plus 5 rows without a patient id
// (class 0) and 4 unlabelled rows.
struct Rows {
  std::vector<std::int64_t> labels;
  std::vector<std::string> patients;
};

Rows make_rows() {
  Rows r;
  for (int p = 0; p < 50; ++p) {
    for (int k = 0; k < 3; ++k) {
      r.labels.push_back(p < 40 ? 0 : 1);
      r.patients.push_back("p" + std::to_string(p));
    }
  }
  for (int i = 0; i < 5; ++i) {
    r.labels.push_back(0);
    r.patients.emplace_back();
  }
  for (int i = 0; i < 4; ++i) {
    r.labels.push_back(-1);
    r.patients.push_back("u" + std::to_string(i));
  }
  return r;
}

}  // namespace

TEST(LabelBudget, KeepsASeededShareOfEachClassByWholePatients) {
  const Rows r = make_rows();
  const LabelBudget b = keep_labels_by_patient(r.labels, r.patients, 2, 0.1, 7);
  // Class 0: 45 units (40 patients + 5 rows without an id) -> 5 kept (4.5 rounds away from zero);
  // class 1: 10 patients -> 1.
  EXPECT_EQ(b.labelled_units, 55u);
  EXPECT_EQ(b.kept_units, 6u);
  std::map<std::string, std::set<std::int64_t>> per_patient;
  std::map<std::int64_t, std::size_t> kept_per_class;
  for (std::size_t i = 0; i < r.labels.size(); ++i) {
    if (r.labels[i] < 0) {
      EXPECT_EQ(b.labels[i], -1);  // unlabelled stays unlabelled
    }
    if (b.labels[i] >= 0) {
      EXPECT_EQ(b.labels[i], r.labels[i]);  // a kept label is the stored one
      ++kept_per_class[b.labels[i]];
    }
    if (!r.patients[i].empty()) per_patient[r.patients[i]].insert(b.labels[i] >= 0);
  }
  for (const auto& [patient, states] : per_patient)
    EXPECT_EQ(states.size(), 1u) << patient;  // whole patients
  EXPECT_EQ(kept_per_class[1], 3u);           // one patient
  EXPECT_EQ(b.labelled_rows + b.unlabelled_rows, r.labels.size());
  EXPECT_EQ(b.labelled_rows, kept_per_class[0] + kept_per_class[1]);
  // Seeded: the same seed keeps the same patients, another seed others.
  EXPECT_EQ(keep_labels_by_patient(r.labels, r.patients, 2, 0.1, 7).labels, b.labels);
  EXPECT_NE(keep_labels_by_patient(r.labels, r.patients, 2, 0.1, 8).labels, b.labels);
}

TEST(LabelBudget, EveryClassKeepsAtLeastOneUnit) {
  const Rows r = make_rows();
  const LabelBudget b = keep_labels_by_patient(r.labels, r.patients, 2, 0.01, 1);
  EXPECT_EQ(b.kept_units, 2u);
  std::set<std::int64_t> classes;
  for (const std::int64_t l : b.labels) {
    if (l >= 0) classes.insert(l);
  }
  EXPECT_EQ(classes, (std::set<std::int64_t>{0, 1}));
}

TEST(LabelBudget, BlocksOfAPatientsRowsAreUnitsOfTheirOwn) {
  // One patient of 64 rows per class: whole patients leave nothing to hide; blocks of 8 do.
  std::vector<std::int64_t> labels;
  std::vector<std::string> patients;
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < 64; ++i) {
      labels.push_back(c);
      patients.push_back("subject" + std::to_string(c));
    }
  }
  EXPECT_THROW(keep_labels_by_patient(labels, patients, 2, 0.1, 0), ConfigError);  // nothing unlabelled
  const LabelBudget b = keep_labels_by_patient(labels, patients, 2, 0.25, 0, 8);
  EXPECT_EQ(b.labelled_units, 16u);
  EXPECT_EQ(b.kept_units, 4u);
  EXPECT_EQ(b.labelled_rows, 32u);
  // Kept rows come in whole blocks of 8 consecutive rows.
  for (std::size_t start = 0; start < labels.size(); start += 8) {
    std::set<bool> kept;
    for (std::size_t i = start; i < start + 8; ++i) kept.insert(b.labels[i] >= 0);
    EXPECT_EQ(kept.size(), 1u) << "block at " << start;
  }
}

TEST(LabelBudget, BadFractionsAndSizesAreConfigErrors) {
  const Rows r = make_rows();
  for (const double f : {0.0, 1.0, -0.5, 2.0, std::nan("")}) {
    EXPECT_THROW(keep_labels_by_patient(r.labels, r.patients, 2, f, 0), ConfigError) << f;
  }
  EXPECT_THROW(keep_labels_by_patient(r.labels, {"a"}, 2, 0.1, 0), ConfigError);
  EXPECT_THROW(keep_labels_by_patient(r.labels, r.patients, 1, 0.1, 0), ConfigError);  // label 1 of 1 class
}
