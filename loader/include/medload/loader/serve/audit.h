#pragma once
/// The leakage audit (DESIGN.md §5): finds what lets a model see its evaluation data in training.
/// - patient: one patient's samples in two parts of a split;
/// - identical: the same stored pixels (equal XXH64 checksums) in two parts;
/// - near_duplicate: two parts hold images whose perceptual hashes (perceptual_hash.h) are within
///   `near_duplicate_distance` bits AND whose 32 x 32 thumbnails correlate at least
///   `min_correlation`: the same image re-exported, re-windowed, brightened or lightly noised.
/// Every finding names both samples' source paths. `medload audit` exits 3 when any is found.
/// Patient ids are compared after normalize_patient_id (surrounding whitespace removed, so a cache
/// from an older medload with "P001 " and "P001" counts them as one patient); ids that still differ
/// only by case or inner whitespace ("ab12", "AB 12") are reported as a warning, not a leak.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/serve/perceptual_hash.h"

namespace medload::loader {

/// Options of the audit.
struct AuditOptions {
  /// Maximum Hamming distance (0..32) between two 64-bit perceptual hashes for a near-duplicate
  /// candidate. Copies brightened by 25 levels and noised (sigma 8), or re-windowed (gamma 0.8),
  /// stay within 6 bits at 224 px (tests/loader/serve); 10 leaves a margin.
  int near_duplicate_distance = 10;
  /// Minimum Pearson correlation (0..1) of the candidates' 32 x 32 thumbnails. Radiographs of one
  /// anatomy can share most hash bits (2 bits apart in the tests) but correlate at most 0.987
  /// there, while the copies above correlate at least 0.999: 0.995 separates them.
  double min_correlation = 0.995;
  /// Threads for reading and hashing the images (0 = hardware).
  std::size_t threads = 0;
  /// Findings listed per kind (all are counted).
  std::size_t max_listed = 100;

  /// Throws ConfigError naming the field.
  void validate() const;
};

/// What the audit knows of one sample.
struct AuditSample {
  /// Effective patient id (see effective_patient_ids: "" is never passed here); compared after
  /// normalize_patient_id.
  std::string patient_id;
  /// Part of the split (-1 = outside the split: ignored).
  int part = 0;
  /// XXH64 of the stored pixels.
  std::uint64_t pixel_hash = 0;
  /// Perceptual hash and thumbnail of the stored pixels.
  ImageDigest digest;
  /// Source path, for the report.
  std::string path;
};

/// Kind of a finding.
enum class LeakKind { kPatient, kIdentical, kNearDuplicate };
/// "patient", "identical", "near_duplicate".
std::string leak_kind_name(LeakKind kind);

/// One leak between two samples in different parts.
struct LeakFinding {
  LeakKind kind = LeakKind::kPatient;
  /// The patient (kPatient), "" otherwise.
  std::string patient_id;
  /// The two samples (cache rows), their parts' names and source paths.
  std::int64_t sample_a = 0, sample_b = 0;
  std::string part_a, part_b;
  std::string path_a, path_b;
  /// Hamming distance of the perceptual hashes (0 for kIdentical; -1 for kPatient).
  int distance = -1;
  /// Thumbnail correlation (kNearDuplicate; 1 for kIdentical; 0 for kPatient).
  double correlation = 0.0;
};

/// Patient ids that differ only by case or inner whitespace (loose_patient_id): perhaps one
/// patient spelled two ways, perhaps two patients of a system whose ids are case-sensitive.
struct SimilarPatientIds {
  std::vector<std::string> ids;    ///< the distinct ids (normalized), sorted
  std::vector<std::string> parts;  ///< the parts their samples are in, in part order
};

/// The audit of one split.
struct AuditReport {
  /// The cache and the split audited.
  std::string cache;
  std::string split;
  /// Samples in the split, distinct patients, samples without a patient id.
  std::size_t samples = 0;
  std::size_t patients = 0;
  std::size_t samples_without_patient = 0;
  /// Counts: patients in more than one part; cross-part pairs of identical images; cross-part
  /// pairs of near-duplicates (identical pairs excluded).
  std::size_t patient_leaks = 0;
  std::size_t identical_leaks = 0;
  std::size_t near_duplicate_leaks = 0;
  /// Findings (at most AuditOptions::max_listed per kind), in a deterministic order.
  std::vector<LeakFinding> findings;
  /// Warning: groups of ids that differ only by case or inner whitespace (all counted, at most
  /// AuditOptions::max_listed listed, ordered by their loose form). Not a leak: leaked() ignores it.
  std::size_t similar_patient_id_groups = 0;
  std::vector<SimilarPatientIds> similar_patient_ids;
  /// The thresholds used.
  int near_duplicate_distance = 0;
  double min_correlation = 0.0;

  /// True when anything leaks.
  bool leaked() const noexcept { return patient_leaks + identical_leaks + near_duplicate_leaks > 0; }
  /// {"cache","split","samples","patients","samples_without_patient","counts":{...},"findings":[...],
  ///  "warnings":{"similar_patient_ids": n}, "similar_patient_ids":[{"ids":[...],"parts":[...]}]}.
  nlohmann::json to_json() const;
  /// A report for a person: counts, then every listed finding with both paths.
  std::string to_text() const;
};

/// Audits samples (pure; `part_names[p]` names part p). Near-duplicate candidates are found by
/// comparing the hashes of every pair in different parts: O(N^2 / 2) 64-bit popcounts (seconds at
/// N = 100,000), then confirmed by their thumbnails.
AuditReport audit_samples(const std::vector<AuditSample>& samples, const std::vector<std::string>& part_names,
                          const AuditOptions& options);

/// Audits the stored split `split` of the cache at `path`: reads every image once (on
/// options.threads threads) to hash it. Throws ConfigError when the split is missing, Error
/// subclasses naming the file when the cache cannot be read.
AuditReport audit_cache(const std::string& path, const std::string& split, const AuditOptions& options);

}  // namespace medload::loader
