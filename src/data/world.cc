// The world driver: knowledge base, passages, then questions split so that
// no anchor entity (the film, person or company a question starts from) is
// shared between splits: dev and test ask about entity combinations that
// training never saw, though all facts live in the one corpus.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sys/stat.h>
#include <unordered_map>
#include <unordered_set>

#include "steper/io.h"
#include "world_kb.h"
#include "world_names.h"
#include "world_passages.h"
#include "world_questions.h"

namespace steper::data {
namespace {

using world::Kind;
using world::Ref;

struct SplitShare {
  const char* name;
  double share;
};
constexpr SplitShare kSplits[] = {{"train", 0.40}, {"distill", 0.30}, {"dev", 0.15}, {"test", 0.15}};

// Share of each question type; chains dominate as in 2WikiMultiHopQA.
double type_share(const std::string& type) {
  if (type == "compositional") return 0.30;
  if (type == "inference") return 0.10;
  if (type == "comparison") return 0.20;
  if (type == "bridge_comparison") return 0.15;
  if (type == "compositional_3hop") return 0.15;
  return 0.10;  // compositional_4hop
}

// Splits `total` by `shares` (summing to 1) into counts that sum to `total`:
// floors first, then the largest remainders get one more.
std::vector<std::size_t> apportion(std::size_t total, const std::vector<double>& shares) {
  std::vector<std::size_t> out(shares.size());
  std::vector<std::pair<double, std::size_t>> rest;
  std::size_t given = 0;
  for (std::size_t i = 0; i < shares.size(); ++i) {
    double exact = static_cast<double>(total) * shares[i];
    out[i] = static_cast<std::size_t>(exact);
    given += out[i];
    rest.emplace_back(-(exact - static_cast<double>(out[i])), i);
  }
  std::sort(rest.begin(), rest.end());
  for (std::size_t j = 0; given < total; ++j, ++given) ++out[rest[j % rest.size()].second];
  return out;
}

// The split an entity anchors questions in: a hash of seed and id, so it
// does not depend on the order anything is generated in.
std::size_t split_of(std::uint64_t seed, const std::string& id) {
  std::uint64_t h = seed ^ 0xcbf29ce484222325ull;
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  double u = static_cast<double>((h ^ (h >> 29)) % 1000000) / 1e6;
  double acc = 0;
  for (std::size_t s = 0; s < std::size(kSplits); ++s) {
    acc += kSplits[s].share;
    if (u < acc) return s;
  }
  return std::size(kSplits) - 1;
}

Trace gold_trace(const Question& q, const world::Draft& d) {
  Trace t{q.id, q.question, q.answers, "gold", {}, d.answer, "answer", {}, json()};
  for (std::size_t i = 0; i < d.hops.size(); ++i) {
    std::string output = d.statements[i];
    if (i + 1 == d.hops.size()) output += std::string(" ") + kAnswerMarker + " " + d.answer + ".";
    t.steps.push_back(Step{i == 0 ? q.question : d.statements[i - 1], {d.hops[i].passage_id}, output});
  }
  return t;
}

// A single-hop question asking for one hop's object.
std::string reading_question(const WorldHop& h) {
  const std::string& x = h.subject;
  if (h.relation == "director") return "Who directed " + x + "?";
  if (h.relation == "release year") return "When was " + x + " released?";
  if (h.relation == "birthplace") return "Where was " + x + " born?";
  if (h.relation == "birth year") return "When was " + x + " born?";
  if (h.relation == "father") return "Who is the father of " + x + "?";
  if (h.relation == "spouse") return "Who is " + x + " married to?";
  if (h.relation == "employer") return "Who does " + x + " work for?";
  if (h.relation == "founder") return "Who founded " + x + "?";
  if (h.relation == "headquarters") return "Where are the headquarters of " + x + "?";
  if (h.relation == "country") return "Which country is " + x + " in?";
  if (h.relation == "capital") return "What is the capital of " + x + "?";
  return "What is the " + h.relation + " of " + x + "?";
}

std::string replace_every(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); !from.empty() && at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Copy drills of one reading fact: its passage and statement with the
// subject and object renamed (fresh names of the same kinds), beside
// another passage of the corpus.
class DrillMaker {
 public:
  DrillMaker(const std::vector<Passage>& corpus, std::uint64_t seed) : corpus_(corpus), rng_(seed), names_(rng_) {
    for (std::size_t i = 0; i < corpus.size(); ++i) by_id_[corpus[i].id] = i;
  }

