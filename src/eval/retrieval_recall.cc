#include <algorithm>
#include <set>
#include <stdexcept>

#include "steper/eval.h"

namespace steper::eval {

RetrievalRecall::RetrievalRecall(std::vector<int> ks) : ks_(std::move(ks)) {
  if (ks_.empty()) throw InputError("recall needs at least one k");
  for (int k : ks_) {
    if (k < 1) throw InputError("recall k must be >= 1, got " + std::to_string(k));
  }
  all_.recall.assign(ks_.size(), 0);
  all_.complete.assign(ks_.size(), 0);
}

void RetrievalRecall::accumulate(Sums& s, const std::vector<double>& recall, const std::vector<double>& complete) {
  if (s.recall.empty()) {
    s.recall.assign(ks_.size(), 0);
    s.complete.assign(ks_.size(), 0);
  }
  ++s.n;
  for (std::size_t i = 0; i < ks_.size(); ++i) {
    s.recall[i] += recall[i];
    s.complete[i] += complete[i];
  }
}

void RetrievalRecall::add(const std::vector<std::string>& supporting, const std::vector<std::string>& retrieved,
                          const std::string& type) {
  std::vector<std::string> gold = supporting;
  std::sort(gold.begin(), gold.end());
  gold.erase(std::unique(gold.begin(), gold.end()), gold.end());
  if (gold.empty()) return;
  std::vector<double> recall(ks_.size()), complete(ks_.size());
  for (std::size_t i = 0; i < ks_.size(); ++i) {
    std::size_t top = std::min(retrieved.size(), static_cast<std::size_t>(ks_[i]));
    std::size_t found = 0;
    for (const auto& g : gold) {
      if (std::find(retrieved.begin(), retrieved.begin() + static_cast<std::ptrdiff_t>(top), g) !=
          retrieved.begin() + static_cast<std::ptrdiff_t>(top)) {
        ++found;
      }
    }
    recall[i] = static_cast<double>(found) / static_cast<double>(gold.size());
    complete[i] = found == gold.size() ? 1.0 : 0.0;
  }
  accumulate(all_, recall, complete);
  if (!type.empty()) accumulate(types_[type], recall, complete);
}

std::vector<RecallAtK> RetrievalRecall::summarise(const Sums& s) const {
  std::vector<RecallAtK> out;
  for (std::size_t i = 0; i < ks_.size(); ++i) {
    double n = s.n ? static_cast<double>(s.n) : 1.0;
    out.push_back(RecallAtK{ks_[i], s.n ? s.recall[i] / n : 0.0, s.n ? s.complete[i] / n : 0.0});
  }
  return out;
}

std::map<std::string, std::vector<RecallAtK>> RetrievalRecall::by_type() const {
  std::map<std::string, std::vector<RecallAtK>> out;
  for (const auto& [type, sums] : types_) out[type] = summarise(sums);
  return out;
}

std::size_t RetrievalRecall::questions(const std::string& type) const {
  auto it = types_.find(type);
  return it == types_.end() ? 0 : it->second.n;
}

SupportingPassages supporting_passages(const data::Question& q) {
  if (!q.supporting_ids.empty()) return {q.supporting_ids, true};
  return {q.supporting_titles, false};
}

std::size_t hop_count(const data::Question& q) {
  const auto names = supporting_passages(q).names;
  return std::set<std::string>(names.begin(), names.end()).size();
}

}  // namespace steper::eval
