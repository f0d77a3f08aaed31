// The leakage audit: patients, identical pixels and near-duplicates across the parts of a split.

#include "medload/loader/serve/audit.h"

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "medload/core/check_range.h"
#include "medload/core/enum_names.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/text.h"
#include "medload/core/thread_pool.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/ingest/source.h"
#include "medload/loader/serve/perceptual_hash.h"
#include "medload/loader/serve/split.h"
#include "medload/loader/serve/split_store.h"

namespace medload::loader {

void AuditOptions::validate() const {
  core::check_range("AuditOptions.near_duplicate_distance", near_duplicate_distance, 0, 32);
  core::check_range("AuditOptions.min_correlation", min_correlation, 0, 1);
  core::check_range("AuditOptions.threads", threads, 0, 1024);
}

std::string leak_kind_name(LeakKind kind) {
  static constexpr auto kNames = core::enum_names<LeakKind>(
      {{LeakKind::kPatient, "patient"}, {LeakKind::kIdentical, "identical"}, {LeakKind::kNearDuplicate, "near_duplicate"}});
  return std::string(kNames.name(kind));
}

namespace {

nlohmann::json similar_ids_json(const std::vector<SimilarPatientIds>& groups) {
  nlohmann::json list = nlohmann::json::array();
  for (const SimilarPatientIds& g : groups) list.push_back({{"ids", g.ids}, {"parts", g.parts}});
  return list;
}

// "a", "b" and "c"-style lists for the text report.
std::string quoted_list(const std::vector<std::string>& items, bool quote) {
  std::string out;
  for (std::size_t k = 0; k < items.size(); ++k) {
    if (k > 0) out += ", ";
    out += quote ? "\"" + items[k] + "\"" : items[k];
  }
  return out;
}

// The patient id the audit compares: normalized; one that normalizes to nothing is the sample's own.
std::string audit_patient_id(const std::string& id, std::size_t sample) {
  std::string normalized = normalize_patient_id(id);
  return normalized.empty() ? "~sample:" + std::to_string(sample) : normalized;
}

// Groups of distinct ids with one loose form, with the parts they are in.
std::vector<SimilarPatientIds> find_similar_ids(
    const std::map<std::string, std::map<int, std::size_t>>& parts_of,
    const std::function<std::string(int)>& name_of) {
  std::map<std::string, std::map<std::string, std::set<int>>> by_loose;
  for (const auto& [id, parts] : parts_of) {
    if (id.rfind("~sample:", 0) == 0) continue;
    auto& parts_of_id = by_loose[loose_patient_id(id)][id];
    for (const auto& [part, sample] : parts) parts_of_id.insert(part);
  }
  std::vector<SimilarPatientIds> groups;
  for (const auto& [loose, ids] : by_loose) {
    if (ids.size() < 2) continue;
    SimilarPatientIds group;
    std::set<int> parts;
    for (const auto& [id, in] : ids) {
      group.ids.push_back(id);
      parts.insert(in.begin(), in.end());
    }
    for (int part : parts) group.parts.push_back(name_of(part));
    groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace

nlohmann::json AuditReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const LeakFinding& f : findings) {
    nlohmann::json item = {{"kind", leak_kind_name(f.kind)},
                           {"a", {{"sample", f.sample_a}, {"part", f.part_a}, {"path", f.path_a}}},
                           {"b", {{"sample", f.sample_b}, {"part", f.part_b}, {"path", f.path_b}}}};
    if (f.kind == LeakKind::kPatient) item["patient_id"] = f.patient_id;
    if (f.kind != LeakKind::kPatient) {
      item["distance"] = f.distance;
      item["correlation"] = f.correlation;
    }
    list.push_back(std::move(item));
  }
  return {{"cache", cache},
          {"split", split},
          {"samples", samples},
          {"patients", patients},
          {"samples_without_patient", samples_without_patient},
          {"near_duplicate_distance", near_duplicate_distance},
          {"min_correlation", min_correlation},
          {"leaked", leaked()},
          {"counts",
           {{"patient", patient_leaks},
            {"identical", identical_leaks},
            {"near_duplicate", near_duplicate_leaks}}},
          {"findings", list},
          {"warnings", {{"similar_patient_ids", similar_patient_id_groups}}},
          {"similar_patient_ids", similar_ids_json(similar_patient_ids)}};
}

std::string AuditReport::to_text() const {
  std::ostringstream out;
  out << "split \"" << split << "\" of " << cache << ": " << samples << " samples, " << patients
      << " patients";
  if (samples_without_patient > 0) {
    out << " (" << samples_without_patient
        << " samples without a patient id, each counted as its own patient)";
  }
  out << "\n";
  out << "  patients in two parts:            " << patient_leaks << "\n";
  out << "  identical images in two parts:    " << identical_leaks << " pairs\n";
  out << "  near-duplicates in two parts:     " << near_duplicate_leaks << " pairs (perceptual hash within "
      << near_duplicate_distance << " bits, thumbnails correlated >= " << min_correlation << ")\n";
  for (const LeakFinding& f : findings) {
    out << "  " << leak_kind_name(f.kind);
    if (f.kind == LeakKind::kPatient) out << " \"" << f.patient_id << "\"";
    if (f.kind == LeakKind::kNearDuplicate) {
      out << " (distance " << f.distance << ", correlation " << f.correlation << ")";
    }
    out << ": " << f.path_a << " [" << f.part_a << ", sample " << f.sample_a << "]  <->  " << f.path_b << " ["
        << f.part_b << ", sample " << f.sample_b << "]\n";
  }
  if (similar_patient_id_groups > 0) {
    out << "  warning: " << similar_patient_id_groups
        << " groups of patient ids differ only by case or inner whitespace (one patient spelled two "
           "ways, or distinct case-sensitive ids?)\n";
    for (const SimilarPatientIds& g : similar_patient_ids) {
      out << "  similar patient ids " << quoted_list(g.ids, true) << " in " << quoted_list(g.parts, false)
          << "\n";
    }
  }
  const std::size_t listed = findings.size();
  const std::size_t total = patient_leaks + identical_leaks + near_duplicate_leaks;
  if (listed < total) out << "  (" << total - listed << " more not listed)\n";
  out << (leaked() ? "LEAKAGE FOUND\n" : "no leakage found\n");
  return out.str();
}

namespace {

// Makes the findings of one audit: names the parts, copies the samples' paths.
class FindingMaker {
 public:
  FindingMaker(const std::vector<AuditSample>& samples, const std::vector<std::string>& part_names)
      : samples_(samples), part_names_(part_names) {}