  Drill make(const WorldHop& hop, const std::string& statement, const std::string& id) {
    const Passage& gold = corpus_[by_id_.at(hop.passage_id)];
    const std::string subject = fresh_entity(hop.passage_id.substr(0, hop.passage_id.find('-')));
    const bool year = hop.relation.find("year") != std::string::npos;
    std::string object;
    if (year) {
      do object = std::to_string(rng_.between(1850, 2015)); while (object == hop.object);
    } else {
      object = fresh_entity(object_kind(hop.relation));
    }
    // Through placeholders, so that a name inside the other is not renamed twice.
    auto rename = [&](std::string text) {
      text = replace_every(std::move(text), hop.subject, "\x01");
      text = replace_every(std::move(text), hop.object, "\x02");
      return replace_every(replace_every(std::move(text), "\x01", subject), "\x02", object);
    };
    WorldHop renamed{hop.passage_id, subject, hop.relation, object};
    Drill d;
    d.question = Question{id, reading_question(renamed), {object}, "drill", {subject}, {id + "-gold"}, "world"};
    Passage g{id + "-gold", subject, rename(gold.text)};
    const Passage& other = corpus_[rng_.below(corpus_.size())];
    d.passages = rng_.chance(0.5) ? std::vector<Passage>{g, other} : std::vector<Passage>{other, g};
    d.target = rename(statement) + " " + kAnswerMarker + " " + object + ".";
    return d;
  }

 private:
  static std::string object_kind(const std::string& relation) {
    if (relation == "birthplace" || relation == "headquarters" || relation == "capital") return "city";
    if (relation == "country") return "country";
    if (relation == "employer") return "company";
    return "person";  // director, father, spouse, founder
  }
  std::string fresh_entity(const std::string& kind) {
    if (kind == "film") return names_.film();
    if (kind == "company") return names_.company(names_.family_name());
    if (kind == "city") return names_.city();
    if (kind == "country") return names_.country();
    return names_.person(names_.family_name());
  }

