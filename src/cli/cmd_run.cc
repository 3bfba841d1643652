// steper run: a strategy x a model x an index over a questions file -> traces.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/io.h"
#include "steper/reason.h"

namespace steper::cli {
namespace {

struct RunArgs {
  std::string strategy = "ircot", index, questions, out, prompts, protocol = "steper", demos;
  reason::StrategyOptions options;
  retrieve::SearchOptions search;
  int in_flight = 32;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// "  [a:8000 3.1/s | b:8000 down, 4 err]" for a remote backend of several
// endpoints, or one with errors; "" otherwise.
std::string endpoint_health(const lm::LanguageModel& model) {
  const auto endpoints = model.endpoints();
  bool worth = endpoints.size() > 1;
  for (const auto& e : endpoints) worth = worth || e.errors > 0;
  if (!worth) return "";
  std::string out = "  [";
  for (std::size_t k = 0; k < endpoints.size(); ++k) {
    const auto& e = endpoints[k];
    std::string host = e.url.substr(e.url.find("://") + 3);
    host = host.substr(0, host.find('/'));
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s %s%s", k ? " | " : "", host.c_str(),
                  e.up ? (human_count(e.per_second) + "/s").c_str() : "down",
                  e.errors ? (", " + std::to_string(e.errors) + " err").c_str() : "");
    out += buf;
  }
  return out + "]";
}

}  // namespace

std::unique_ptr<lm::LanguageModel> open_language_model(const ModelArgs& a) {
  if (lm::is_remote_spec(a.model)) {
    lm::RemoteOptions r;
    r.endpoints = split_commas(a.model);
    r.model = a.model_name;
    r.api_key_env = a.api_key_env;
    r.concurrency = a.concurrency;
    r.timeout_ms = a.timeout_s * 1000;
    r.retries = a.retries;
    r.max_backoff_ms = static_cast<int>(std::min(3600.0, a.max_backoff_s) * 1000);
    r.backoff_ms = std::min(r.backoff_ms, r.max_backoff_ms);
    return lm::open_remote(r);
  }
  if (std::string w = lm::local_backend_warning(); !w.empty()) warn(w);
  lm::LocalOptions l;
  l.device = a.device;
  l.dtype = a.dtype;
  l.batch_size = a.batch;
  l.prefix_cache_mb = a.prefix_cache_mb;
  l.chat_template = a.chat_template;
  return lm::open_local(a.model, l);
}

reason::PromptFormat prompt_format(const ModelArgs& a, lm::LanguageModel& model) {
  reason::PromptFormat f;
  if (!a.chat) {
    if (!a.chat_template.empty() || !a.system.empty()) throw InputError("--chat-template and --system go with --chat");
    return f;
  }
  f.system = a.system;
  if (auto* local = dynamic_cast<lm::LocalModel*>(&model)) {
    f.chat = local->chat_template();
    if (!f.chat) {
      throw InputError("--chat: the model folder '" + a.model + "' has no chat template (tokenizer_config.json's chat_template or "
                       "chat_template.jinja)\n  hint: give one with --chat-template FILE");
    }
  } else {
    if (a.chat_template.empty()) {
      throw InputError("--chat with a remote model needs its chat template: --chat-template with the model's\n"
                       "tokenizer_config.json (or folder, or a Jinja file); steper renders it and sends the text to /v1/completions");
    }
    f.chat = std::make_shared<text::ChatTemplate>(text::load_chat_template(a.chat_template));
  }
  return f;
}

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--model", a.model,
                  "Model folder (local backend), or an OpenAI-compatible base URL such as http://127.0.0.1:8000/v1\n"
                  "(remote backend; several separated by commas share the requests)")
      ->required();
  cmd->add_option("--model-name", a.model_name, "Remote: the model name to send (default: the first /v1/models lists)");
  cmd->add_flag("--chat", a.chat,
                "Render every prompt through the model's chat template (the layout as the user's message, the\n"
                "chain so far as the assistant's message being continued). Local: the folder's template;\n"
                "remote: give --chat-template, and the rendered text goes to /v1/completions");
  cmd->add_option("--chat-template", a.chat_template,
                  "With --chat: the template to use, a Jinja file, a tokenizer_config.json or a model folder");
  cmd->add_option("--system", a.system, "With --chat: a system message before the user's");
  cmd->add_option("--concurrency", a.concurrency, "Remote: requests in flight per endpoint")->check(positive());
  cmd->add_option("--api-key-env", a.api_key_env, "Remote: environment variable holding the API key");
  cmd->add_option("--timeout", a.timeout_s, "Remote: seconds per request")->check(positive());
  cmd->add_option("--max-retries,--retries", a.retries,
                  "Remote: a request fails (and the run stops, keeping what is written) after this many further\n"
                  "tries with every endpoint down; while one is up, a failed try moves to it at once")
      ->check(non_negative());
  cmd->add_option("--max-backoff", a.max_backoff_s, "Remote: the longest rest, in seconds, of a failing endpoint")
      ->check(positive());
  cmd->add_option("--device", a.device, "Local: cpu, cuda or cuda:N");
  cmd->add_option("--dtype", a.dtype, "Local: float32, bfloat16 or float16");
  cmd->add_option("--prefix-cache-mb", a.prefix_cache_mb,
                  "Local: memory for the keys and values of recent prompts, reused by prompts that start\n"
                  "the same way (each step re-reads the passages of the step before); 0: off")
      ->check(non_negative());
}

