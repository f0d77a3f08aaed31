// Stratified patient-level splits: a greedy assignment of whole patients, largest first.

#include "medload/loader/serve/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>

#include "medload/core/counter_rng.h"
#include "medload/core/check_range.h"
#include "medload/core/enum_names.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader {

namespace {
constexpr auto kPartNames = core::enum_names<SplitPart>(
    {{SplitPart::kTrain, "train"}, {SplitPart::kVal, "val"}, {SplitPart::kTest, "test"}});
}  // namespace

std::string_view part_name(SplitPart part) { return kPartNames.name(part); }

SplitPart part_from_name(std::string_view name) { return kPartNames.value(name, "split part"); }

void SplitOptions::validate() const {
  if (ratios.size() < 2 || ratios.size() > 3) {
    throw ConfigError("SplitOptions.ratios must have 2 (train,val) or 3 (train,val,test) entries, got " +
                      std::to_string(ratios.size()));
  }
  double sum = 0;
  for (std::size_t i = 0; i < ratios.size(); ++i) {
    core::check_range("SplitOptions.ratios[" + std::to_string(i) + "]", ratios[i], 0, 1);
    sum += ratios[i];
  }
  if (!(ratios[0] > 0.0)) throw ConfigError("SplitOptions.ratios[0] (train) must be > 0");
  if (std::abs(sum - 1.0) > 1e-6) {
    throw ConfigError("SplitOptions.ratios must sum to 1, they sum to " + std::to_string(sum));
  }
}

std::size_t SplitInput::size() const {
  const std::size_t n = patient_ids.size();
  if (label_columns == 0) {
    if (!label_matrix.empty()) throw ConfigError("SplitInput.label_matrix is set but label_columns is 0");
    if (labels.size() != n) {
      throw ConfigError("SplitInput.labels has " + std::to_string(labels.size()) + " entries, patient_ids " +
                        std::to_string(n));
    }
  } else {
    if (!labels.empty()) throw ConfigError("SplitInput: set labels or label_matrix, not both");
    if (label_matrix.size() != n * label_columns) {
      throw ConfigError("SplitInput.label_matrix has " + std::to_string(label_matrix.size()) +
                        " entries, expected patient_ids (" + std::to_string(n) + ") x label_columns (" +
                        std::to_string(label_columns) + ")");
    }
  }
  return n;
}

std::vector<std::string> effective_patient_ids(const std::vector<std::string>& patient_ids) {
  std::vector<std::string> out(patient_ids.size());
  for (std::size_t i = 0; i < patient_ids.size(); ++i) {
    std::string id = normalize_patient_id(patient_ids[i]);
    out[i] = id.empty() ? "~sample:" + std::to_string(i) : std::move(id);
  }
  return out;
}

std::uint64_t patient_set_hash(const std::vector<std::string>& patient_ids) {
  std::vector<std::string> ids = effective_patient_ids(patient_ids);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::string joined;
  for (const std::string& id : ids) {
    joined += id;
    joined += '\n';
  }
  return hash64_text(joined);
}

namespace {

struct Patient {
  std::vector<std::size_t> samples;
  // (class column, count) pairs; the last column (classes) is "unlabeled".
  std::vector<std::pair<std::size_t, std::int64_t>> classes;
};

// The class columns of `input` (label_columns, else the largest label + 1); checks the labels.
std::size_t class_columns(const SplitInput& input) {
  std::int64_t max_label = -1;
  for (std::int64_t l : input.labels) {
    if (l < -1) throw ConfigError("SplitInput.labels holds " + std::to_string(l) + " (labels are >= -1)");
    max_label = std::max(max_label, l);
  }
  return input.label_columns > 0 ? input.label_columns : static_cast<std::size_t>(max_label + 1);
}

// One more sample of class column `column` for the patient.
void count_class(Patient& patient, std::size_t column) {
  for (auto& [c, count] : patient.classes) {
    if (c == column) {
      ++count;
      return;
    }
  }
  patient.classes.emplace_back(column, 1);
}

// The samples grouped by patient, in first-appearance order (deterministic). A sample without a
// patient id is a patient of its own, counted in `without_patient`. Column `classes` counts the
// unlabeled samples.
std::vector<Patient> group_by_patient(const SplitInput& input, std::size_t classes,
                                      std::size_t& without_patient) {
  std::vector<Patient> patients;
  std::unordered_map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < input.size(); ++i) {
    std::size_t p;
    // Caches written before ids were normalised may hold "P001" and "P001 ": one patient.
    const std::string id = normalize_patient_id(input.patient_ids[i]);
    if (id.empty()) {
      ++without_patient;
      p = patients.size();
      patients.emplace_back();
    } else {
      auto [it, inserted] = index_of.try_emplace(id, patients.size());
      if (inserted) patients.emplace_back();
      p = it->second;
    }
    Patient& patient = patients[p];
    patient.samples.push_back(i);
    if (input.label_columns == 0) {
      count_class(patient, input.labels[i] < 0 ? classes : static_cast<std::size_t>(input.labels[i]));
    } else {
      bool any = false;
      for (std::size_t k = 0; k < classes; ++k) {
        if (input.label_matrix[i * classes + k] == 1) {  // -1 (unknown) is not a positive
          count_class(patient, k);
          any = true;
        }
      }
      if (!any) count_class(patient, classes);
    }
  }
  return patients;
}

