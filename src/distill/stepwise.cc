// Cutting teacher traces into StepER's stage samples (DESIGN.md, "The method
// in one page"): with P<=s the passages gathered up to step s and R<=s the
// reasoning up to step s,
//   init       question + P<=1 -> R<=1
//   expand     question + P<=s -> R<=s   (s = 2 .. S-1)
//   aggregate  question + P<=S -> R<=S   (the chain and the answer)
#include <filesystem>
#include <set>

#include "steper/distill.h"
#include "steper/io.h"

namespace steper::distill {
namespace {

// The options with the run's settings, from its record (see StepwiseOptions).
StepwiseOptions with_run_settings(StepwiseOptions o, const reason::RunSettings& r, const std::string& traces_path) {
  auto refuse = [&](const std::string& what, const std::string& stated, const std::string& recorded) {
    throw InputError(traces_path + ": " + what + " " + stated + " was given, but the run that made these traces used " + recorded +
                     "\n  hint: leave it out; stepwise reads the run's settings from its traces");
  };
  if (r.strategy == reason::strategy_name(reason::Strategy::selfask)) throw InputError(traces_path + ": selfask traces hold questions, not a reasoning chain to cut");
  if (o.stated_max_passages && o.max_passages != r.max_passages) {
    refuse("--max-passages", std::to_string(o.max_passages), std::to_string(r.max_passages));
  }
  if (o.stated_marker && o.marker != r.marker) refuse("--marker", "'" + o.marker + "'", "'" + r.marker + "'");
  if (o.stated_templates && o.templates.fingerprint() != r.templates) {
    refuse("the prompt templates", (o.templates.folder.empty() ? "(shipped)" : o.templates.folder) + " with passages cut to " +
           std::to_string(o.templates.max_passage_words) + " words", (r.prompts.empty() ? "(shipped)" : r.prompts) + " with " +
           std::to_string(r.max_passage_words));
  }
  o.max_passages = r.max_passages;
  o.marker = r.marker;
  if (!o.stated_templates) {
    o.templates = r.prompts.empty() ? reason::default_templates() : reason::load_templates(r.prompts);
    o.templates.max_passage_words = r.max_passage_words;
    if (o.templates.fingerprint() != r.templates) {
      throw InputError(traces_path + ": the prompt templates in " + (r.prompts.empty() ? "this steper" : r.prompts) +
                       " are not those the run used (fingerprint " + o.templates.fingerprint() + ", recorded " + r.templates +
                       ")\n  hint: the folder or steper's shipped templates changed since; --prompts DIR gives the run's");
    }
  }
  return o;
}

bool correct(const std::string& prediction, const std::vector<std::string>& golds, const std::string& keep) {
  if (keep == "all") return true;
  return text::answers_correctly(prediction, golds, keep == "em" ? text::AnswerMatch::exact : text::AnswerMatch::contained);
}

}  // namespace

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names{"init", "expand", "aggregate"};
  return names;
}

Stage parse_stage(const std::string& name) {
  const auto& names = stage_names();
  for (std::size_t j = 0; j < names.size(); ++j) {
    if (names[j] == name) return static_cast<Stage>(j);
  }
  throw FieldError("stage", "'" + name + "' is not init, expand or aggregate");
}

const std::string& stage_name(Stage s) { return stage_names().at(static_cast<std::size_t>(s)); }

Sample parse_sample(const data::json& j) {
  Sample s;
  s.id = data::require_string(j, "id");
  s.stage = parse_stage(data::require_string(j, "stage"));
  if (!j.contains("step") || !j["step"].is_number_integer()) throw FieldError("step", "missing or not an integer");
  s.step = j["step"].get<int>();
  s.prompt = data::require_string(j, "prompt");
  s.target = data::require_string(j, "target");
  s.chat = data::optional_bool(j, "chat");
  return s;
}

