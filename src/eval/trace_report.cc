#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "steper/eval.h"

namespace steper::eval {
namespace {

double supporting_recall(const data::Question& q, const data::Trace& t) {
  if (q.supporting_ids.empty()) return -1;
  std::unordered_set<std::string> seen;
  for (const auto& step : t.steps) seen.insert(step.retrieved.begin(), step.retrieved.end());
  std::unordered_set<std::string> gold(q.supporting_ids.begin(), q.supporting_ids.end());
  std::size_t found = 0;
  for (const auto& g : gold) found += seen.count(g);
  return static_cast<double>(found) / static_cast<double>(gold.size());
}

data::json totals_json(const Totals& t) {
  data::json j{{"questions", t.n},
               {"em", t.mean(t.em)},
               {"f1", t.mean(t.f1)},
               {"acc", t.mean(t.acc)},
               {"steps_mean", t.mean(t.steps)},
               {"max_steps_rate", t.mean(static_cast<double>(t.max_steps))},
               {"error_rate", t.mean(static_cast<double>(t.errors))}};
  if (t.recall_n) j["supporting_recall"] = t.recall_mean();
  return j;
}

}  // namespace

void Totals::add(const AnswerScores& s, std::size_t step_count, const std::string& stop) {
  ++n;
  em += s.em;
  f1 += s.f1;
  acc += s.acc;
  steps += static_cast<double>(step_count);
  if (stop == "max_steps") ++max_steps;
  if (stop == "error") ++errors;
}

TraceReport evaluate_traces(const std::vector<data::Question>& questions, const std::string& traces_path,
                            const std::function<void(const ScoredRun&)>& on_run) {
  std::unordered_map<std::string, const data::Question*> by_id;
  for (const auto& q : questions) by_id.emplace(q.id, &q);
  TraceReport report;
  report.traces = traces_path;
  std::unordered_set<std::string> scored;
  data::RecordReader<data::Trace> reader(traces_path, data::parse_trace);
  data::Trace t;
  while (reader.next(t)) {
    auto it = by_id.find(t.id);
    if (it == by_id.end()) {
      ++report.unknown;
      continue;
    }
    if (!scored.insert(t.id).second) {
      ++report.duplicates;
      continue;
    }
    const data::Question& q = *it->second;
    ScoredRun run{&q, &t, score_answer(t.prediction, q.answers), supporting_recall(q, t)};
    report.overall.add(run.scores, t.steps.size(), t.stop);
    if (!q.type.empty()) report.by_type[q.type].add(run.scores, t.steps.size(), t.stop);
    if (run.recall >= 0) {
      ++report.overall.recall_n;
      report.overall.recall += run.recall;
      if (!q.type.empty()) {
        ++report.by_type[q.type].recall_n;
        report.by_type[q.type].recall += run.recall;
      }
    }
    if (on_run) on_run(run);
  }
  report.missing = questions.size() - scored.size();
  return report;
}

data::json to_json(const TraceReport& r) {
  data::json j = totals_json(r.overall);
  j["missing"] = r.missing;
  j["unknown"] = r.unknown;
  j["duplicates"] = r.duplicates;
  j["by_type"] = data::json::object();
  for (const auto& [type, t] : r.by_type) j["by_type"][type] = totals_json(t);
  return j;
}

}  // namespace steper::eval