void add_strategy_options(CLI::App* cmd, reason::StrategyOptions& o, std::string& prompts) {
  cmd->add_option("--k", o.k, "Passages per retrieval")->check(positive());
  cmd->add_option("--max-steps", o.max_steps, "Reasoning steps at most (ircot, selfask)")->check(positive());
  cmd->add_option("--max-passages", o.max_passages, "Passages kept in the prompt (the first found stay)")->check(positive());
  cmd->add_option("--marker", o.marker, "The text that announces the answer");
  cmd->add_option("--prompts", prompts, "Folder of prompt templates overriding the shipped ones (see prompts/README.md)");
}

void add_run_command(CLI::App& app, const Global& global) {
  auto a = std::make_shared<RunArgs>();
  auto m = std::make_shared<ModelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Answer a questions file with multi-step retrieval-augmented reasoning and write one trace per\n"
      "question (JSONL: every step's query, retrieved ids and output, the prediction, why it stopped).\n"
      "Rerunning with the same --out skips the questions already answered, so Ctrl-C loses nothing.");
  cmd->add_option("--strategy", a->strategy, "ircot (reasoning as query), selfask (decomposed questions), onestep, noretrieval");
  add_model_options(cmd, *m);
  cmd->add_option("--index", a->index, "Index folder, tcp://HOST:PORT, or a comma list (not needed for noretrieval)");
  cmd->add_option("--questions", a->questions, "Questions JSONL")->required();
  cmd->add_option("--out", a->out, "Traces JSONL (appended to; finished ids are skipped)")->required();
  add_strategy_options(cmd, a->options, a->prompts);
  cmd->add_option("--step-tokens", a->options.step_tokens, "New tokens per reasoning step")->check(positive());
  cmd->add_option("--answer-tokens", a->options.answer_tokens, "New tokens for a whole chain (onestep, noretrieval)")->check(positive());
  cmd->add_option("--in-flight", a->in_flight, "Questions answered together (the local batch)")->check(positive());
  cmd->add_option("--temperature", a->options.temperature, "Sampling temperature (0: greedy)")->check(non_negative());
  cmd->add_option("--seed", a->options.seed, "Sampling seed");
  cmd->add_option("--search-threads", a->search.threads, "Threads for each batch of retrievals")->check(positive());
  cmd->add_option("--protocol", a->protocol,
                  "steper: one sentence per step cut at \". \", the answer after --marker. ircot: IRCoT's own (Trivedi\n"
                  "et al. 2023): stop at a newline and keep the first sentence (initials such as \"J. J. Abrams\" stay\n"
                  "whole), the answer by IRCoT's regex '.* answer is:? (.*)\\.?', queries without wh-words and never\n"
                  "a reasoning sentence, passages cut to 350 words")
      ->check(CLI::IsMember({"steper", "ircot"}));
  cmd->add_option("--demos", a->demos,
                  "IRCoT demonstrations file (e.g. IRCoT's gold_with_2_distractors_context_cot_qa_codex.txt): each\n"
                  "question gets those that fit --demo-budget, sampled with a seed fixed per question");
  cmd->add_option("--demo-budget", a->options.demo_budget, "Tokens (estimated, 4 bytes each) the demonstrations may take")
      ->check(positive());
  cmd->callback([a, m, &global] {
    io::OutputLock lock(a->out);
    reason::StrategyOptions o = a->options;
    o.strategy = reason::parse_strategy(a->strategy);
    if (!a->prompts.empty()) o.templates = reason::load_templates(a->prompts);
    if (a->protocol == "ircot") {
      o.ircot_protocol = true;
      o.templates.max_passage_words = 350;
    }
    if (!a->demos.empty()) o.demo_pool = reason::read_demonstrations(a->demos);
    std::unique_ptr<retrieve::Retriever> retriever;
    if (o.strategy != reason::Strategy::noretrieval) {
      if (a->index.empty()) throw InputError("--index is required for strategy " + a->strategy);
      retriever = open_index(a->index, a->search);
    }
    m->batch = a->in_flight;
    auto model = open_language_model(*m);
    o.format = prompt_format(*m, *model);
    if (lm::is_remote_spec(m->model)) a->in_flight = std::max(a->in_flight, model->parallelism());
    Progress progress("run", "questions", !global.quiet);
    StopOnInterrupt interrupt;
    reason::RunOptions ro;
    ro.in_flight = a->in_flight;
    ro.on_start = [&](const reason::RunProgress& p) {
      if (p.skipped > 0 && !global.quiet) {
        std::fprintf(stderr, "run: resuming: %llu of %llu questions already done in %s\n", static_cast<unsigned long long>(p.skipped),
                     static_cast<unsigned long long>(p.total), a->out.c_str());
      }
    };
    ro.on_progress = [&](const reason::RunProgress& p) {
      char extra[96];
      std::snprintf(extra, sizeof extra, "EM %.1f  %.2f q/s", 100 * p.em, p.questions_per_second);
      progress.update(p.done, static_cast<double>(p.done) / static_cast<double>(std::max<std::uint64_t>(1, p.total)),
                      extra + endpoint_health(*model));
      return !StopOnInterrupt::stop_requested();
    };
    reason::RunStats s = reason::run(o, *model, retriever.get(), a->questions, a->out, ro);
    if (!s.complete) {
      progress.abandon();
      throw Interrupted("stopped with " + std::to_string(s.progress.done) + " of " + std::to_string(s.progress.total) +
                        " questions in " + a->out + "; rerun the same command to finish");
    }
    progress.finish(s.progress.done);
    std::printf("%s: %llu traces (%llu answered, %llu hit the step limit, %llu errors; %llu were already there); EM %.1f, %.2f questions/s\n",
                a->out.c_str(), static_cast<unsigned long long>(s.progress.done), static_cast<unsigned long long>(s.answered),
                static_cast<unsigned long long>(s.max_steps), static_cast<unsigned long long>(s.errors),
                static_cast<unsigned long long>(s.progress.skipped), 100 * s.progress.em, s.progress.questions_per_second);
    if (s.errors > 0) {
      warn(std::to_string(s.errors) + " questions ended in an error (each trace's \"error\" says why); the first: " + s.first_error);
    }
  });
}

}  // namespace steper::cli