data::json to_json(const Sample& s) {
  data::json j{{"id", s.id}, {"stage", stage_name(s.stage)}, {"step", s.step}, {"prompt", s.prompt}, {"target", s.target}};
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
  reason::PassagePool pool(o.max_passages);
  for (const auto& step : t.steps) {
    std::vector<retrieve::Hit> hits;
    for (const auto& id : step.retrieved) {
      if (!pool.wants(id)) continue;  // only the passages the pool keeps need a text
      auto it = passages.find(id);
      if (it == passages.end()) throw InputError("trace '" + t.id + "' retrieved '" + id + "', which the corpus does not have");
      hits.push_back(it->second);
    }
    pool.add(std::move(hits));
    gathered.push_back(pool.passages());
  }
  std::vector<std::string> chain;
  for (const auto& s : t.steps) chain.push_back(s.output);
  const int S = static_cast<int>(chain.size());
  const reason::PromptFormat& f = o.format;
  auto sample = [&](Stage stage, int s) {  // s 1-based
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
    out.push_back({t.id, Stage::aggregate, S, f.render(context, ""), f.target(" " + o.marker + " " + answer + "."), f.is_chat()});
    return out;
  }
  if (o.mode == Mode::steper && S > 1) {
    out.push_back(sample(Stage::init, 1));
    for (int s = 2; s < S; ++s) out.push_back(sample(Stage::expand, s));
  }
  out.push_back(sample(Stage::aggregate, S));
  return out;
}

StepwiseStats build_stepwise(const std::string& traces_path, const std::string& questions_path, const std::string& corpus_path,
                             const std::string& out_path, const StepwiseOptions& stated) {
  std::map<std::string, std::vector<std::string>> golds;
  for (const auto& q : data::read_questions(questions_path)) golds[q.id] = q.answers;
  // Only the passages the traces name are kept in memory.
  std::map<std::string, retrieve::Hit> passages;
  // One pass for the ids and the run record, which every trace must share.
  data::json run;
  {
    data::RecordReader<data::Trace> traces(traces_path, data::parse_trace);
    data::Trace t;
    bool first = true;
    while (traces.next(t)) {
      if (first) run = t.run;
      first = false;
      if (t.run != run) {
        // A file where some traces carry the run record and some do not
        // mixes `steper run`'s output with traces written elsewhere.
        const bool mixed = t.run.is_null() != run.is_null();
        throw InputError(traces.records().where() + ": trace '" + t.id + "' comes from another run than the file's first trace" +
                         (mixed ? " (one carries the run record, the other does not)" : "") +
                         "\n  hint: cut each run's traces file on its own" +
                         (mixed ? "; traces without a record need --corpus and the run's flags" : ""));
      }
      for (const auto& s : t.steps) {
        for (const auto& id : s.retrieved) passages.emplace(id, retrieve::Hit{});
      }
    }
  }
  const StepwiseOptions o = run.is_object() ? with_run_settings(stated, reason::parse_run_settings(run), traces_path) : stated;
  if (corpus_path.empty()) {
    if (!run.is_object() || run.value("index", "").empty()) {
      throw InputError(traces_path + ": these traces name no index to read passages from (made without a run record, or without retrieval)" +
                       std::string("\n  hint: give --corpus, the corpus the index was built from"));
    }
    const std::string index = run["index"].get<std::string>();
    std::unique_ptr<retrieve::Retriever> retriever;
    try {
      retriever = retrieve::open_retriever(index);
    } catch (const std::exception& e) {
      throw InputError(traces_path + ": the run's index cannot be opened: " + e.what() + "\n  hint: give --corpus instead");
    }
    std::vector<std::string> ids;
    for (const auto& [id, hit] : passages) ids.push_back(id);
    for (auto& [id, hit] : retriever->fetch(ids)) passages[id] = std::move(hit);
  } else {
    data::RecordReader<data::Passage> corpus(corpus_path, data::parse_passage);
    data::Passage p;
    while (corpus.next(p)) {
      auto it = passages.find(p.id);
      if (it != passages.end()) it->second = {p.id, p.title, p.text, 0};
    }
  }
  // Ids the corpus lacks leave the map, so cut_trace names them.
  for (auto it = passages.begin(); it != passages.end();) it = it->second.id.empty() ? passages.erase(it) : std::next(it);
  StepwiseStats st;
  std::map<std::string, double> chars;
  {
    io::JsonlWriter out(out_path, io::JsonlWriter::Mode::staged);
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
        throw InputError(traces.records().where() + ": " + e.what() +
                         (corpus_path.empty() ? "\n  hint: the run's index has changed since" : "\n  hint: --corpus must be the corpus the index was built from"));
      }
      if (samples.empty()) {
        ++st.wrong;
        continue;
      }
      ++st.kept;
      for (const auto& s : samples) {
        out.write(to_json(s));
        ++st.samples[stage_name(s.stage)];
        chars[stage_name(s.stage)] += static_cast<double>(s.prompt.size() + s.target.size());
      }
    }
    out.commit();
  }
  for (const auto& [stage, n] : st.samples) st.mean_chars[stage] = chars[stage] / static_cast<double>(n);
  return st;
}

}  // namespace steper::distill
