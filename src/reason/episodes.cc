// The strategies as episodes: per-question state machines that ask the
// runner for a retrieval or a generation and take the result, so one batch
// serves many questions at once.
#include <set>

#include "steper/reason.h"

namespace steper::reason {
namespace {

std::string trim(std::string s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.erase(s.begin());
  while (!s.empty() && blank(s.back())) s.pop_back();
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// What every strategy shares: the question, the passages kept for the
// prompt (the first max_passages distinct ones), the steps so far.
class EpisodeBase : public Episode {
 public:
  EpisodeBase(const StrategyOptions& o, const data::Question& q) : o_(o), templates_(o.templates), pool_(o.max_passages) {
    trace_.id = q.id;
    trace_.question = q.question;
    trace_.answers = q.answers;
    trace_.strategy = strategy_name(o.strategy);
    if (!o.demo_pool.empty()) {
      // IRCoT leaves two blank lines after its demonstrations; the layout adds one.
      templates_.demos = choose_demonstrations(o.demo_pool, q.id, o.demo_budget, o.seed) + "\n";
    }
  }
  Need need() const override { return need_; }
  std::string query() const override { return query_; }
  data::Trace trace() const override { return trace_; }

  void retrieved(std::vector<retrieve::Hit> hits) override {
    data::Step step;
    step.query = query_;
    for (auto& h : hits) {
      step.retrieved.push_back(h.id);
    }
    pool_.add(std::move(hits));
    trace_.steps.push_back(std::move(step));
    need_ = Need::generate;
  }

 protected:
  lm::CompletionOptions options(int max_tokens, std::vector<std::string> stop) const {
    lm::CompletionOptions c;
    c.max_tokens = max_tokens;
    c.temperature = o_.temperature;
    c.seed = o_.seed;
    c.stop = std::move(stop);
    c.chat_rendered = o_.format.is_chat();
    return c;
  }
  void retrieve_next(const std::string& query) {
    query_ = query;
    need_ = Need::retrieve;
  }
  // A step with no retrieval (noretrieval, or a selfask line after an answer).
  data::Step& current_step() {
    if (trace_.steps.empty()) trace_.steps.push_back({});
    return trace_.steps.back();
  }
  void finish(const std::string& stop, const std::string& prediction) {
    trace_.stop = stop;
    trace_.prediction = prediction;
    need_ = Need::done;
  }
  void fail(const std::string& why) {
    finish("error", "");
    trace_.error = why.empty() ? "the model failed" : why;
  }

  const StrategyOptions& o_;
  Templates templates_;  // the options' layouts, with this question's demonstrations
  data::Trace trace_;
  PassagePool pool_;  // what the prompt shows
  Need need_ = Need::retrieve;
  std::string query_;
};

// ircot, onestep and noretrieval: a chain of sentences after the reasoning
// prompt. ircot writes one sentence per step and retrieves with it; the
// others write the whole chain in one step.
class ChainEpisode : public EpisodeBase {
 public:
  ChainEpisode(const StrategyOptions& o, const data::Question& q) : EpisodeBase(o, q) {
    if (o.strategy == Strategy::noretrieval) {
      need_ = Need::generate;
    } else {
      retrieve_next(o.ircot_protocol ? remove_wh_words(q.question) : q.question);
    }
  }

  std::string prompt() const override {
    const std::string chain = render_chain(chain_) + (forcing_ ? " " + o_.marker : "");
    return o_.format.render(render_reasoning(templates_, trace_.question, pool_.passages()), chain);
  }

  lm::CompletionOptions generation() const override {
    if (forcing_) return options(o_.step_tokens, {"\n"});
    // IRCoT's protocol stops at the newline and keeps the first sentence
    // (first_sentence never cuts "J. J. Abrams"); the plain one stops at ". ".
    if (o_.strategy == Strategy::ircot) return options(o_.step_tokens, o_.ircot_protocol ? std::vector<std::string>{"\n"} : std::vector<std::string>{". ", "\n"});
    return options(o_.answer_tokens, {"\n"});
  }

  void generated(const lm::Completion& c) override {
    if (c.finish == "error") return fail(c.error);
    std::string text = trim(c.text);
    if (forcing_) return finish("max_steps", extract_answer(o_.marker + " " + text, o_.marker));
    if (o_.ircot_protocol && o_.strategy == Strategy::ircot) return generated_ircot(first_sentence(text));
    // A sentence cut at its ". " stop gets its period back.
    if (o_.strategy == Strategy::ircot && c.finish == "stop" && !text.empty() && text.back() != '.' &&
        text.find(o_.marker) == std::string::npos) {
      text += '.';
    }
    current_step().output = text;
    chain_.push_back(text);
    if (text.find(o_.marker) != std::string::npos) return finish("answer", extract_answer(text, o_.marker));
    const bool more = o_.strategy == Strategy::ircot && static_cast<int>(chain_.size()) < o_.max_steps;
    if (more) {
      retrieve_next(text);
    } else {
      forcing_ = true;  // no answer within the limit: ask for one
      need_ = Need::generate;
    }
  }

 private:
  void generated_ircot(const std::string& sentence) {
    current_step().output = sentence;
    chain_.push_back(sentence);
    std::string answer;
    if (ircot_answer(sentence, answer)) return finish("answer", answer);
    if (sentence.empty() || static_cast<int>(chain_.size()) >= o_.max_steps) {
      forcing_ = true;  // nothing written, or no answer within the limit: ask for one
      need_ = Need::generate;
      return;
    }
    const std::string query = ircot_query(trace_.question, chain_);
    if (query.find_first_not_of(' ') == std::string::npos) {
      // Nothing to search with: the next step reads the same passages.
      trace_.steps.push_back({});
      need_ = Need::generate;
      return;
    }
    retrieve_next(query);
  }

  std::vector<std::string> chain_;
  bool forcing_ = false;
};

// selfask: lines after the selfask prompt. "Follow up: Q" retrieves with Q
// and opens a step; the model then writes "Intermediate answer: A", more
// follow-ups, and "So the final answer is: X".
class SelfAskEpisode : public EpisodeBase {
 public:
  SelfAskEpisode(const StrategyOptions& o, const data::Question& q) : EpisodeBase(o, q) { retrieve_next(q.question); }

  std::string prompt() const override {
    std::string after;
    for (const auto& line : lines_) after += line + "\n";
    if (forcing_) after += o_.selfask_marker;
    else if (!lines_.empty() && starts_with(lines_.back(), kFollowUp)) after += kIntermediate;
    return o_.format.render(fill_prompt(), after);
  }

  lm::CompletionOptions generation() const override { return options(o_.step_tokens, {"\n"}); }

  void generated(const lm::Completion& c) override {
    if (c.finish == "error") return fail(c.error);
    const std::string text = trim(c.text);
    if (forcing_) return finish("max_steps", extract_answer(o_.selfask_marker + " " + text, o_.selfask_marker));
    std::string line = text;
    if (!lines_.empty() && starts_with(lines_.back(), kFollowUp)) line = std::string(kIntermediate) + " " + text;
    if (starts_with(line, kFollowUp) && follow_ups_ >= o_.max_steps) {
      forcing_ = true;  // over the limit: answer instead of following up
      return;
    }
    lines_.push_back(line);
    data::Step& step = current_step();
    step.output += (step.output.empty() ? "" : "\n") + line;
    ++lines_this_step_;
    if (line.find(o_.selfask_marker) != std::string::npos) return finish("answer", extract_answer(line, o_.selfask_marker));
    if (starts_with(line, kFollowUp)) {
      ++follow_ups_;
      lines_this_step_ = 0;
      return retrieve_next(trim(line.substr(std::string(kFollowUp).size())));
    }
    if (lines_this_step_ >= 3) forcing_ = true;  // rambling without following up or answering
  }

 private:
  static constexpr const char* kFollowUp = "Follow up:";
  static constexpr const char* kIntermediate = "Intermediate answer:";

  std::string fill_prompt() const {
    Templates t = templates_;
    t.reasoning = t.selfask;
    return render_reasoning(t, trace_.question, pool_.passages()) + "\n";
  }

  std::vector<std::string> lines_;
  int follow_ups_ = 0, lines_this_step_ = 0;
  bool forcing_ = false;
};

}  // namespace

Strategy parse_strategy(const std::string& name) {
  if (name == "ircot") return Strategy::ircot;
  if (name == "selfask") return Strategy::selfask;
  if (name == "onestep") return Strategy::onestep;
  if (name == "noretrieval") return Strategy::noretrieval;
  throw InputError("unknown strategy '" + name + "'; use ircot, selfask, onestep or noretrieval");
}

std::string strategy_name(Strategy s) {
  switch (s) {
    case Strategy::ircot: return "ircot";
    case Strategy::selfask: return "selfask";
    case Strategy::onestep: return "onestep";
    case Strategy::noretrieval: return "noretrieval";
  }
  return "?";
}

std::unique_ptr<Episode> start_episode(const StrategyOptions& options, const data::Question& question) {
  if (options.k < 1 || options.max_steps < 1 || options.max_passages < 1) {
    throw InputError("k, max steps and max passages must be at least 1");
  }
  if (options.strategy == Strategy::selfask) return std::make_unique<SelfAskEpisode>(options, question);
  return std::make_unique<ChainEpisode>(options, question);
}

}  // namespace steper::reason
