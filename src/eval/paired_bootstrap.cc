// Paired bootstrap intervals for the difference between two systems scored
// on the same questions (Efron & Tibshirani's percentile interval; Koehn
// 2004 for its use in comparing NLP systems).
#include <algorithm>
#include <cmath>
#include <random>

#include "steper/error.h"
#include "steper/eval.h"

namespace steper::eval {

PairedInterval paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b, int resamples, double level,
                                std::uint64_t seed) {
  if (a.size() != b.size()) {
    throw InputError("paired bootstrap: " + std::to_string(a.size()) + " scores against " + std::to_string(b.size()) +
                     "; a paired comparison needs both systems' scores on the same questions");
  }
  if (resamples < 1) throw InputError("paired bootstrap: resamples must be positive");
  if (!(level > 0 && level < 1)) throw InputError("paired bootstrap: level must lie in (0, 1)");
  PairedInterval r;
  r.n = a.size();
  r.level = level;
  if (a.empty()) return r;
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  double sum = 0;
  for (double x : d) sum += x;
  r.diff = sum / static_cast<double>(d.size());

  // mt19937_64 and a plain modulo, not uniform_int_distribution, whose
  // output the standard leaves to the library: the interval must not move
  // between compilers.
  std::mt19937_64 gen(seed);
  std::vector<double> means(static_cast<std::size_t>(resamples));
  for (auto& m : means) {
    double s = 0;
    for (std::size_t i = 0; i < d.size(); ++i) s += d[gen() % d.size()];
    m = s / static_cast<double>(d.size());
  }
  std::sort(means.begin(), means.end());
  auto quantile = [&](double q) {  // linear interpolation between order statistics
    const double pos = q * static_cast<double>(means.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, means.size() - 1);
    return means[lo] + (pos - static_cast<double>(lo)) * (means[hi] - means[lo]);
  };
  r.low = quantile((1 - level) / 2);
  r.high = quantile(1 - (1 - level) / 2);
  return r;
}

}  // namespace steper::eval
