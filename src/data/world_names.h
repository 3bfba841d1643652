// Made-up names that look alike on purpose: shared syllables, shared family
// names, shared title words, so that retrieval by name is not trivial.
#pragma once

#include <functional>
#include <string>
#include <unordered_set>

#include "world_random.h"

namespace steper::data::world {

class NameMaker {
 public:
  explicit NameMaker(Random& rng) : rng_(rng) {}
  std::string family_name();
  std::string given_name();
  std::string person(const std::string& family);  // unique across the world
  std::string city();
  std::string country();
  std::string film();
  std::string company(const std::string& founder_family);

 private:
  std::string word(int min_syllables, int max_syllables);
  std::string unique(const std::function<std::string()>& make);
  Random& rng_;
  std::unordered_set<std::string> used_;
};

}  // namespace steper::data::world
