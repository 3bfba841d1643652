// steper/lm.h — the language models that strategies call: many prompts in,
// many completions out. Two backends: a local checkpoint folder run with the
// model core's batched generation, and any OpenAI-compatible HTTP endpoint
// (vLLM, llama.cpp's server, TGI, hosted APIs, `steper serve`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "steper/error.h"
#include "steper/model.h"

namespace steper::lm {

struct CompletionOptions {
  int max_tokens = 128;            // new tokens at most. Default: 128
  double temperature = 0;          // 0: greedy. Default: 0
  double top_p = 1;                // Default: 1
  std::uint64_t seed = 0;          // Default: 0
  std::vector<std::string> stop;   // the text ends before the first. Default: none
  bool operator==(const CompletionOptions& o) const {
    return max_tokens == o.max_tokens && temperature == o.temperature && top_p == o.top_p && seed == o.seed && stop == o.stop;
  }
};

struct Completion {
  std::string text;            // cut before any stop string
  std::string finish;          // "stop" | "eos" | "length" | "error"
  std::string error;           // why, when finish is "error" (this prompt only)
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// Completion i answers prompts[i]. A prompt the model cannot take (longer
// than its context, refused by the endpoint) gets finish "error" and the
// reason; failures of the whole backend (endpoint down after all retries,
// wrong model name) throw.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options) = 0;
  // The model's name, for traces and logs.
  virtual std::string name() const = 0;
  // How many prompts are worth handing over at once: the batch size of a
  // local model, the requests in flight of a remote one.
  virtual int parallelism() const = 0;
};

// ---------------------------------------------------------------- local

struct LocalOptions {
  std::string device = "cpu";     // "cpu", "cuda", "cuda:N". Default: cpu
  std::string dtype = "float32";  // Default: float32
  int batch_size = 32;            // prompts decoded together. Default: 32
  // Keys and values of recent prompts kept for reuse by prompts that start
  // the same way (model::PrefixCache); 0 turns it off. Default: 256 MiB
  int prefix_cache_mb = 256;
};

// A checkpoint folder in Hugging Face layout with its tokenizer. Calls are
// serialised (one batch runs at a time); the batch is the parallelism.
class LocalModel : public LanguageModel {
 public:
  // Throws InputError when the folder is not a model or has no tokenizer.
  LocalModel(const std::string& dir, const LocalOptions& options = {});
  std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options) override;
  // The same, with each prompt's text so far after every token (streaming).
  std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options,
                                   const std::function<void(std::size_t, const std::string&)>& on_text);
  std::string name() const override { return name_; }
  int parallelism() const override { return options_.batch_size; }
  int context() const { return loaded_.config.max_position_embeddings; }
  std::int64_t parameters() const { return loaded_.config.parameter_count(); }
  const text::Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  // Generation counters summed over every call so far (tokens, prefill time).
  model::GenerateStats totals();

 private:
  model::LoadedModel loaded_;
  LocalOptions options_;
  std::string name_;
  std::mutex mutex_;  // guards the model and the prefix cache
  std::unique_ptr<model::PrefixCache> prefix_;
  model::GenerateStats totals_;
};

// ---------------------------------------------------------------- remote

struct RemoteOptions {
  // Base URLs such as http://127.0.0.1:8000/v1; requests are spread over them.
  std::vector<std::string> endpoints;
  // The model name to send; "" asks the first endpoint's /v1/models. Default: ""
  std::string model;
  // Environment variable holding the API key (sent as a Bearer token when
  // set). Default: OPENAI_API_KEY
  std::string api_key_env = "OPENAI_API_KEY";
  bool chat = false;          // /v1/chat/completions instead of /v1/completions. Default: false
  int concurrency = 8;        // requests in flight. Default: 8
  int timeout_ms = 120000;    // per request. Default: 120000
  int retries = 5;            // further tries after a 429, 5xx or connection error. Default: 5
  int backoff_ms = 500;       // first wait; doubles each try, with jitter. Default: 500
};

// Throws InputError for a malformed URL; connects lazily.
std::unique_ptr<LanguageModel> open_remote(const RemoteOptions& options);

// An http(s):// URL (several separated by commas) opens the remote backend,
// anything else a local model folder.
bool is_remote_spec(const std::string& spec);

}  // namespace steper::lm