  const std::vector<Passage>& corpus_;
  world::Random rng_;
  world::NameMaker names_;
  std::unordered_map<std::string, std::size_t> by_id_;
};

}  // namespace

json to_json(const Drill& d) {
  json passages = json::array();
  for (const auto& p : d.passages) passages.push_back(to_json(p));
  return json{{"question", to_json(d.question)}, {"passages", passages}, {"target", d.target}};
}

Drill parse_drill(const json& j) {
  Drill d;
  if (!j.is_object() || !j.contains("question")) throw FieldError("question", "missing");
  d.question = parse_question(j["question"]);
  if (!j.contains("passages") || !j["passages"].is_array()) throw FieldError("passages", "missing or not a list");
  for (const auto& p : j["passages"]) d.passages.push_back(parse_passage(p));
  d.target = require_string(j, "target");
  return d;
}

World generate_world(const WorldOptions& options) {
  if (options.questions == 0) throw InputError("a world needs at least one question");
  world::Random rng(options.seed);
  world::KnowledgeBase kb = world::build_knowledge_base(options.entities > 0 ? options.entities : options.questions, rng);
  World w;
  w.corpus = world::render_passages(kb, rng);

  // Anchor pools per split and kind.
  std::vector<std::vector<Ref>> films(std::size(kSplits)), people(std::size(kSplits)), companies(std::size(kSplits));
  for (std::size_t i = 0; i < kb.films.size(); ++i) {
    films[split_of(options.seed, world::film_id(static_cast<int>(i)))].push_back({Kind::film, static_cast<int>(i)});
  }
  for (std::size_t i = 0; i < kb.people.size(); ++i) {
    people[split_of(options.seed, world::person_id(static_cast<int>(i)))].push_back({Kind::person, static_cast<int>(i)});
  }
  for (std::size_t i = 0; i < kb.companies.size(); ++i) {
    companies[split_of(options.seed, world::company_id(static_cast<int>(i)))].push_back({Kind::company, static_cast<int>(i)});
  }

  std::vector<double> split_shares, type_shares;
  for (const auto& split : kSplits) split_shares.push_back(split.share);
  for (const auto& type : world::question_types()) type_shares.push_back(type_share(type));
  const std::vector<std::size_t> per_split = apportion(options.questions, split_shares);

  std::unordered_set<std::string> asked;
  // Its own generator, so that drills leave the rest of the world as it was.
  std::optional<DrillMaker> drills;
  if (options.drills > 0) drills.emplace(w.corpus, options.seed ^ 0xd811153eedull);
  for (std::size_t s = 0; s < std::size(kSplits); ++s) {
    std::vector<world::Draft> drafts;
    const std::vector<std::size_t> per_type = apportion(per_split[s], type_shares);
    for (std::size_t ti = 0; ti < per_type.size(); ++ti) {
      const std::string& type = world::question_types()[ti];
      const std::size_t quota = per_type[ti];
      std::size_t got = 0;
      for (std::size_t attempt = 0; got < quota && attempt < quota * 50 + 100; ++attempt) {
        Ref a{Kind::film, world::kNone}, b{Kind::film, world::kNone};
        const std::vector<Ref>* pool = &films[s];
        if (type == "inference" || (type == "comparison" && rng.chance(0.5))) pool = &people[s];
        else if ((type == "compositional" || type == "compositional_3hop") && rng.chance(0.2) && !companies[s].empty()) pool = &companies[s];
        if (pool->empty()) break;
        a = rng.pick(*pool);
        b = rng.pick(*pool);
        auto draft = world::draft_question(kb, type, a, b, rng);
        if (!draft || !asked.insert(draft->text).second) continue;
        drafts.push_back(std::move(*draft));
        ++got;
      }
    }
    // Mix the types, so that the first N questions of a split are a sample.
    for (std::size_t i = drafts.size(); i > 1; --i) std::swap(drafts[i - 1], drafts[rng.below(i)]);
    for (std::size_t i = 0; i < drafts.size(); ++i) {
      const world::Draft& d = drafts[i];
      WorldQuestion wq;
      Question& q = wq.question;
      char id[32];
      std::snprintf(id, sizeof id, "%s-%06zu", kSplits[s].name, i);
      q.id = id;
      q.question = d.text;
      q.answers = {d.answer};
      q.type = d.type;
      q.dataset = "world";
      for (const auto& hop : d.hops) {
        if (std::find(q.supporting_ids.begin(), q.supporting_ids.end(), hop.passage_id) == q.supporting_ids.end()) {
          q.supporting_ids.push_back(hop.passage_id);
          q.supporting_titles.push_back(hop.subject);
        }
      }
      wq.split = kSplits[s].name;
      wq.hops = d.hops;
      wq.gold = gold_trace(q, d);
      w.questions.push_back(std::move(wq));
      if (std::string(kSplits[s].name) != "train") continue;
      for (std::size_t h = 0; h < d.hops.size(); ++h) {
        const WorldHop& hop = d.hops[h];
        std::string text = reading_question(hop);
        if (!asked.insert(text).second) continue;  // one question per fact, none equal to a chain's
        WorldQuestion r;
        char rid[32];
        std::snprintf(rid, sizeof rid, "reading-%06zu", w.reading.size());
        r.question = Question{rid, text, {hop.object}, "single_hop", {hop.subject}, {hop.passage_id}, "world"};
        r.split = "reading";
        r.hops = {hop};
        r.gold = Trace{rid, text, {hop.object}, "gold", {Step{text, {hop.passage_id}, d.statements[h] + " " + kAnswerMarker + " " + hop.object + "."}},
                       hop.object, "answer", {}, json()};
        for (std::size_t v = 0; drills && v < options.drills; ++v) {
          char did[40];
          std::snprintf(did, sizeof did, "drill-%06zu-%zu", w.reading.size(), v);
          w.drills.push_back(drills->make(hop, d.statements[h], did));
        }
        w.reading.push_back(std::move(r));
      }
    }
  }
  return w;
}

void write_world(const World& world, const std::string& out_dir) {
  io::make_directories(out_dir);
  {
    io::JsonlWriter corpus(out_dir + "/corpus.jsonl", io::JsonlWriter::Mode::truncate);
    for (const auto& p : world.corpus) corpus.write(to_json(p));
  }
  {
    io::JsonlWriter reading(out_dir + "/reading.jsonl", io::JsonlWriter::Mode::truncate);
    io::JsonlWriter reading_gold(out_dir + "/reading_gold.jsonl", io::JsonlWriter::Mode::truncate);
    for (const auto& r : world.reading) reading.write(to_json(r.question)), reading_gold.write(to_json(r.gold));
  }
  if (!world.drills.empty()) {
    io::JsonlWriter drills(out_dir + "/drills.jsonl", io::JsonlWriter::Mode::truncate);
    for (const auto& d : world.drills) drills.write(to_json(d));
  }
  io::JsonlWriter gold(out_dir + "/gold_traces.jsonl", io::JsonlWriter::Mode::truncate);
  for (const auto& split : kSplits) {
    io::JsonlWriter out(out_dir + "/" + split.name + ".jsonl", io::JsonlWriter::Mode::truncate);
    for (const auto& q : world.questions) {
      if (q.split != split.name) continue;
      out.write(to_json(q.question));
      gold.write(to_json(q.gold));
    }
  }
}

}  // namespace steper::data
