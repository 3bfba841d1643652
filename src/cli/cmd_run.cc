// steper run: a strategy x a model x an index over a questions file -> traces.
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/reason.h"

namespace steper::cli {
namespace {

struct RunArgs {
  std::string strategy = "ircot", index, questions, out, prompts;
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

}  // namespace

std::unique_ptr<lm::LanguageModel> open_language_model(const ModelArgs& a) {
  if (lm::is_remote_spec(a.model)) {
    lm::RemoteOptions r;
    r.endpoints = split_commas(a.model);
    r.model = a.model_name;
    r.api_key_env = a.api_key_env;
    r.chat = a.chat;
    r.concurrency = a.concurrency;
    r.timeout_ms = a.timeout_s * 1000;
    r.retries = a.retries;
    return lm::open_remote(r);
  }
  if (std::string w = model::blas_warning(); !w.empty()) warn(w);
  lm::LocalOptions l;
  l.device = a.device;
  l.dtype = a.dtype;
  l.batch_size = a.batch;
  l.prefix_cache_mb = a.prefix_cache_mb;
  return std::make_unique<lm::LocalModel>(a.model, l);
}

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--model", a.model,
                  "Model folder (local backend), or an OpenAI-compatible base URL such as http://127.0.0.1:8000/v1\n"
                  "(remote backend; several separated by commas share the requests)")
      ->required();
  cmd->add_option("--model-name", a.model_name, "Remote: the model name to send (default: the first /v1/models lists)");
  cmd->add_flag("--chat", a.chat, "Remote: use /v1/chat/completions (the prompt as one user message)");
  cmd->add_option("--concurrency", a.concurrency, "Remote: requests in flight per endpoint")->check(CLI::PositiveNumber);
  cmd->add_option("--api-key-env", a.api_key_env, "Remote: environment variable holding the API key");
  cmd->add_option("--timeout", a.timeout_s, "Remote: seconds per request")->check(CLI::PositiveNumber);
  cmd->add_option("--retries", a.retries, "Remote: further tries after 429, 5xx or connection errors")->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", a.device, "Local: cpu, cuda or cuda:N");
  cmd->add_option("--dtype", a.dtype, "Local: float32, bfloat16 or float16");
  cmd->add_option("--prefix-cache-mb", a.prefix_cache_mb,
                  "Local: memory for the keys and values of recent prompts, reused by prompts that start\n"
                  "the same way (each step re-reads the passages of the step before); 0: off")
      ->check(CLI::NonNegativeNumber);
}

void add_strategy_options(CLI::App* cmd, reason::StrategyOptions& o, std::string& prompts) {
  cmd->add_option("--k", o.k, "Passages per retrieval")->check(CLI::PositiveNumber);
  cmd->add_option("--max-steps", o.max_steps, "Reasoning steps at most (ircot, selfask)")->check(CLI::PositiveNumber);
  cmd->add_option("--max-passages", o.max_passages, "Passages kept in the prompt (the first found stay)")->check(CLI::PositiveNumber);
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
  cmd->add_option("--step-tokens", a->options.step_tokens, "New tokens per reasoning step")->check(CLI::PositiveNumber);
  cmd->add_option("--answer-tokens", a->options.answer_tokens, "New tokens for a whole chain (onestep, noretrieval)")->check(CLI::PositiveNumber);
  cmd->add_option("--in-flight", a->in_flight, "Questions answered together (the local batch)")->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", a->options.temperature, "Sampling temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->options.seed, "Sampling seed");
  cmd->add_option("--search-threads", a->search.threads, "Threads for each batch of retrievals")->check(CLI::PositiveNumber);
  cmd->callback([a, m, &global] {
    reason::StrategyOptions o = a->options;
    o.strategy = reason::parse_strategy(a->strategy);
    if (!a->prompts.empty()) o.templates = reason::load_templates(a->prompts);
    std::unique_ptr<retrieve::Retriever> retriever;
    if (o.strategy != reason::Strategy::noretrieval) {
      if (a->index.empty()) throw InputError("--index is required for strategy " + a->strategy);
      retriever = open_index(a->index, a->search);
    }
    m->batch = a->in_flight;
    auto model = open_language_model(*m);
    if (lm::is_remote_spec(m->model)) a->in_flight = std::max(a->in_flight, model->parallelism());
    Progress progress("run", "questions", !global.quiet);
    StopOnInterrupt interrupt;
    reason::RunOptions ro;
    ro.in_flight = a->in_flight;
    ro.on_progress = [&](const reason::RunProgress& p) {
      char extra[96];
      std::snprintf(extra, sizeof extra, "EM %.1f  %.2f q/s", 100 * p.em, p.questions_per_second);
      progress.update(p.done, static_cast<double>(p.done) / static_cast<double>(std::max<std::uint64_t>(1, p.total)), extra);
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
    if (s.errors > 0) warn(std::to_string(s.errors) + " questions ended in an error (prompt longer than the context, or refused by the endpoint)");
  });
}

}  // namespace steper::cli
