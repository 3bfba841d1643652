#include <algorithm>

#include "world_kb.h"
#include "world_names.h"

namespace steper::data::world {
namespace {

const std::vector<std::string> kProfessions = {"actor", "painter", "engineer", "novelist", "composer", "physician",
                                               "architect", "journalist", "photographer", "lawyer", "poet", "chemist"};
const std::vector<std::string> kGenres = {"drama", "comedy", "thriller", "western", "musical", "war", "crime", "romance"};
const std::vector<std::string> kIndustries = {"film", "automobile", "music", "steel", "food", "aviation", "publishing", "textile"};

}  // namespace

std::string country_id(int i) { return "country-" + std::to_string(i); }
std::string city_id(int i) { return "city-" + std::to_string(i); }
std::string person_id(int i) { return "person-" + std::to_string(i); }
std::string film_id(int i) { return "film-" + std::to_string(i); }
std::string company_id(int i) { return "company-" + std::to_string(i); }

KnowledgeBase build_knowledge_base(std::size_t questions, Random& rng) {
  NameMaker names(rng);
  KnowledgeBase kb;
  const std::size_t n_countries = std::max<std::size_t>(8, questions / 800);
  const std::size_t n_cities = std::max<std::size_t>(n_countries * 3, questions / 25);
  const std::size_t n_people = std::max<std::size_t>(60, questions);
  const std::size_t n_films = std::max<std::size_t>(30, questions / 2);
  const std::size_t n_companies = std::max<std::size_t>(10, questions / 10);

  for (std::size_t i = 0; i < n_countries; ++i) kb.countries.push_back({names.country(), kNone});
  for (std::size_t i = 0; i < n_cities; ++i) {
    // The first cities give every country one; the rest land anywhere.
    int country = static_cast<int>(i < n_countries ? i : rng.below(n_countries));
    kb.cities.push_back({names.city(), country});
    if (kb.countries[static_cast<std::size_t>(country)].capital == kNone) kb.countries[static_cast<std::size_t>(country)].capital = static_cast<int>(i);
  }

  // Three generations: fathers come from the generation above, and pass on
  // their family name, so families of look-alike names form.
  std::vector<std::string> families;
  for (std::size_t i = 0; i < std::max<std::size_t>(20, n_people / 12); ++i) families.push_back(names.family_name());
  std::vector<std::vector<int>> generation(3);
  for (std::size_t i = 0; i < n_people; ++i) {
    Person p;
    p.generation = static_cast<int>(i * 3 / n_people);
    p.profession = rng.pick(kProfessions);
    p.birthplace = static_cast<int>(rng.below(n_cities));
    std::string family;
    if (p.generation == 0) {
      family = rng.pick(families);
      p.birth_year = rng.between(1850, 1890);
    } else {
      p.father = rng.pick(generation[static_cast<std::size_t>(p.generation - 1)]);
      const Person& f = kb.people[static_cast<std::size_t>(p.father)];
      family = f.name.substr(f.name.find(' ') + 1);
      if (auto sp = family.find(' '); sp != std::string::npos) family = family.substr(0, sp);
      p.birth_year = f.birth_year + rng.between(20, 40);
    }
    p.name = names.person(family);
    generation[static_cast<std::size_t>(p.generation)].push_back(static_cast<int>(i));
    kb.people.push_back(std::move(p));
  }
  // Marriages within a generation.
  for (auto& gen : generation) {
    for (std::size_t i = 0; i + 1 < gen.size(); i += 2) {
      if (!rng.chance(0.7)) continue;
      int a = gen[i], b = gen[i + 1];
      kb.people[static_cast<std::size_t>(a)].spouse = b;
      kb.people[static_cast<std::size_t>(b)].spouse = a;
    }
  }
  for (std::size_t i = 0; i < n_companies; ++i) {
    Company c;
    c.founder = static_cast<int>(rng.below(n_people));
    const Person& f = kb.people[static_cast<std::size_t>(c.founder)];
    std::string family = f.name.substr(f.name.find(' ') + 1);
    c.name = names.company(family.substr(0, family.find(' ')));
    c.industry = rng.pick(kIndustries);
    c.founded = f.birth_year + rng.between(25, 50);
    c.headquarters = static_cast<int>(rng.below(n_cities));
    kb.companies.push_back(std::move(c));
  }
  for (auto& p : kb.people) {
    if (rng.chance(0.6)) p.employer = static_cast<int>(rng.below(n_companies));
  }
  // Directors come from the younger generations, and some direct many films.
  std::vector<int> directors;
  for (int g = 1; g <= 2; ++g) {
    for (int p : generation[static_cast<std::size_t>(g)]) {
      if (rng.chance(0.35)) directors.push_back(p);
    }
  }
  for (std::size_t i = 0; i < n_films; ++i) {
    Film f;
    f.name = names.film();
    f.genre = rng.pick(kGenres);
    f.director = rng.pick(directors);
    f.year = kb.people[static_cast<std::size_t>(f.director)].birth_year + rng.between(25, 60);
    kb.films.push_back(std::move(f));
  }
  return kb;
}

}  // namespace steper::data::world
