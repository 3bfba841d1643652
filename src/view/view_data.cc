// The viewer's data: questions, each method's scored runs and the passages
// they name, as compact arrays (the page holds 10,000 questions x 6 methods;
// objects with repeated keys would double it).
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "steper/error.h"
#include "steper/eval.h"
#include "steper/retrieve.h"
#include "steper/view.h"

namespace steper::view {
namespace {

using data::json;

// Passages by id, numbered in the order they are first named.
class PassageTable {
 public:
  std::size_t intern(const std::string& id) {
    auto [it, added] = index_.emplace(id, ids_.size());
    if (added) ids_.push_back(id);
    return it->second;
  }
  const std::vector<std::string>& ids() const { return ids_; }
  std::size_t find(const std::string& id) const {
    auto it = index_.find(id);
    return it == index_.end() ? npos : it->second;
  }
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<std::string> ids_;
};

// The first `limit` bytes of `text` at most, cut after a whole UTF-8
// character and, where one is near, at a space; "…" marks the cut.
std::string shorten(const std::string& text, std::size_t limit) {
  if (limit == 0 || text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  const std::size_t space = text.rfind(' ', end);
  if (space != std::string::npos && space > limit * 4 / 5) end = space;
  return text.substr(0, end) + "\u2026";
}

double rounded(double v, double unit) { return std::round(v / unit) * unit; }

// Titles and text of the named passages, from a corpus JSONL (streamed, only
// the named ones kept) or an index.
void fill_passages(const PassageTable& table, const ViewOptions& o, std::vector<std::pair<std::string, std::string>>& out) {
  out.assign(table.ids().size(), {});
  if (!o.corpus.empty()) {
    data::RecordReader<data::Passage> reader(o.corpus, data::parse_passage);
    data::Passage p;
    while (reader.next(p)) {
      const std::size_t i = table.find(p.id);
      if (i != PassageTable::npos) out[i] = {std::move(p.title), shorten(p.text, o.passage_chars)};
    }
  } else if (!o.index.empty()) {
    auto retriever = retrieve::open_retriever(o.index);
    constexpr std::size_t kBatch = 1000;
    for (std::size_t at = 0; at < table.ids().size(); at += kBatch) {
      const std::vector<std::string> ids(table.ids().begin() + static_cast<std::ptrdiff_t>(at),
                                         table.ids().begin() + static_cast<std::ptrdiff_t>(std::min(at + kBatch, table.ids().size())));
      for (auto& [id, hit] : retriever->fetch(ids)) out[table.find(id)] = {std::move(hit.title), shorten(hit.text, o.passage_chars)};
    }
  }
}

}  // namespace

MethodTraces parse_method_traces(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq) return {arg.substr(0, eq), "", arg.substr(eq + 1)};
  std::string name = arg.substr(arg.find_last_of('/') == std::string::npos ? 0 : arg.find_last_of('/') + 1);
  if (const auto dot = name.find('.'); dot != std::string::npos && dot > 0) name.resize(dot);
  return {name.empty() ? arg : name, "", arg};
}

json view_data(const std::vector<data::Question>& questions, const std::vector<MethodTraces>& methods,
               const ViewOptions& options, ViewStats* stats) {
  if (!options.corpus.empty() && !options.index.empty()) throw InputError("give passages by --corpus or by --index, not both");
  std::set<std::string> names;
  for (const auto& m : methods) {
    if (m.id.empty()) throw InputError("a method needs a name (NAME=PATH): " + m.path);
    if (!names.insert(m.id).second) throw InputError("method '" + m.id + "' is given twice; name them NAME=PATH");
  }
  json pairs = json::array();
  for (const auto& [a, b] : options.pairs) {
    for (const auto* id : {&a, &b}) {
      if (!names.count(*id)) throw InputError("a disagreement pair names method '" + *id + "', which no --traces gives");
    }
    pairs.push_back(json::array({a, b}));
  }
  if (options.pairs.empty()) {
    for (std::size_t i = 1; i < methods.size(); ++i) pairs.push_back(json::array({methods[0].id, methods[i].id}));
  }
  std::unordered_map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < questions.size(); ++i) position.emplace(questions[i].id, i);

  ViewStats st;
  PassageTable table;
  json qrows = json::array();
  for (const auto& q : questions) {
    json gold = json::array();
    for (const auto& id : q.supporting_ids) gold.push_back(table.intern(id));
    qrows.push_back(json::array({q.id, q.question, q.answers, q.type, eval::hop_count(q), gold, q.supporting_titles}));
  }

