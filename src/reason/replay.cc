// Replays a given chain through the retriever, for training on gold chains
// with the passages a real run would have seen.
#include <algorithm>

#include "steper/reason.h"

namespace steper::reason {

data::Trace replay(const data::Trace& trace, retrieve::Retriever& retriever, int k) {
  data::Trace out = trace;
  for (auto& step : out.steps) {
    std::vector<std::string> own = step.retrieved;
    std::vector<std::string> ids;
    for (const auto& h : retriever.search(step.query, k)) ids.push_back(h.id);
    for (const auto& id : own) {
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
      // Replace the lowest-ranked passage that is not one of the step's own.
      auto victim = std::find_if(ids.rbegin(), ids.rend(), [&](const std::string& x) {
        return std::find(own.begin(), own.end(), x) == own.end();
      });
      if (static_cast<int>(ids.size()) < k || victim == ids.rend()) ids.push_back(id);
      else *victim = id;
    }
    step.retrieved = std::move(ids);
  }
  return out;
}

}  // namespace steper::reason
