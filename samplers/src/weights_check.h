#pragma once
// Validation shared by everything that takes per-sample or per-class weights.

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "medload/core/error.h"

namespace medload::samplers::detail {

// The sum of `weights` in long double; throws ConfigError naming `what`, the index and the value
// of the first negative, NaN or infinite weight, or when there are none or all are zero.
inline long double checked_weight_sum(const std::vector<double>& weights, const std::string& what) {
  if (weights.empty()) {
    throw ConfigError(what + ": zero samples (an empty weight vector); a sampler needs at least one");
  }
  long double total = 0.0L;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    if (!std::isfinite(w) || w < 0.0) {
      std::ostringstream message;
      message << what << "[" << i << "] = " << w << ": weights must be finite and >= 0";
      throw ConfigError(message.str());
    }
    total += w;
  }
  if (!(total > 0.0L)) {
    throw ConfigError(what + ": all " + std::to_string(weights.size()) +
                      " weights are zero; at least one must be > 0");
  }
  return total;
}

}  // namespace medload::samplers::detail