  json method_rows = json::array(), runs = json::array();
  for (const auto& m : methods) {
    json column(json::value_t::array);
    column.get_ref<json::array_t&>().assign(questions.size(), json());
    const auto report = eval::evaluate_traces(questions, m.path, [&](const eval::ScoredRun& r) {
      json steps = json::array();
      for (const auto& s : r.trace->steps) {
        json retrieved = json::array();
        for (const auto& id : s.retrieved) retrieved.push_back(table.intern(id));
        steps.push_back(json::array({s.query, std::move(retrieved), s.output}));
      }
      column[position.at(r.question->id)] =
          json::array({r.trace->prediction, r.trace->stop, r.scores.em, rounded(r.scores.f1, 1e-4), r.scores.acc,
                       r.recall < 0 ? -1.0 : rounded(r.recall, 1e-3), std::move(steps), r.trace->error});
      ++st.runs;
    });
    st.unknown += report.unknown;
    method_rows.push_back(json{{"id", m.id},
                               {"label", m.label.empty() ? m.id : m.label},
                               {"file", m.path},
                               {"missing", report.missing},
                               {"unknown", report.unknown},
                               {"duplicates", report.duplicates}});
    runs.push_back(std::move(column));
  }

  std::vector<std::pair<std::string, std::string>> text;
  fill_passages(table, options, text);
  // Questions that name supporting titles only: their gold passages are the
  // retrieved ones with such a title.
  for (std::size_t qi = 0; qi < questions.size(); ++qi) {
    const auto& q = questions[qi];
    if (!q.supporting_ids.empty() || q.supporting_titles.empty()) continue;
    const std::set<std::string> titles(q.supporting_titles.begin(), q.supporting_titles.end());
    std::set<std::size_t> gold;
    for (const auto& column : runs) {
      if (column[qi].is_null()) continue;
      for (const auto& step : column[qi][6]) {
        for (const auto& p : step[1]) {
          if (titles.count(text[p.get<std::size_t>()].first)) gold.insert(p.get<std::size_t>());
        }
      }
    }
    qrows[qi][5] = gold;
  }

  // Whether each run retrieved all its question's gold passages, for the
  // outcome filters (1 yes, 0 no, -1 no gold known).
  for (auto& column : runs) {
    for (std::size_t qi = 0; qi < questions.size(); ++qi) {
      json& run = column[qi];
      if (run.is_null()) continue;
      const json& gold = qrows[qi][5];
      if (gold.empty()) {
        run.push_back(-1);
        continue;
      }
      std::unordered_set<std::size_t> seen;
      for (const auto& step : run[6]) {
        for (const auto& p : step[1]) seen.insert(p.get<std::size_t>());
      }
      bool all = true;
      for (const auto& g : gold) all = all && seen.count(g.get<std::size_t>());
      run.push_back(all ? 1 : 0);
    }
  }

  // Number the passages question by question (its gold, then what each
  // method retrieved), so that a question's passages sit together: the page
  // unpacks its bulk in blocks, and a card then needs one or two.
  std::vector<std::size_t> renumber(table.ids().size(), PassageTable::npos);
  std::size_t next = 0;
  auto visit = [&](json& p) {
    std::size_t& n = renumber[p.get<std::size_t>()];
    if (n == PassageTable::npos) n = next++;
    p = n;
  };
  for (std::size_t qi = 0; qi < questions.size(); ++qi) {
    for (auto& p : qrows[qi][5]) visit(p);
    for (auto& column : runs) {
      if (column[qi].is_null()) continue;
      for (auto& step : column[qi][6]) {
        for (auto& p : step[1]) visit(p);
      }
    }
  }
  json passages(json::value_t::array);
  passages.get_ref<json::array_t&>().resize(next);
  for (std::size_t i = 0; i < table.ids().size(); ++i) {
    if (text[i].first.empty() && text[i].second.empty()) ++st.untitled;
    passages[renumber[i]] = json::array({table.ids()[i], std::move(text[i].first), std::move(text[i].second)});
  }

  json figures = json::array();
  for (const auto& f : options.figures) figures.push_back(json{{"title", f.title}, {"svg", f.svg}});
  json tables = json::array();
  for (const auto& t : options.tables) tables.push_back(json{{"title", t.title}, {"header", t.header}, {"rows", t.rows}});

  st.questions = questions.size();
  st.passages = table.ids().size();
  if (stats) *stats = st;
  return json{{"title", options.title}, {"methods", std::move(method_rows)}, {"questions", std::move(qrows)},
              {"passages", std::move(passages)}, {"runs", std::move(runs)}, {"figures", std::move(figures)},
              {"tables", std::move(tables)}, {"pairs", std::move(pairs)}};
}

}  // namespace steper::view
