#pragma once

#include <vector>

#include "steper/data.h"
#include "world_kb.h"

namespace steper::data::world {

// Countries, cities, people, films, companies, in that order; ids from world_kb.h.
std::vector<Passage> render_passages(const KnowledgeBase& kb, Random& rng);

}  // namespace steper::data::world
