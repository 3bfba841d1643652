// The knowledge base behind the synthetic world: entities and their facts.
// Entities refer to each other by index into their kind's vector.
#pragma once

#include <string>
#include <vector>

#include "world_random.h"

namespace steper::data::world {

constexpr int kNone = -1;

struct Country {
  std::string name;
  int capital = kNone;  // city
};
struct City {
  std::string name;
  int country = kNone;
};
struct Person {
  std::string name;
  std::string profession;
  int birth_year = 0;
  int birthplace = kNone;  // city
  int father = kNone;      // person
  int spouse = kNone;      // person
  int employer = kNone;    // company
  int generation = 0;      // 0: no father in the world; 1, 2: father one generation up
};
struct Film {
  std::string name;
  std::string genre;
  int year = 0;
  int director = kNone;  // person
};
struct Company {
  std::string name;
  std::string industry;
  int founded = 0;
  int founder = kNone;       // person
  int headquarters = kNone;  // city
};

struct KnowledgeBase {
  std::vector<Country> countries;
  std::vector<City> cities;
  std::vector<Person> people;
  std::vector<Film> films;
  std::vector<Company> companies;
};

// Sizes scale with the number of questions the base is made for.
KnowledgeBase build_knowledge_base(std::size_t questions, Random& rng);

// Passage ids: "<kind>-<index>", e.g. "film-12".
std::string country_id(int i);
std::string city_id(int i);
std::string person_id(int i);
std::string film_id(int i);
std::string company_id(int i);

}  // namespace steper::data::world
