#pragma once
// Goodness-of-fit helpers for the sampler tests.

#include <cmath>
#include <cstddef>
#include <vector>

namespace medload::samplers::testing {

// Significance level of every goodness-of-fit test in this suite. Seeds are fixed, so each test is
// deterministic; alpha says how unlucky a correct sampler would have to be to fail.
inline constexpr double kAlpha = 1e-3;

// Regularised upper incomplete gamma Q(a, x) (Numerical Recipes, gser/gcf).
inline double gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double gln = std::lgamma(a);
  if (x < a + 1.0) {
    double ap = a, sum = 1.0 / a, del = sum;
    for (int n = 0; n < 10000; ++n) {
      ap += 1.0;
      del *= x / ap;
      sum += del;
      if (std::abs(del) < std::abs(sum) * 1e-15) break;
    }
    return 1.0 - sum * std::exp(-x + a * std::log(x) - gln);
  }
  double b = x + 1.0 - a, c = 1.0 / 1e-300, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::abs(c) < 1e-300) c = 1e-300;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1.0) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - gln) * h;
}

// Pearson's chi-square statistic of `observed` counts against `expected` probabilities (which are
// normalised here); cells with zero expected probability must have zero counts.
inline double chi_square(const std::vector<double>& observed, const std::vector<double>& probabilities) {
  double total = 0.0, mass = 0.0;
  for (double o : observed) total += o;
  for (double p : probabilities) mass += p;
  double statistic = 0.0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double e = total * probabilities[i] / mass;
    if (e == 0.0) {
      if (observed[i] != 0.0) return INFINITY;
      continue;
    }
    statistic += (observed[i] - e) * (observed[i] - e) / e;
  }
  return statistic;
}

// The p-value of a chi-square goodness-of-fit test (degrees of freedom = cells with nonzero
// expectation - 1).
inline double chi_square_p_value(const std::vector<double>& observed,
                                 const std::vector<double>& probabilities) {
  std::size_t cells = 0;
  for (double p : probabilities) cells += p > 0.0;
  const double statistic = chi_square(observed, probabilities);
  if (!std::isfinite(statistic)) return 0.0;
  return gamma_q(0.5 * static_cast<double>(cells - 1), 0.5 * statistic);
}

}  // namespace medload::samplers::testing
