// steper/reason.h — multi-step retrieval-augmented reasoning: strategies
// that alternate retrieval and generation, their prompt templates, and the
// runner that answers a questions file into a traces file.
//
// Strategies:
//   ircot        reasoning as query: retrieve K for the question, write one
//                reasoning sentence, retrieve K more with it as the query,
//                until the answer marker or the step limit (IRCoT);
//   selfask      decomposed questions: the model writes a follow-up question
//                (the query), then its intermediate answer, then the final
//                answer (Self-Ask);
//   onestep      retrieve K once, write the whole chain and answer;
//   noretrieval  chain of thought from the question alone.
// When the step limit is reached without an answer, the model is asked for
// one (the marker is appended to its chain); the trace says "max_steps".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "steper/data.h"
#include "steper/lm.h"
#include "steper/retrieve.h"

namespace steper::reason {

// ---------------------------------------------------------------- prompts

// The prompt layouts, as text with {placeholders}. Defaults are the files in
// the repository's prompts/ folder, built into the program; a folder given
// with load_templates overrides any of them file by file.
//   passage.txt    one retrieved passage: {title} {text}
//   reasoning.txt  ircot, onestep, noretrieval and every training prompt:
//                  {demos} {passages} {question}; the chain follows the prompt
//   selfask.txt    {demos} {passages} {question}; follow-ups follow the prompt
//   demos.txt      few-shot demonstrations put at {demos} (default: none)
struct Templates {
  std::string passage;
  std::string reasoning;
  std::string selfask;
  std::string demos;
  // Each passage's text cut to its first N space-separated words (IRCoT:
  // 350); 0 keeps it whole. Default: 0
  int max_passage_words = 0;
  // The folder load_templates read, absolute; "" for the shipped defaults.
  std::string folder;
  // A hash of everything above but the folder: two runs with the same
  // fingerprint render the same prompts.
  std::string fingerprint() const;
};

Templates default_templates();
// Defaults overridden by the files DIR holds. Throws InputError naming the
// file when one uses a placeholder its layout does not have.
Templates load_templates(const std::string& dir);

// The retrieved passages as the prompt shows them.
std::string render_passages(const Templates& t, const std::vector<retrieve::Hit>& passages);
// The reasoning prompt: passages and question, up to where the chain starts.
std::string render_reasoning(const Templates& t, const std::string& question, const std::vector<retrieve::Hit>& passages);
// A chain of reasoning sentences as it follows the prompt: " s1 s2 ...".
std::string render_chain(const std::vector<std::string>& steps);

// The passages a prompt shows: the first `max_passages` distinct ones
// retrieved, in the order they came. The strategies keep them this way, and
// the step-wise samples gather them again from a trace this way.
class PassagePool {
 public:
  explicit PassagePool(int max_passages) : max_(max_passages) {}
  void add(std::vector<retrieve::Hit> hits);
  const std::vector<retrieve::Hit>& passages() const { return passages_; }
  // Whether add() would keep a passage with this id.
  bool wants(const std::string& id) const;

