#include "length_groups.h"

#include <algorithm>
#include <limits>

namespace steper::distill::detail {

std::vector<std::vector<std::size_t>> length_groups(const std::vector<std::int64_t>& lengths, std::int64_t overhead) {
  const std::size_t n = lengths.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return lengths[a] > lengths[b]; });
  // cost[j]: the least cost of the first j sorted rows; the last group of
  // that split starts at from[j]. A group order[i, j) is padded to
  // lengths[order[i]], its longest.
  std::vector<std::int64_t> cost(n + 1, std::numeric_limits<std::int64_t>::max());
  std::vector<std::size_t> from(n + 1, 0);
  cost[0] = 0;
  for (std::size_t j = 1; j <= n; ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      const std::int64_t c = cost[i] + static_cast<std::int64_t>(j - i) * lengths[order[i]] + overhead;
      if (c < cost[j]) cost[j] = c, from[j] = i;
    }
  }
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t j = n; j > 0; j = from[j]) {
    groups.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(from[j]), order.begin() + static_cast<std::ptrdiff_t>(j));
  }
  std::reverse(groups.begin(), groups.end());
  return groups;
}

}  // namespace steper::distill::detail
