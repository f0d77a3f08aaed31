#include "medload/loader/serve/audit.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split_store.h"
#include "synthetic_images.h"
#include "test_cache.h"

namespace medload::loader {
namespace {

using testing::TempDir;
using testing::TestSample;

constexpr int kSide = 128;

// 60 different radiographs of one anatomy, all class "normal", one patient each, plus `extra`.
std::vector<TestSample> radiographs(std::vector<TestSample> extra = {}) {
  std::vector<TestSample> out;
  for (int i = 0; i < 60; ++i) {
    TestSample s;
    s.pixels = testing::chest_like(static_cast<std::uint32_t>(500 + i), kSide);
    s.label = 0;
    s.patient = "P" + std::to_string(i);
    s.path = "normal/p" + std::to_string(i) + ".png";
    out.push_back(std::move(s));
  }
  for (auto& e : extra) out.push_back(std::move(e));
  return out;
}

// Splits the cache, then moves `moves` (sample, part) so that the test controls what leaks.
void split_with(const std::string& path, const std::vector<std::pair<std::size_t, std::int8_t>>& moves = {}) {
  StoredSplit split;
  {
    const CacheReader reader(path);
    split = make_split(reader, SplitOptions{}, 1);
  }
  for (const auto& [sample, part] : moves) split.part[sample] = part;
  write_split(path, split);
}

std::int8_t other_part(const std::string& path, std::size_t sample) {
  return read_split(path, "default").part[sample] == 0 ? 1 : 0;
}

TEST(Audit, UnrelatedImagesOfTheSameClassAreNotFlagged) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  testing::write_test_cache(path, kSide, kSide, radiographs());
  split_with(path);
  const AuditReport report = audit_cache(path, "default", AuditOptions{});
  EXPECT_FALSE(report.leaked()) << report.to_text();
  EXPECT_EQ(report.samples, 60u);
  EXPECT_EQ(report.patients, 60u);
}

TEST(Audit, FindsANoisedBrightenedCopyInAnotherPartNamingBothPaths) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  const auto base = radiographs();
  TestSample copy;
  copy.pixels = testing::noised_brightened(base[7].pixels, 20, 6, 99);
  copy.patient = "Q1";  // re-exported under another id: only the pixels can tell
  copy.path = "normal/reexport.png";
  testing::write_test_cache(path, kSide, kSide, radiographs({copy}));
  split_with(path);
  split_with(path, {{60, other_part(path, 7)}});
  const AuditReport report = audit_cache(path, "default", AuditOptions{});
  EXPECT_TRUE(report.leaked());
  EXPECT_EQ(report.near_duplicate_leaks, 1u) << report.to_text();
  EXPECT_EQ(report.identical_leaks, 0u);
  EXPECT_EQ(report.patient_leaks, 0u);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, LeakKind::kNearDuplicate);
  EXPECT_EQ(report.findings[0].path_a, "normal/p7.png");
  EXPECT_EQ(report.findings[0].path_b, "normal/reexport.png");
  const std::string text = report.to_text();
  EXPECT_NE(text.find("normal/p7.png"), std::string::npos);
  EXPECT_NE(text.find("normal/reexport.png"), std::string::npos);
  EXPECT_EQ(report.to_json()["counts"]["near_duplicate"], 1);
}

TEST(Audit, FindsIdenticalPixelsAndAPatientInTwoParts) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  const auto base = radiographs();
  TestSample same = base[3];
  same.patient = "Q2";
  same.path = "normal/copy-of-p3.png";
  TestSample second_visit;
  second_visit.pixels = testing::chest_like(9999, kSide);
  second_visit.patient = "P10";  // the same patient as sample 10
  second_visit.path = "normal/p10-followup.png";
  testing::write_test_cache(path, kSide, kSide, radiographs({same, second_visit}));
  split_with(path);
  split_with(path, {{60, other_part(path, 3)}, {61, other_part(path, 10)}});
  const AuditReport report = audit_cache(path, "default", AuditOptions{});
  EXPECT_EQ(report.identical_leaks, 1u) << report.to_text();
  EXPECT_EQ(report.near_duplicate_leaks, 0u) << report.to_text();
  EXPECT_EQ(report.patient_leaks, 1u) << report.to_text();
  bool patient_named = false;
  for (const LeakFinding& f : report.findings) {
    if (f.kind == LeakKind::kPatient) {
      patient_named =
          f.patient_id == "P10" && f.path_a == "normal/p10.png" && f.path_b == "normal/p10-followup.png";
    }
  }
  EXPECT_TRUE(patient_named) << report.to_text();
}