  std::string part_name(int part) const {
    return part >= 0 && static_cast<std::size_t>(part) < part_names_.size() ? part_names_[part]
                                                                            : std::to_string(part);
  }

  LeakFinding operator()(LeakKind kind, std::size_t a, std::size_t b, int distance,
                         double correlation) const {
    LeakFinding f;
    f.kind = kind;
    f.sample_a = static_cast<std::int64_t>(a);
    f.sample_b = static_cast<std::int64_t>(b);
    f.part_a = part_name(samples_[a].part);
    f.part_b = part_name(samples_[b].part);
    f.path_a = samples_[a].path;
    f.path_b = samples_[b].path;
    f.distance = distance;
    f.correlation = correlation;
    return f;
  }

 private:
  const std::vector<AuditSample>& samples_;
  const std::vector<std::string>& part_names_;
};

// Patients in more than one part (one finding per extra part, against the first sample of each
// part the patient appears in), and groups of distinct ids with one loose form.
void find_patient_leaks(const std::vector<AuditSample>& samples, const std::vector<std::size_t>& items,
                        const AuditOptions& options, const FindingMaker& finding, AuditReport& report) {
  std::map<std::string, std::map<int, std::size_t>> parts_of;
  for (std::size_t i : items) {
    const std::string patient = audit_patient_id(samples[i].patient_id, i);
    parts_of[patient].emplace(samples[i].part, i);
    if (patient.rfind("~sample:", 0) == 0) ++report.samples_without_patient;
  }
  report.patients = parts_of.size();
  std::vector<SimilarPatientIds> similar =
      find_similar_ids(parts_of, [&finding](int part) { return finding.part_name(part); });
  report.similar_patient_id_groups = similar.size();
  if (similar.size() > options.max_listed) similar.resize(options.max_listed);
  report.similar_patient_ids = std::move(similar);
  for (const auto& [patient, parts] : parts_of) {
    if (parts.size() < 2) continue;
    ++report.patient_leaks;
    if (report.patient_leaks > options.max_listed) continue;
    auto first = parts.begin();
    for (auto other = std::next(first); other != parts.end(); ++other) {
      LeakFinding f = finding(LeakKind::kPatient, first->second, other->second, -1, 0.0);
      f.patient_id = patient;
      report.findings.push_back(std::move(f));
    }
  }
}

// Identical pixels: groups of equal hashes, every cross-part pair.
void find_identical_leaks(const std::vector<AuditSample>& samples, const std::vector<std::size_t>& items,
                          const AuditOptions& options, const FindingMaker& finding, AuditReport& report) {
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> by_hash;
  for (std::size_t i : items) by_hash[samples[i].pixel_hash].push_back(i);
  std::vector<std::pair<std::size_t, std::size_t>> identical;
  for (const auto& [hash, group] : by_hash) {
    for (std::size_t x = 0; x < group.size(); ++x) {
      for (std::size_t y = x + 1; y < group.size(); ++y) {
        if (samples[group[x]].part != samples[group[y]].part) identical.emplace_back(group[x], group[y]);
      }
    }
  }
  std::sort(identical.begin(), identical.end());
  report.identical_leaks = identical.size();
  for (std::size_t k = 0; k < identical.size() && k < options.max_listed; ++k) {
    report.findings.push_back(finding(LeakKind::kIdentical, identical[k].first, identical[k].second, 0, 1.0));
  }
}

// Near-duplicates: every cross-part pair, compared on packed arrays. Each worker keeps at most
// max_listed pairs per first sample, so the first max_listed overall are exact and memory bounded.
void find_near_duplicate_leaks(const std::vector<AuditSample>& samples, const std::vector<std::size_t>& items,
                               const AuditOptions& options, const FindingMaker& finding,
                               AuditReport& report) {
  const std::size_t m = items.size();
  std::vector<std::uint64_t> phash(m), pixel(m);
  std::vector<int> part(m);
  for (std::size_t k = 0; k < m; ++k) {
    phash[k] = samples[items[k]].digest.hash;
    pixel[k] = samples[items[k]].pixel_hash;
    part[k] = samples[items[k]].part;
  }
  const int limit = options.near_duplicate_distance;
  struct Near {
    std::size_t b;
    int distance;
    double correlation;
  };
  std::vector<std::vector<Near>> near(m);
  std::vector<std::size_t> near_counts(m, 0);
  {
    ThreadPool pool(options.threads);
    pool.parallel_for(m, [&](std::size_t a) {
      const std::uint64_t h = phash[a];
      const int pa = part[a];
      std::size_t count = 0;
      for (std::size_t b = a + 1; b < m; ++b) {
        if (hash_distance(h, phash[b]) > limit || part[b] == pa || pixel[b] == pixel[a]) continue;
        const double r = thumbnail_correlation(samples[items[a]].digest, samples[items[b]].digest);
        if (r < options.min_correlation) continue;
        if (++count <= options.max_listed) near[a].push_back({b, hash_distance(h, phash[b]), r});
      }
      near_counts[a] = count;
    });
  }
  std::size_t listed = 0;
  for (std::size_t a = 0; a < m; ++a) {
    report.near_duplicate_leaks += near_counts[a];
    for (const Near& n : near[a]) {
      if (listed++ < options.max_listed) {
        report.findings.push_back(
            finding(LeakKind::kNearDuplicate, items[a], items[n.b], n.distance, n.correlation));
      }
    }
  }
}

}  // namespace

AuditReport audit_samples(const std::vector<AuditSample>& samples, const std::vector<std::string>& part_names,
                          const AuditOptions& options) {
  options.validate();
  AuditReport report;
  report.near_duplicate_distance = options.near_duplicate_distance;
  report.min_correlation = options.min_correlation;
  std::vector<std::size_t> items;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].part >= 0) items.push_back(i);
  }
  report.samples = items.size();
  const FindingMaker finding(samples, part_names);
  find_patient_leaks(samples, items, options, finding, report);
  find_identical_leaks(samples, items, options, finding, report);
  find_near_duplicate_leaks(samples, items, options, finding, report);
  return report;
}

