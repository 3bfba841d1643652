#include "steper/retrieve.h"

namespace steper::retrieve {

std::vector<std::vector<Hit>> Retriever::search_batch(const std::vector<std::string>& queries, int k) {
  std::vector<std::vector<Hit>> out;
  out.reserve(queries.size());
  for (const auto& q : queries) out.push_back(search(q, k));
  return out;
}

}  // namespace steper::retrieve
