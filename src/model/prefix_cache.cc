// Prompt prefixes kept with their keys and values. Matching is a linear scan:
// the cache holds tens of prompts, and comparing token ids costs nothing
// next to the prefill it saves.
#include <algorithm>

#include "steper/model.h"

namespace steper::model {
namespace {

std::int64_t common_prefix(const std::vector<int>& a, const std::vector<int>& b) {
  const auto n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<std::int64_t>(i);
}

}  // namespace

PrefixCache::PrefixCache(std::int64_t max_tokens) : max_tokens_(max_tokens) {
  if (max_tokens < 0) throw InputError("prefix cache size must not be negative");
}

std::int64_t PrefixCache::match(const std::vector<int>& ids, std::int64_t limit, std::vector<torch::Tensor>* keys,
                                std::vector<torch::Tensor>* values) {
  Entry* best = nullptr;
  std::int64_t best_n = 0;
  for (auto& e : entries_) {
    const std::int64_t n = std::min(limit, common_prefix(ids, e.ids));
    if (n > best_n) best = &e, best_n = n;
  }
  keys->clear();
  values->clear();
  if (!best) return 0;
  best->used = ++clock_;
  for (std::size_t l = 0; l < best->keys.size(); ++l) {
    keys->push_back(best->keys[l].narrow(2, 0, best_n));
    values->push_back(best->values[l].narrow(2, 0, best_n));
  }
  return best_n;
}

void PrefixCache::insert(const std::vector<int>& ids, const std::vector<torch::Tensor>& keys, const std::vector<torch::Tensor>& values) {
  const auto n = static_cast<std::int64_t>(ids.size());
  if (n == 0 || n > max_tokens_) return;
  // Prompts this one extends (or repeats) add nothing it does not hold.
  auto covered = [&](const Entry& e) { return common_prefix(ids, e.ids) == static_cast<std::int64_t>(e.ids.size()); };
  for (const auto& e : entries_) {
    if (covered(e)) tokens_ -= static_cast<std::int64_t>(e.ids.size());
  }
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), covered), entries_.end());
  while (!entries_.empty() && tokens_ + n > max_tokens_) {
    auto lru = std::min_element(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
    tokens_ -= static_cast<std::int64_t>(lru->ids.size());
    entries_.erase(lru);
  }
  Entry e;
  e.ids = ids;
  for (std::size_t l = 0; l < keys.size(); ++l) {
    e.keys.push_back(keys[l].clone());
    e.values.push_back(values[l].clone());
  }
  e.used = ++clock_;
  entries_.push_back(std::move(e));
  tokens_ += n;
}

}  // namespace steper::model
