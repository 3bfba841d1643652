// One encyclopedia-style passage per entity, stating all of its facts, each
// in one of several sentence forms so that a model must read, not match.
#include "world_passages.h"

namespace steper::data::world {
namespace {

std::string year(int y) { return std::to_string(y); }
// "a painter", "an architect".
std::string a(const std::string& noun) {
  return (std::string("aeiou").find(noun[0]) != std::string::npos ? "an " : "a ") + noun;
}
template <class T>
const T& at(const std::vector<T>& v, int i) { return v[static_cast<std::size_t>(i)]; }

std::string person_text(const KnowledgeBase& kb, const Person& p, Random& rng) {
  const std::string& city = at(kb.cities, p.birthplace).name;
  std::string t;
  switch (rng.below(3)) {
    case 0: t = p.name + " was " + a(p.profession) + " born in " + city + " in " + year(p.birth_year) + "."; break;
    case 1: t = p.name + " (born " + year(p.birth_year) + " in " + city + ") was " + a(p.profession) + "."; break;
    default: t = "Born in " + city + " in " + year(p.birth_year) + ", " + p.name + " worked as " + a(p.profession) + "."; break;
  }
  if (p.father != kNone) {
    const std::string& f = at(kb.people, p.father).name;
    switch (rng.below(3)) {
      case 0: t += " " + p.name + " was a child of " + f + "."; break;
      case 1: t += " " + p.name + "'s father was " + f + "."; break;
      default: t += " " + f + " was the father of " + p.name + "."; break;
    }
  }
  if (p.spouse != kNone) {
    const std::string& s = at(kb.people, p.spouse).name;
    t += rng.chance(0.5) ? " " + p.name + " married " + s + "." : " " + p.name + " was the spouse of " + s + ".";
  }
  if (p.employer != kNone) {
    const std::string& c = at(kb.companies, p.employer).name;
    t += rng.chance(0.5) ? " " + p.name + " worked for " + c + "." : " " + p.name + " was employed by " + c + ".";
  }
  return t;
}

std::string film_text(const KnowledgeBase& kb, const Film& f, Random& rng) {
  const std::string& d = at(kb.people, f.director).name;
  switch (rng.below(3)) {
    case 0: return f.name + " is a " + year(f.year) + " " + f.genre + " film directed by " + d + ".";
    case 1: return f.name + " is " + a(f.genre) + " film by director " + d + ", released in " + year(f.year) + ".";
    default: return "Directed by " + d + ", " + f.name + " (" + year(f.year) + ") is " + a(f.genre) + " film.";
  }
}

std::string city_text(const KnowledgeBase& kb, int index, Random& rng) {
  const City& c = at(kb.cities, index);
  const Country& country = at(kb.countries, c.country);
  std::string t = rng.chance(0.5) ? c.name + " is a city in " + country.name + "."
                                  : c.name + " is a town located in " + country.name + ".";
  if (country.capital == index) t += " It is the capital of " + country.name + ".";
  return t;
}

std::string country_text(const KnowledgeBase& kb, const Country& c, Random& rng) {
  const std::string& cap = at(kb.cities, c.capital).name;
  return rng.chance(0.5) ? c.name + " is a country. Its capital is " + cap + "."
                         : c.name + " is a country whose capital city is " + cap + ".";
}

std::string company_text(const KnowledgeBase& kb, const Company& c, Random& rng) {
  const std::string& f = at(kb.people, c.founder).name;
  const std::string& hq = at(kb.cities, c.headquarters).name;
  if (rng.chance(0.5)) {
    return c.name + " is " + a(c.industry) + " company founded in " + year(c.founded) + " by " + f +
           ". Its headquarters are in " + hq + ".";
  }
  return "Founded by " + f + " in " + year(c.founded) + ", " + c.name + " is " + a(c.industry) +
         " company headquartered in " + hq + ".";
}

}  // namespace

std::vector<Passage> render_passages(const KnowledgeBase& kb, Random& rng) {
  std::vector<Passage> out;
  for (std::size_t i = 0; i < kb.countries.size(); ++i) {
    out.push_back({country_id(static_cast<int>(i)), kb.countries[i].name, country_text(kb, kb.countries[i], rng)});
  }
  for (std::size_t i = 0; i < kb.cities.size(); ++i) {
    out.push_back({city_id(static_cast<int>(i)), kb.cities[i].name, city_text(kb, static_cast<int>(i), rng)});
  }
  for (std::size_t i = 0; i < kb.people.size(); ++i) {
    out.push_back({person_id(static_cast<int>(i)), kb.people[i].name, person_text(kb, kb.people[i], rng)});
  }
  for (std::size_t i = 0; i < kb.films.size(); ++i) {
    out.push_back({film_id(static_cast<int>(i)), kb.films[i].name, film_text(kb, kb.films[i], rng)});
  }
  for (std::size_t i = 0; i < kb.companies.size(); ++i) {
    out.push_back({company_id(static_cast<int>(i)), kb.companies[i].name, company_text(kb, kb.companies[i], rng)});
  }
  return out;
}

}  // namespace steper::data::world