TEST(Audit, SamplesWithoutPatientIdAreCountedAndNeverLeakAsPatients) {
  std::vector<AuditSample> samples(4);
  for (std::size_t i = 0; i < 4; ++i) {
    samples[i].patient_id = "~sample:" + std::to_string(i);
    samples[i].part = static_cast<int>(i % 2);
    samples[i].pixel_hash = i;
    samples[i].digest.hash = 0xffull << (8 * i);
  }
  const AuditReport report = audit_samples(samples, {"train", "val"}, AuditOptions{});
  EXPECT_EQ(report.samples_without_patient, 4u);
  EXPECT_EQ(report.patient_leaks, 0u);
  EXPECT_FALSE(report.leaked());
}

// Samples with the given patient ids and parts, with hashes far apart (no pixel findings).
std::vector<AuditSample> samples_of(const std::vector<std::pair<std::string, int>>& patients) {
  std::vector<AuditSample> samples(patients.size());
  for (std::size_t i = 0; i < patients.size(); ++i) {
    samples[i].patient_id = patients[i].first;
    samples[i].part = patients[i].second;
    samples[i].pixel_hash = i;
    samples[i].digest.hash = 0xffull << (8 * i);
    samples[i].path = "s" + std::to_string(i) + ".png";
  }
  return samples;
}

TEST(Audit, IdsDifferingOnlyBySurroundingWhitespaceAreOnePatientInTwoParts) {
  // As a cache from an older medload may hold them: the manifest's "P001 " was kept untrimmed.
  const auto samples = samples_of({{"P001", 0}, {"P001 ", 1}, {"Q1", 0}, {"Q2", 1}, {"   ", 0}});
  const AuditReport report = audit_samples(samples, {"train", "val"}, AuditOptions{});
  EXPECT_EQ(report.patient_leaks, 1u) << report.to_text();
  EXPECT_EQ(report.patients, 4u);
  EXPECT_EQ(report.samples_without_patient, 1u);  // an id of spaces is no id
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].patient_id, "P001");
  EXPECT_EQ(report.findings[0].path_b, "s1.png");
}

TEST(Audit, WarnsAboutIdsDifferingOnlyByCaseOrInnerWhitespaceWithoutCallingThemALeak) {
  const auto samples = samples_of({{"ab12", 0}, {"AB12", 1}, {"AB 12", 1}, {"X7", 0}, {"x8", 1}});
  const AuditReport report = audit_samples(samples, {"train", "val"}, AuditOptions{});
  EXPECT_EQ(report.patient_leaks, 0u);
  EXPECT_FALSE(report.leaked());
  EXPECT_EQ(report.similar_patient_id_groups, 1u);
  ASSERT_EQ(report.similar_patient_ids.size(), 1u);
  EXPECT_EQ(report.similar_patient_ids[0].ids, (std::vector<std::string>{"AB 12", "AB12", "ab12"}));
  EXPECT_EQ(report.similar_patient_ids[0].parts, (std::vector<std::string>{"train", "val"}));
  const nlohmann::json j = report.to_json();
  EXPECT_EQ(j["warnings"]["similar_patient_ids"], 1);
  EXPECT_EQ(j["similar_patient_ids"][0]["ids"][2], "ab12");
  EXPECT_NE(report.to_text().find("\"AB12\""), std::string::npos) << report.to_text();
}

TEST(AuditOptions, RejectsOutOfRangeThresholds) {
  AuditOptions options;
  const auto error = [&] {
    try {
      options.validate();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  options.near_duplicate_distance = 40;
  EXPECT_EQ(error(), "AuditOptions.near_duplicate_distance is 40; allowed 0..32");
  options.near_duplicate_distance = 10;
  options.min_correlation = 1.5;
  EXPECT_EQ(error(), "AuditOptions.min_correlation is 1.5; allowed 0..1");
}

}  // namespace
}  // namespace medload::loader