AuditReport audit_cache(const std::string& path, const std::string& split_name, const AuditOptions& options) {
  options.validate();
  const CacheReader reader(path);
  const StoredSplit split = read_split(path, split_name, reader.size());
  // A cache from an older medload may hold untrimmed ids, or bytes that are not UTF-8.
  std::vector<std::string> stored = reader.patient_ids();
  for (std::string& id : stored) id = normalize_patient_id(to_valid_utf8(id));
  const std::vector<std::string> patients = effective_patient_ids(stored);
  std::vector<AuditSample> samples(reader.size());
  const std::size_t bytes = reader.image_bytes();
  const bool wide = reader.dtype() == PixelType::kUInt16;
  {
    ThreadPool pool(options.threads);
    pool.parallel_for(samples.size(), [&](std::size_t i) {
      AuditSample& s = samples[i];
      s.part = split.part[i];
      s.patient_id = patients[i];
      s.path = to_valid_utf8(reader.source_paths()[i]);
      if (s.part < 0) return;
      thread_local std::vector<std::uint16_t> buffer;
      buffer.resize((bytes + 1) / 2);
      try {
        reader.read_image(i, buffer.data());
      } catch (const std::exception& e) {
        throw WorkerError("audit: reading sample " + std::to_string(i) + " (" + s.path + ") of " + path +
                          " failed: " + e.what());
      }
      s.pixel_hash = hash64(buffer.data(), bytes);
      const auto c = static_cast<std::size_t>(reader.channels());
      const auto h = static_cast<std::size_t>(reader.height());
      const auto w = static_cast<std::size_t>(reader.width());
      s.digest = wide ? image_digest(buffer.data(), c, h, w)
                      : image_digest(reinterpret_cast<const std::uint8_t*>(buffer.data()), c, h, w);
    });
  }
  std::vector<std::string> names;
  for (std::size_t p = 0; p < split.parts; ++p) names.push_back(split.part_label(p));
  AuditReport report = audit_samples(samples, names, options);
  report.cache = path;
  report.split = split_name;
  return report;
}

}  // namespace medload::loader