 private:
  int max_;
  std::vector<retrieve::Hit> passages_;
  std::set<std::string> seen_;
};

// How a prompt reaches the model: as plain text (the layout, then the chain
// after it), or through a chat template, exactly as Hugging Face's
// apply_chat_template renders it: the layout is the user's message, and the
// chain so far is the assistant's message being continued
// (continue_final_message), or a new assistant turn while it is empty
// (add_generation_prompt). Training samples are cut through the same
// format, so the student trains on the strings it is asked.
struct PromptFormat {
  std::shared_ptr<const text::ChatTemplate> chat;  // null: plain text. Default: plain
  std::string system;                              // chat only: a system message first, when set. Default: none
  bool is_chat() const { return chat != nullptr; }
  // The prompt for `context` (the layout up to where the chain starts) and
  // `chain` (text after it, e.g. render_chain's " s1 s2"; "" for none).
  std::string render(const std::string& context, const std::string& chain) const;
  // What a chain looks like after render(context, ""): plain text as it is;
  // in a chat, the assistant's message, without the blanks at its start.
  // render(c, "") + target(x) == render(c, x) for plain text, and for a
  // chat template that writes the assistant's message right after its header.
  std::string target(const std::string& chain) const;
  // "plain", or "chat:" and a hash of the template's source and system message.
  std::string describe() const;
};

// The answer after the marker: up to the line's end, without the final
// period and surrounding blanks; "" when the marker is absent.
std::string extract_answer(const std::string& text, const std::string& marker);

// ---------------------------------------------------------------- IRCoT

// The pieces of IRCoT's protocol (ircot.cc says where each comes from).
// Demonstrations of IRCoT's prompt files: a '# METADATA: {...}' line, then
// the demonstration. Throws InputError naming the file.
std::vector<std::string> read_demonstrations(const std::string& path);
// Demonstrations for one question: the pool shuffled with a seed fixed per
// question id, kept while they fit `budget_tokens` (estimate_tokens; <= 0:
// all), joined by two blank lines as IRCoT joins them.
std::string choose_demonstrations(const std::vector<std::string>& pool, const std::string& question_id, int budget_tokens,
                                  std::uint64_t seed);
// A tokenizer-free estimate: a token per 4 bytes of English text.
std::size_t estimate_tokens(const std::string& text);
// The first `max_words` space-separated words (IRCoT's para_to_text).
std::string cut_words(const std::string& text, int max_words);
// The first sentence, not cut at initials ("J. J. Abrams", "Henry J.
// Kaiser"), abbreviations or decimals.
std::string first_sentence(const std::string& text);
// "Thus ...", "So ...", "Therefore ...", arithmetic: no query is made of it.
bool is_reasoning_sentence(const std::string& sentence);
// IRCoT's query cleaning: the words who/what/when/where/why/which/how/does/is dropped.
std::string remove_wh_words(const std::string& text);
// The query after `sentences`: the last that is not a reasoning sentence,
// else the question; wh-words dropped.
std::string ircot_query(const std::string& question, const std::vector<std::string>& sentences);
// IRCoT's answer regex `.* answer is:? (.*)\.?` on a sentence, the final
// period dropped; false when it does not match.
bool ircot_answer(const std::string& sentence, std::string& answer);

// ---------------------------------------------------------------- strategies

enum class Strategy { ircot, selfask, onestep, noretrieval };
// "ircot" | "selfask" | "onestep" | "noretrieval"; throws InputError listing them.
Strategy parse_strategy(const std::string& name);
std::string strategy_name(Strategy s);

struct StrategyOptions {
  Strategy strategy = Strategy::ircot;
  int k = 4;                 // passages per retrieval. Default: 4 (StepER)
  int max_steps = 5;         // reasoning steps at most. Default: 5 (StepER)
  int max_passages = 15;     // passages kept in the prompt; the first found stay. Default: 15 (IRCoT)
  int step_tokens = 48;      // new tokens per reasoning step. Default: 48
  int answer_tokens = 128;   // new tokens for onestep / noretrieval chains. Default: 128
  std::string marker = data::kAnswerMarker;          // ircot, onestep, noretrieval
  std::string selfask_marker = "So the final answer is:";
  double temperature = 0;    // Default: 0 (greedy)
  std::uint64_t seed = 0;
  Templates templates = default_templates();
  PromptFormat format;       // plain text, or a chat template. Default: plain
  // IRCoT's protocol for the ircot strategy (see "IRCoT" above): generation
  // stops at a newline and keeps the first sentence, the answer is read with
  // IRCoT's regex, queries are cleaned as IRCoT cleans them. Default: false
  bool ircot_protocol = false;
  // Demonstrations to sample for each question's {demos}, replacing
  // templates.demos, within demo_budget tokens (estimated). Default: none
  std::vector<std::string> demo_pool;
  int demo_budget = 6000;
};

// One question being answered: a small state machine the runner drives, so
// that many questions share each retrieval batch and generation batch.
class Episode {
 public:
  virtual ~Episode() = default;
  enum class Need { retrieve, generate, done };
  virtual Need need() const = 0;
  virtual std::string query() const = 0;                     // when need() is retrieve
  virtual void retrieved(std::vector<retrieve::Hit> hits) = 0;
  virtual std::string prompt() const = 0;                    // when need() is generate
  virtual lm::CompletionOptions generation() const = 0;
  virtual void generated(const lm::Completion& completion) = 0;
  virtual data::Trace trace() const = 0;                     // when need() is done
};

std::unique_ptr<Episode> start_episode(const StrategyOptions& options, const data::Question& question);

// ---------------------------------------------------------------- run records

// What produced a trace, recorded in each one (its "run" field) by run():
// `steper stepwise` cuts the student's prompts with the same settings, read
// from here, and a rerun appending to a traces file must match them.
struct RunSettings {
  std::string strategy;
  int k = 0, max_steps = 0, max_passages = 0;
  std::string marker;
  bool ircot_protocol = false;
  int max_passage_words = 0;
  std::string prompts;    // Templates::folder: "" for the shipped templates
  std::string templates;  // Templates::fingerprint()
  std::string format;     // PromptFormat::describe() of the prompts sent
  std::string index;      // the index searched (Retriever::spec); "" without retrieval
};
RunSettings run_settings(const StrategyOptions& options, const retrieve::Retriever* retriever);
data::json to_json(const RunSettings& settings);
// Throws FieldError naming the field ("run.k").
RunSettings parse_run_settings(const data::json& run);
// The first field that differs, as "max_passages 8 against 15"; "" when none.
std::string first_difference(const RunSettings& a, const RunSettings& b);

// Answers `questions` together: retrievals in one batch, generations in one
// batch per round. `retriever` may be null for noretrieval.
std::vector<data::Trace> answer(const StrategyOptions& options, lm::LanguageModel& model, retrieve::Retriever* retriever,
                                const std::vector<data::Question>& questions);

// ---------------------------------------------------------------- runner

struct RunProgress {
  std::uint64_t done = 0, total = 0;  // questions written (this run + earlier), of
  std::uint64_t skipped = 0;          // already in the output when the run began
  double em = 0;                      // running exact match of this run's traces
  double questions_per_second = 0;
  double seconds = 0;
};

struct RunOptions {
  int in_flight = 32;  // questions answered together. Default: 32
  // Called after every round; returning false stops after writing what is done.
  std::function<bool(const RunProgress&)> on_progress;
  // Called once before the first question, when the questions are counted
  // (`skipped`: those already in the output, which a resumed run leaves).
  std::function<void(const RunProgress&)> on_start;
};

struct RunStats {
  RunProgress progress;
  std::uint64_t answered = 0, max_steps = 0, errors = 0;  // this run's traces by stop
  std::string first_error;  // the first error trace's message, for the summary
  bool complete = false;  // every question has its trace
};

// Answers every question of `questions_path` not yet in `out_path`,
// appending one trace per line as each finishes; a rerun after a crash or a
// stop skips the ids the file already has (a torn last line is dropped).
RunStats run(const StrategyOptions& options, lm::LanguageModel& model, retrieve::Retriever* retriever,
             const std::string& questions_path, const std::string& out_path, const RunOptions& run_options = {});

// ---------------------------------------------------------------- replay

// A gold (or any) trace replayed through the retriever: each step's query is
// searched for K passages, and the step's own passages are kept among them
// (replacing the lowest-ranked), so its prompts look like those at inference
// while its reasoning is the given one. Used to train a teacher on gold chains.
data::Trace replay(const data::Trace& trace, retrieve::Retriever& retriever, int k);

}  // namespace steper::reason
