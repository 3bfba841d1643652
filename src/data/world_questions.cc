#include "world_questions.h"

namespace steper::data::world {
namespace {

template <class T>
const T& at(const std::vector<T>& v, int i) { return v[static_cast<std::size_t>(i)]; }

// One step along a relation: the fact, how the gold reasoning states it, and
// where the chain goes next.
struct Step {
  WorldHop hop;
  std::string statement;
  Ref next{Kind::person, kNone};
};

enum class Rel { director, release_year, birthplace, birth_year, father, spouse, employer, founder, headquarters, country, capital };

std::string name_of(const KnowledgeBase& kb, Ref r) {
  switch (r.kind) {
    case Kind::person: return at(kb.people, r.index).name;
    case Kind::film: return at(kb.films, r.index).name;
    case Kind::company: return at(kb.companies, r.index).name;
    case Kind::city: return at(kb.cities, r.index).name;
    case Kind::country: return at(kb.countries, r.index).name;
  }
  return {};
}

std::string id_of(Ref r) {
  switch (r.kind) {
    case Kind::person: return person_id(r.index);
    case Kind::film: return film_id(r.index);
    case Kind::company: return company_id(r.index);
    case Kind::city: return city_id(r.index);
    case Kind::country: return country_id(r.index);
  }
  return {};
}

std::optional<Step> step(const KnowledgeBase& kb, Ref from, Rel rel) {
  const std::string subject = name_of(kb, from);
  auto make = [&](const char* relation, Ref next, std::string statement) {
    return Step{WorldHop{id_of(from), subject, relation, name_of(kb, next)}, std::move(statement), next};
  };
  auto make_year = [&](const char* relation, int y, std::string statement) {
    return Step{WorldHop{id_of(from), subject, relation, std::to_string(y)}, std::move(statement), Ref{from.kind, kNone}};
  };
  switch (rel) {
    case Rel::director:
      if (from.kind != Kind::film) return std::nullopt;
      return make("director", {Kind::person, at(kb.films, from.index).director},
                  subject + " was directed by " + name_of(kb, {Kind::person, at(kb.films, from.index).director}) + ".");
    case Rel::release_year: {
      if (from.kind != Kind::film) return std::nullopt;
      int y = at(kb.films, from.index).year;
      return make_year("release year", y, subject + " was released in " + std::to_string(y) + ".");
    }
    case Rel::birthplace: {
      if (from.kind != Kind::person) return std::nullopt;
      Ref c{Kind::city, at(kb.people, from.index).birthplace};
      return make("birthplace", c, subject + " was born in " + name_of(kb, c) + ".");
    }
    case Rel::birth_year: {
      if (from.kind != Kind::person) return std::nullopt;
      int y = at(kb.people, from.index).birth_year;
      return make_year("birth year", y, subject + " was born in " + std::to_string(y) + ".");
    }
    case Rel::father: {
      if (from.kind != Kind::person || at(kb.people, from.index).father == kNone) return std::nullopt;
      Ref f{Kind::person, at(kb.people, from.index).father};
      return make("father", f, "The father of " + subject + " is " + name_of(kb, f) + ".");
    }
    case Rel::spouse: {
      if (from.kind != Kind::person || at(kb.people, from.index).spouse == kNone) return std::nullopt;
      Ref s{Kind::person, at(kb.people, from.index).spouse};
      return make("spouse", s, subject + " is married to " + name_of(kb, s) + ".");
    }
    case Rel::employer: {
      if (from.kind != Kind::person || at(kb.people, from.index).employer == kNone) return std::nullopt;
      Ref c{Kind::company, at(kb.people, from.index).employer};
      return make("employer", c, subject + " works for " + name_of(kb, c) + ".");
    }
    case Rel::founder: {
      if (from.kind != Kind::company) return std::nullopt;
      Ref p{Kind::person, at(kb.companies, from.index).founder};
      return make("founder", p, subject + " was founded by " + name_of(kb, p) + ".");
    }
    case Rel::headquarters: {
      if (from.kind != Kind::company) return std::nullopt;
      Ref c{Kind::city, at(kb.companies, from.index).headquarters};
      return make("headquarters", c, "The headquarters of " + subject + " are in " + name_of(kb, c) + ".");
    }
    case Rel::country: {
      if (from.kind != Kind::city) return std::nullopt;
      Ref c{Kind::country, at(kb.cities, from.index).country};
      return make("country", c, subject + " is in " + name_of(kb, c) + ".");
    }
    case Rel::capital: {
      if (from.kind != Kind::country) return std::nullopt;
      Ref c{Kind::city, at(kb.countries, from.index).capital};
      return make("capital", c, "The capital of " + subject + " is " + name_of(kb, c) + ".");
    }
  }
  return std::nullopt;
}

// Follows `rels` from `start`; the answer is the last hop's object.
std::optional<Draft> chain(const KnowledgeBase& kb, const std::string& type, Ref start, const std::vector<Rel>& rels,
                           const std::string& text) {
  Draft d{type, text, "", {}, {}};
  Ref at_ref = start;
  for (Rel r : rels) {
    auto s = step(kb, at_ref, r);
    if (!s) return std::nullopt;
    d.hops.push_back(s->hop);
    d.statements.push_back(s->statement);
    at_ref = s->next;
  }
  d.answer = d.hops.back().object;
  return d;
}

struct ChainTemplate {
  std::vector<Rel> rels;
  const char* before;  // question = before + anchor name + after
  const char* after;
};

const std::vector<ChainTemplate>& chain_templates(const std::string& type) {
  static const std::vector<ChainTemplate> compositional = {
      {{Rel::director, Rel::birthplace}, "Where was the director of film ", " born?"},
      {{Rel::director, Rel::father}, "Who is the father of the director of film ", "?"},
      {{Rel::director, Rel::birth_year}, "In which year was the director of film ", " born?"},
  };
  static const std::vector<ChainTemplate> inference = {
      {{Rel::father, Rel::father}, "Who is the paternal grandfather of ", "?"},
      {{Rel::spouse, Rel::father}, "Who is the father-in-law of ", "?"},
  };
  static const std::vector<ChainTemplate> three = {
      {{Rel::director, Rel::birthplace, Rel::country}, "In which country was the director of film ", " born?"},
      {{Rel::director, Rel::father, Rel::birthplace}, "Where was the father of the director of film ", " born?"},
  };
  static const std::vector<ChainTemplate> four = {
      {{Rel::director, Rel::birthplace, Rel::country, Rel::capital},
       "What is the capital of the country where the director of film ", " was born?"},
      {{Rel::director, Rel::father, Rel::birthplace, Rel::country},
       "In which country was the father of the director of film ", " born?"},
  };
  static const std::vector<ChainTemplate> company = {
      {{Rel::founder, Rel::birthplace}, "Where was the founder of ", " born?"},
  };
  static const std::vector<ChainTemplate> company3 = {
      {{Rel::founder, Rel::birthplace, Rel::country}, "In which country was the founder of ", " born?"},
  };
  if (type == "compositional") return compositional;
  if (type == "inference") return inference;
  if (type == "compositional_3hop") return three;
  if (type == "compositional_4hop") return four;
  if (type == "compositional_company") return company;
  return company3;
}

std::optional<Draft> comparison(const KnowledgeBase& kb, Ref a, Ref b, Random& rng) {
  if (a.index == b.index) return std::nullopt;
  if (a.kind == Kind::film) {
    auto sa = step(kb, a, Rel::release_year), sb = step(kb, b, Rel::release_year);
    int ya = at(kb.films, a.index).year, yb = at(kb.films, b.index).year;
    if (ya == yb) return std::nullopt;
    Draft d{"comparison", "Which film came out first, " + name_of(kb, a) + " or " + name_of(kb, b) + "?",
            name_of(kb, ya < yb ? a : b), {sa->hop, sb->hop}, {sa->statement, sb->statement}};
    return d;
  }
  auto sa = step(kb, a, Rel::birthplace), sb = step(kb, b, Rel::birthplace);
  if (rng.chance(0.5)) {
    Draft d{"comparison", "Were " + name_of(kb, a) + " and " + name_of(kb, b) + " born in the same city?",
            sa->hop.object == sb->hop.object ? "yes" : "no", {sa->hop, sb->hop}, {sa->statement, sb->statement}};
    return d;
  }
  auto ya = step(kb, a, Rel::birth_year), yb = step(kb, b, Rel::birth_year);
  int pa = at(kb.people, a.index).birth_year, pb = at(kb.people, b.index).birth_year;
  if (pa == pb) return std::nullopt;
  Draft d{"comparison", "Who was born first, " + name_of(kb, a) + " or " + name_of(kb, b) + "?",
          name_of(kb, pa < pb ? a : b), {ya->hop, yb->hop}, {ya->statement, yb->statement}};
  return d;
}

std::optional<Draft> bridge_comparison(const KnowledgeBase& kb, Ref a, Ref b, Random& rng) {
  if (a.index == b.index) return std::nullopt;
  auto da = step(kb, a, Rel::director), db = step(kb, b, Rel::director);
  if (da->next.index == db->next.index) return std::nullopt;
  auto ya = step(kb, da->next, Rel::birth_year), yb = step(kb, db->next, Rel::birth_year);
  int pa = at(kb.people, da->next.index).birth_year, pb = at(kb.people, db->next.index).birth_year;
  if (pa == pb) return std::nullopt;
  bool earlier = rng.chance(0.5);
  Ref winner = (earlier ? pa < pb : pa > pb) ? a : b;
  Draft d{"bridge_comparison",
          std::string("Which film has the director born ") + (earlier ? "earlier" : "later") + ", " + name_of(kb, a) +
              " or " + name_of(kb, b) + "?",
          name_of(kb, winner),
          {da->hop, ya->hop, db->hop, yb->hop},
          {da->statement, ya->statement, db->statement, yb->statement}};
  return d;
}

}  // namespace

const std::vector<std::string>& question_types() {
  static const std::vector<std::string> types = {"compositional", "inference", "comparison", "bridge_comparison",
                                                 "compositional_3hop", "compositional_4hop"};
  return types;
}

Kind anchor_kind(const std::string& type) {
  if (type == "inference") return Kind::person;
  return Kind::film;  // comparisons pick films or people themselves
}

std::optional<Draft> draft_question(const KnowledgeBase& kb, const std::string& type, Ref a, Ref b, Random& rng) {
  if (type == "comparison") return comparison(kb, a, b, rng);
  if (type == "bridge_comparison") return bridge_comparison(kb, a, b, rng);
  std::string t = type;
  // A share of 2- and 3-hop chains start at a company instead of a film.
  if (a.kind == Kind::company) t = type == "compositional" ? "compositional_company" : "compositional_company3";
  const auto& templates = chain_templates(t);
  const ChainTemplate& tpl = templates[rng.below(templates.size())];
  auto d = chain(kb, type, a, tpl.rels, tpl.before + name_of(kb, a) + tpl.after);
  return d;
}

}  // namespace steper::data::world
