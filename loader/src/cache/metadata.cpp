#include "metadata.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace medload::loader::detail {

namespace {

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

double median(std::vector<double> values) {
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

// The most frequent value; ties go to the smallest, so the result does not depend on order.
std::string mode(const std::vector<std::string>& values) {
  std::map<std::string, std::size_t> counts;
  for (const auto& v : values) ++counts[v];
  std::string best;
  std::size_t best_count = 0;
  for (const auto& [value, count] : counts) {
    if (count > best_count) {
      best = value;
      best_count = count;
    }
  }
  return best;
}

}  // namespace

std::vector<MetaColumn> impute_columns(const RawMeta& raw, const std::vector<std::string>& names,
                                       const std::vector<std::int64_t>& labels, ImputePolicy policy,
                                       std::map<std::string, std::size_t>* imputed) {
  const std::size_t n = raw.size();
  const bool by_class = policy == ImputePolicy::kClassMedian || policy == ImputePolicy::kClassMean;
  const bool use_mean = policy == ImputePolicy::kClassMean || policy == ImputePolicy::kMean;
  std::vector<MetaColumn> columns;
  for (const std::string& name : names) {
    MetaColumn column;
    column.name = name;
    column.imputed.assign(n, 0);
    std::vector<std::optional<std::string>> present(n);
    bool numeric = false;
    bool all_numbers = true;
    for (std::size_t i = 0; i < n; ++i) {
      const auto it = raw[i].find(name);
      if (it == raw[i].end() || it->second.empty()) continue;
      present[i] = it->second;
      numeric = true;
      all_numbers = all_numbers && parse_number(it->second).has_value();
    }
    column.numeric = numeric && all_numbers;
    std::size_t filled = 0;
    if (column.numeric) {
      column.values.assign(n, std::numeric_limits<double>::quiet_NaN());
      std::vector<double> all;
      std::map<std::int64_t, std::vector<double>> per_class;
      for (std::size_t i = 0; i < n; ++i) {
        if (!present[i]) continue;
        column.values[i] = *parse_number(*present[i]);
        all.push_back(column.values[i]);
        if (labels[i] >= 0) per_class[labels[i]].push_back(column.values[i]);
      }
      auto fill = [&](const std::vector<double>& values) { return use_mean ? mean(values) : median(values); };
      const double global = all.empty() ? std::numeric_limits<double>::quiet_NaN() : fill(all);
      std::map<std::int64_t, double> class_fill;
      for (const auto& [label, values] : per_class) class_fill[label] = fill(values);
      for (std::size_t i = 0; i < n; ++i) {
        if (present[i]) continue;
        column.imputed[i] = 1;
        ++filled;
        if (policy == ImputePolicy::kNone) continue;
        const auto it = by_class && labels[i] >= 0 ? class_fill.find(labels[i]) : class_fill.end();
        column.values[i] = it != class_fill.end() ? it->second : global;
      }
    } else {
      column.text.assign(n, "");
      std::vector<std::string> all;
      std::map<std::int64_t, std::vector<std::string>> per_class;
      for (std::size_t i = 0; i < n; ++i) {
        if (!present[i]) continue;
        column.text[i] = *present[i];
        all.push_back(*present[i]);
        if (labels[i] >= 0) per_class[labels[i]].push_back(*present[i]);
      }
      const std::string global = all.empty() ? "" : mode(all);
      std::map<std::int64_t, std::string> class_fill;
      for (const auto& [label, values] : per_class) class_fill[label] = mode(values);
      for (std::size_t i = 0; i < n; ++i) {
        if (present[i]) continue;
        column.imputed[i] = 1;
        ++filled;
        if (policy == ImputePolicy::kNone) continue;
        const auto it = by_class && labels[i] >= 0 ? class_fill.find(labels[i]) : class_fill.end();
        column.text[i] = it != class_fill.end() ? it->second : global;
      }
    }
    if (imputed != nullptr) (*imputed)[name] = filled;
    columns.push_back(std::move(column));
  }
  return columns;
}

void columns_to_raw(const std::vector<MetaColumn>& columns, RawMeta& raw) {
  for (const MetaColumn& column : columns) {
    for (std::size_t i = 0; i < raw.size() && i < column.imputed.size(); ++i) {
      if (column.imputed[i]) continue;
      if (column.numeric) {
        char text[40];
        std::snprintf(text, sizeof text, "%.17g", column.values[i]);
        raw[i][column.name] = text;
      } else {
        raw[i][column.name] = column.text[i];
      }
    }
  }
}

}  // namespace medload::loader::detail
