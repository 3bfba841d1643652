// Cutting teacher traces into StepER's stage samples (DESIGN.md, "The method
// in one page"): with P<=s the passages gathered up to step s and R<=s the
// reasoning up to step s,
//   init       question + P<=1 -> R<=1
//   expand     question + P<=s -> R<=s   (s = 2 .. S-1)
//   aggregate  question + P<=S -> R<=S   (the chain and the answer)
#include <filesystem>
#include <set>

#include "steper/distill.h"

namespace steper::distill {
namespace {

bool correct(const std::string& prediction, const std::vector<std::string>& golds, const std::string& keep) {
  if (keep == "all") return true;
  const std::string p = text::normalize_answer(prediction);
  for (const auto& g : golds) {
    const std::string n = text::normalize_answer(g);
    if (keep == "em" ? p == n : (!n.empty() && p.find(n) != std::string::npos)) return true;
  }
  return false;
}

}  // namespace

Sample parse_sample(const data::json& j) {
  Sample s;
  s.id = data::require_string(j, "id");
  s.stage = data::require_string(j, "stage");
  if (s.stage != "init" && s.stage != "expand" && s.stage != "aggregate") {
    throw FieldError("stage", "'" + s.stage + "' is not init, expand or aggregate");
  }
  if (!j.contains("step") || !j["step"].is_number_integer()) throw FieldError("step", "missing or not an integer");
  s.step = j["step"].get<int>();
  s.prompt = data::require_string(j, "prompt");
  s.target = data::require_string(j, "target");
  s.chat = data::optional_bool(j, "chat");
  return s;
}

data::json to_json(const Sample& s) {
  data::json j{{"id", s.id}, {"stage", s.stage}, {"step", s.step}, {"prompt", s.prompt}, {"target", s.target}};
  if (s.chat) j["chat"] = true;
  return j;
}

Mode parse_mode(const std::string& name) {
  if (name == "steper") return Mode::steper;
  if (name == "vanilla") return Mode::vanilla;
  if (name == "answer") return Mode::answer;
  throw InputError("unknown mode '" + name + "'; use steper, vanilla or answer");
}

std::vector<Sample> cut_trace(const data::Trace& t, const std::map<std::string, retrieve::Hit>& passages,
                              const std::vector<std::string>& golds, const StepwiseOptions& o) {
  if (t.stop == "error" || t.steps.empty()) return {};
  if (!correct(t.prediction, golds, o.keep)) return {};
  // P<=s for every s: the first max_passages distinct passages, as the strategy kept them.
  std::vector<std::vector<retrieve::Hit>> gathered;
  std::vector<retrieve::Hit> so_far;
  std::set<std::string> seen;
  for (const auto& step : t.steps) {
    for (const auto& id : step.retrieved) {
      if (static_cast<int>(so_far.size()) >= o.max_passages || !seen.insert(id).second) continue;
      auto it = passages.find(id);
      if (it == passages.end()) throw InputError("trace '" + t.id + "' retrieved '" + id + "', which the corpus does not have");
      so_far.push_back(it->second);
    }
    gathered.push_back(so_far);
  }
  std::vector<std::string> chain;
  for (const auto& s : t.steps) chain.push_back(s.output);
  const int S = static_cast<int>(chain.size());
  const reason::PromptFormat& f = o.format;
  auto sample = [&](const std::string& stage, int s) {  // s 1-based
    const std::string context = reason::render_reasoning(o.templates, t.question, gathered[static_cast<std::size_t>(s - 1)]);
    const std::string before = reason::render_chain(std::vector<std::string>(chain.begin(), chain.begin() + s - 1));
    const std::string upto = reason::render_chain(std::vector<std::string>(chain.begin(), chain.begin() + s));
    Sample x{t.id, stage, s, "", "", f.is_chat()};
    if (o.last_step_only) {
      // The prompt the episode sent at step s; the target, what it wrote then.
      x.prompt = f.render(context, before);
      x.target = f.target(upto).substr(f.target(before).size());
    } else {
      x.prompt = f.render(context, "");
      x.target = f.target(upto);
    }
    return x;
  };
  std::vector<Sample> out;
  if (o.mode == Mode::answer) {
    const std::string answer = golds.empty() ? t.prediction : golds[0];
    const std::string context = reason::render_reasoning(o.templates, t.question, gathered.back());
    out.push_back({t.id, "aggregate", S, f.render(context, ""), f.target(" " + o.marker + " " + answer + "."), f.is_chat()});
    return out;
  }
  if (o.mode == Mode::steper && S > 1) {
    out.push_back(sample("init", 1));
    for (int s = 2; s < S; ++s) out.push_back(sample("expand", s));
  }
  out.push_back(sample("aggregate", S));
  return out;
}

StepwiseStats build_stepwise(const std::string& traces_path, const std::string& questions_path, const std::string& corpus_path,
                             const std::string& out_path, const StepwiseOptions& o) {
  std::map<std::string, std::vector<std::string>> golds;
  for (const auto& q : data::read_questions(questions_path)) golds[q.id] = q.answers;
  // Only the passages the traces name are kept in memory.
  std::map<std::string, retrieve::Hit> passages;
  {
    data::RecordReader<data::Trace> traces(traces_path, data::parse_trace);
    data::Trace t;
    while (traces.next(t)) {
      for (const auto& s : t.steps) {
        for (const auto& id : s.retrieved) passages.emplace(id, retrieve::Hit{});
      }
    }
    data::RecordReader<data::Passage> corpus(corpus_path, data::parse_passage);
    data::Passage p;
    while (corpus.next(p)) {
      auto it = passages.find(p.id);
      if (it != passages.end()) it->second = {p.id, p.title, p.text, 0};
    }
    // Ids the corpus lacks leave the map, so cut_trace names them.
    for (auto it = passages.begin(); it != passages.end();) it = it->second.id.empty() ? passages.erase(it) : std::next(it);
  }
  StepwiseStats st;
  std::map<std::string, double> chars;
  const std::string partial = out_path + ".partial";
  {
    data::JsonlWriter out(partial, data::JsonlWriter::Mode::truncate);
    data::RecordReader<data::Trace> traces(traces_path, data::parse_trace);
    data::Trace t;
    while (traces.next(t)) {
      ++st.traces;
      auto g = golds.find(t.id);
      if (g == golds.end()) {
        ++st.no_question;
        continue;
      }
      if (t.stop == "error") {
        ++st.errors;
        continue;
      }
      std::vector<Sample> samples;
      try {
        samples = cut_trace(t, passages, g->second, o);
      } catch (const InputError& e) {
        throw InputError(traces.records().where() + ": " + e.what() + "\n  hint: --corpus must be the corpus the index was built from");
      }
      if (samples.empty()) {
        ++st.wrong;
        continue;
      }
      ++st.kept;
      for (const auto& s : samples) {
        out.write(to_json(s));
        ++st.samples[s.stage];
        chars[s.stage] += static_cast<double>(s.prompt.size() + s.target.size());
      }
    }
  }
  for (const auto& [stage, n] : st.samples) st.mean_chars[stage] = chars[stage] / static_cast<double>(n);
  std::filesystem::rename(partial, out_path);
  return st;
}

}  // namespace steper::distill