// Largest patients first (they are the hardest to place); equal sizes in a seeded order.
std::vector<std::size_t> placement_order(const std::vector<Patient>& patients, std::uint64_t seed) {
  std::vector<std::size_t> order(patients.size());
  std::iota(order.begin(), order.end(), 0);
  CounterRng rng(seed, 0x5b11u);
  for (std::size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[rng.next_below(i)]);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return patients[a].samples.size() > patients[b].samples.size();
  });
  return order;
}

// The greedy placement's state. Cost = sum over parts of sum over classes of (fraction of the
// class in the part - ratio)^2, plus the same term for the part's share of all samples. Adding a
// patient to part s changes only part s's terms, so the best part is found from the deltas alone.
class PartBalance {
 public:
  PartBalance(const std::vector<double>& ratios, const std::vector<Patient>& patients, std::size_t columns,
              std::size_t samples)
      : ratios_(ratios),
        total_(columns, 0.0),
        n_total_(static_cast<double>(samples)),
        current_(ratios.size(), std::vector<double>(columns, 0.0)),
        sizes_(ratios.size(), 0.0) {
    for (const Patient& p : patients) {
      for (const auto& [c, count] : p.classes) total_[c] += static_cast<double>(count);
    }
  }

  // The part whose cost grows least with `patient` in it (parts of ratio 0 get no patient).
  std::size_t best_part(const Patient& patient) const {
    const double size = static_cast<double>(patient.samples.size());
    std::size_t best = 0;
    double best_delta = 0;
    for (std::size_t s = 0; s < ratios_.size(); ++s) {
      if (ratios_[s] <= 0.0) continue;
      double delta = 0;
      for (const auto& [c, count] : patient.classes) {
        const double before = current_[s][c] / total_[c] - ratios_[s];
        const double after = (current_[s][c] + static_cast<double>(count)) / total_[c] - ratios_[s];
        delta += after * after - before * before;
      }
      const double before = sizes_[s] / n_total_ - ratios_[s];
      const double after = (sizes_[s] + size) / n_total_ - ratios_[s];
      delta += after * after - before * before;
      if (s == 0 || delta < best_delta - 1e-15) {
        best = s;
        best_delta = delta;
      }
    }
    return best;
  }

  void add(std::size_t part, const Patient& patient) {
    for (const auto& [c, count] : patient.classes) current_[part][c] += static_cast<double>(count);
    sizes_[part] += static_cast<double>(patient.samples.size());
  }

 private:
  const std::vector<double>& ratios_;
  std::vector<double> total_;  // samples per class column, all parts
  double n_total_;
  std::vector<std::vector<double>> current_;  // [part][class column] samples placed
  std::vector<double> sizes_;                 // [part] samples placed
};

SplitAssignment assign(const SplitInput& input, const std::vector<double>& ratios, std::uint64_t seed) {
  const std::size_t classes = class_columns(input);
  const std::size_t columns = classes + 1;  // + unlabeled
  const std::size_t parts = ratios.size();

  SplitAssignment result;
  result.parts = parts;
  result.part.assign(input.size(), 0);
  result.class_counts.assign(parts, std::vector<std::int64_t>(columns, 0));
  result.sample_counts.assign(parts, 0);
  result.patient_counts.assign(parts, 0);
  result.patient_set_hash = patient_set_hash(input.patient_ids);

  const std::vector<Patient> patients = group_by_patient(input, classes, result.samples_without_patient);
  result.patients = patients.size();
  PartBalance balance(ratios, patients, columns, input.size());
  for (std::size_t p : placement_order(patients, seed)) {
    const Patient& patient = patients[p];
    const std::size_t best = balance.best_part(patient);
    balance.add(best, patient);
    for (const auto& [c, count] : patient.classes) result.class_counts[best][c] += count;
    result.sample_counts[best] += static_cast<std::int64_t>(patient.samples.size());
    ++result.patient_counts[best];
    for (std::size_t i : patient.samples) result.part[i] = static_cast<std::int8_t>(best);
  }
  return result;
}

}  // namespace

SplitAssignment split_patients(const SplitInput& input, const SplitOptions& options) {
  options.validate();
  SplitAssignment result = assign(input, options.ratios, options.seed);
  // The train part's mean and std normalise every batch served: without a sample there is nothing
  // to compute them from.
  if (input.size() > 0 && result.sample_counts[0] == 0) {
    std::ostringstream ratio;
    ratio << options.ratios[0];
    throw ConfigError("SplitOptions.ratios[0] (train) = " + ratio.str() + " gives the train part none of the " +
                      std::to_string(result.patients) + " patients; raise it");
  }
  return result;
}

SplitAssignment kfold_patients(const SplitInput& input, std::size_t k, std::uint64_t seed) {
  if (k < 2 || k > 100) throw ConfigError("k-fold: k = " + std::to_string(k) + " is outside [2, 100]");
  return assign(input, std::vector<double>(k, 1.0 / static_cast<double>(k)), seed);
}

}  // namespace medload::loader
