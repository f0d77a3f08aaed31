#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "medload/core/error.h"

namespace medload::examples {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  if (scores.size() != positive.size()) {
    throw ConfigError("roc_auc: " + std::to_string(scores.size()) + " scores but " +
                      std::to_string(positive.size()) + " targets");
  }
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) throw ConfigError("roc_auc: score " + std::to_string(i) + " is NaN");
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' mid-ranks (1-based); tied scores share the mean of their ranks, which
  // is what makes a tie between a positive and a negative count one half.
  double rank_sum = 0.0;
  std::size_t positives = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double mid_rank = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) {
      if (positive[order[k]]) {
        rank_sum += mid_rank;
        ++positives;
      }
    }
    i = j;
  }
  const std::size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double p = static_cast<double>(positives);
  const double u = rank_sum - p * (p + 1.0) / 2.0;
  return u / (p * static_cast<double>(negatives));
}

ClassificationMetrics classification_metrics(const std::vector<std::int64_t>& labels,
                                             const std::vector<double>& scores, std::size_t num_classes) {
  if (num_classes == 0) throw ConfigError("classification_metrics: num_classes is 0");
  if (scores.size() != labels.size() * num_classes) {
    throw ConfigError("classification_metrics: " + std::to_string(scores.size()) + " scores for " +
                      std::to_string(labels.size()) + " labels x " + std::to_string(num_classes) +
                      " classes");
  }
  const auto c_count = static_cast<std::int64_t>(num_classes);
  ClassificationMetrics m;
  m.support.assign(num_classes, 0);
  m.confusion.assign(num_classes, std::vector<std::int64_t>(num_classes, 0));
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::int64_t y = labels[i];
    if (y == -1) continue;
    if (y < 0 || y >= c_count) {
      throw ConfigError("classification_metrics: label " + std::to_string(i) + " is " + std::to_string(y) +
                        "; classes are 0.." + std::to_string(c_count - 1));
    }
    const double* row = scores.data() + i * num_classes;
    std::size_t best = 0;
    for (std::size_t c = 0; c < num_classes; ++c) {
      if (std::isnan(row[c])) {
        throw ConfigError("classification_metrics: score of sample " + std::to_string(i) + ", class " +
                          std::to_string(c) + " is NaN");
      }
      if (row[c] > row[best]) best = c;
    }
    ++m.support[static_cast<std::size_t>(y)];
    ++m.confusion[static_cast<std::size_t>(y)][best];
    kept.push_back(i);
  }
  m.samples = kept.size();
  std::int64_t correct = 0;
  for (std::size_t c = 0; c < num_classes; ++c) correct += m.confusion[c][c];
  m.accuracy = m.samples == 0 ? kNaN : static_cast<double>(correct) / static_cast<double>(m.samples);

  m.recall.assign(num_classes, kNaN);
  double recall_sum = 0.0;
  std::size_t present = 0;
  for (std::size_t c = 0; c < num_classes; ++c) {
    if (m.support[c] == 0) continue;
    m.recall[c] = static_cast<double>(m.confusion[c][c]) / static_cast<double>(m.support[c]);
    recall_sum += m.recall[c];
    ++present;
  }
  m.balanced_accuracy = present == 0 ? kNaN : recall_sum / static_cast<double>(present);

  m.class_roc_auc.assign(num_classes, kNaN);
  std::vector<double> column(kept.size());
  std::vector<bool> is_class(kept.size());
  double auc_sum = 0.0;
  std::size_t auc_count = 0;
  for (std::size_t c = 0; c < num_classes; ++c) {
    for (std::size_t k = 0; k < kept.size(); ++k) {
      column[k] = scores[kept[k] * num_classes + c];
      is_class[k] = labels[kept[k]] == static_cast<std::int64_t>(c);
    }
    m.class_roc_auc[c] = roc_auc(column, is_class);
    if (!std::isnan(m.class_roc_auc[c])) {
      auc_sum += m.class_roc_auc[c];
      ++auc_count;
    }
  }
  if (num_classes == 2) {
    m.roc_auc = m.class_roc_auc[1];
  } else {
    m.roc_auc = auc_count == 0 ? kNaN : auc_sum / static_cast<double>(auc_count);
  }
  return m;
}

nlohmann::json ClassificationMetrics::to_json(const std::vector<std::string>& class_names) const {
  const std::size_t classes = recall.size();
  if (!class_names.empty() && class_names.size() != classes) {
    throw ConfigError("ClassificationMetrics::to_json: " + std::to_string(class_names.size()) +
                      " class names for " + std::to_string(classes) + " classes");
  }
  auto name = [&](std::size_t c) { return class_names.empty() ? std::to_string(c) : class_names[c]; };
  nlohmann::json j;
  j["samples"] = samples;
  j["accuracy"] = number_or_null(accuracy);
  j["balanced_accuracy"] = number_or_null(balanced_accuracy);
  j["roc_auc"] = number_or_null(roc_auc);
  nlohmann::json rec = nlohmann::json::object(), auc = nlohmann::json::object(),
                 sup = nlohmann::json::object();
  for (std::size_t c = 0; c < classes; ++c) {
    rec[name(c)] = number_or_null(recall[c]);
    auc[name(c)] = number_or_null(class_roc_auc[c]);
    sup[name(c)] = support[c];
  }
  j["recall"] = rec;
  j["roc_auc_per_class"] = auc;
  j["support"] = sup;
  j["confusion"] = confusion;
  return j;
}

}  // namespace medload::examples
