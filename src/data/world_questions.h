// Question templates over the knowledge base: relation chains (compositional,
// inference, 3- and 4-hop) and comparisons, each with its hops and the
// sentences of its gold reasoning.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "steper/data.h"
#include "world_kb.h"

namespace steper::data::world {

enum class Kind { person, film, company, city, country };

struct Ref {
  Kind kind;
  int index;
};

// A question before it gets an id and a split.
struct Draft {
  std::string type;
  std::string text;
  std::string answer;
  std::vector<WorldHop> hops;
  std::vector<std::string> statements;  // one per hop, in gold order
};

// The question types, and the kind of entity each anchors on.
const std::vector<std::string>& question_types();
Kind anchor_kind(const std::string& type);

// A question of `type` anchored on `a` (and `b` for comparisons), or nothing
// when the entities lack the facts it needs (no father, equal years, ...).
std::optional<Draft> draft_question(const KnowledgeBase& kb, const std::string& type, Ref a, Ref b, Random& rng);

}  // namespace steper::data::world
