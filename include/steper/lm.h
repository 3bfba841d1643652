// steper/lm.h — the language models that strategies call: many prompts in,
// many completions out. Two backends: a local checkpoint folder run with the
// model core's batched generation, and any OpenAI-compatible HTTP endpoint
// (vLLM, llama.cpp's server, TGI, hosted APIs, `steper serve`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "steper/error.h"
#include "steper/text.h"

namespace steper::lm {

struct CompletionOptions {
  int max_tokens = 128;            // new tokens at most. Default: 128
  double temperature = 0;          // 0: greedy. Default: 0
  double top_p = 1;                // Default: 1
  std::uint64_t seed = 0;          // Default: 0
  std::vector<std::string> stop;   // the text ends before the first. Default: none
  // The prompt was rendered through a chat template, which wrote any BOS the
  // model wants: none is added (a remote server is sent add_special_tokens
  // false, vLLM's switch). Default: false
  bool chat_rendered = false;
  bool operator==(const CompletionOptions& o) const {
    return max_tokens == o.max_tokens && temperature == o.temperature && top_p == o.top_p && seed == o.seed && stop == o.stop &&
           chat_rendered == o.chat_rendered;
  }
};

struct Completion {
  std::string text;            // cut before any stop string
  std::string finish;          // "stop" | "eos" | "length" | "error"
  std::string error;           // why, when finish is "error" (this prompt only)
  int prompt_tokens = 0;
  int completion_tokens = 0;
  // A local model's token ids: the prompt's as run (BOS included) and the
  // completion's, up to and including the one that ended it.
  std::vector<int> prompt_ids, ids;
};

// A token's log-probability given the tokens before it, and the most likely
// tokens at its place (most likely first).
struct TokenLogprob {
  int id = 0;
  double logprob = 0;
  std::vector<std::pair<int, double>> top;
};

// How one endpoint of a remote backend is doing, for progress lines.
struct EndpointStatus {
  std::string url;
  std::uint64_t ok = 0, errors = 0;  // answered requests, failed tries
  bool up = true;                    // false while it waits out a backoff
  double per_second = 0;             // answered requests per second so far
};

// Streaming: called with a prompt's index and its completion's text so far.
using OnText = std::function<void(std::size_t prompt, const std::string& text_so_far)>;

// Completion i answers prompts[i]. A prompt the model cannot take (longer
// than its context, refused by the endpoint) gets finish "error" and the
// reason; failures of the whole backend (endpoint down after all retries,
// wrong model name) throw.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options) = 0;
  // The same, calling on_text as each completion grows. A backend that cannot
  // stream calls it once per prompt with the whole text (this default).
  virtual std::vector<Completion> complete_streaming(const std::vector<std::string>& prompts, const CompletionOptions& options,
                                                     const OnText& on_text);
  // The model's name, for traces and logs.
  virtual std::string name() const = 0;
  // How many prompts are worth handing over at once: the batch size of a
  // local model, the requests in flight of a remote one.
  virtual int parallelism() const = 0;
  // A remote backend's endpoints and their health; empty for a local model.
  virtual std::vector<EndpointStatus> endpoints() const { return {}; }
};

// ---------------------------------------------------------------- local

struct LocalOptions {
  std::string device = "cpu";     // "cpu", "cuda", "cuda:N". Default: cpu
  std::string dtype = "float32";  // Default: float32
  int batch_size = 32;            // prompts decoded together. Default: 32
  // Keys and values of recent prompts kept for reuse by prompts that start
  // the same way (model::PrefixCache); 0 turns it off. Default: 256 MiB
  int prefix_cache_mb = 256;
  // A Jinja file or tokenizer_config.json to use as the chat template
  // instead of the folder's own. Default: the folder's, if it has one
  std::string chat_template;
};

// Counters summed over every call of a local model so far.
struct GenerationTotals {
  std::int64_t prompt_tokens = 0, new_tokens = 0;
  std::int64_t reused_tokens = 0;  // prompt tokens whose keys and values came from the prefix cache
  std::int64_t decode_steps = 0;   // forward passes of one new token per row
  double seconds = 0, prefill_seconds = 0;  // all of it, and the prompts' forward passes within it
};

// A checkpoint folder in Hugging Face layout with its tokenizer, run in this
// process. Calls are serialised (one batch runs at a time); the batch is the
// parallelism; complete_streaming streams token by token.
class LocalModel : public LanguageModel {
 public:
  virtual int context() const = 0;                  // max_position_embeddings
  virtual std::int64_t parameters() const = 0;
  virtual const text::Tokenizer& tokenizer() const = 0;
  // The model's chat template (LocalOptions::chat_template, else the
  // folder's); null when it has none.
  virtual std::shared_ptr<const text::ChatTemplate> chat_template() const = 0;
  virtual GenerationTotals totals() = 0;
  // Prompts given as token ids, run as they are (no BOS is added): how vLLM
  // reads a prompt of ids. A prompt with an id outside the model's
  // vocabulary, or too long for its context, gets finish "error".
  virtual std::vector<Completion> complete_tokens(const std::vector<std::vector<int>>& prompts, const CompletionOptions& options,
                                                  const OnText& on_text) = 0;
  // The ids a text prompt runs as: BOS first when the tokenizer wants one
  // and no chat template wrote it (options.chat_rendered), then the text's.
  std::vector<int> prompt_ids(const std::string& prompt, bool chat_rendered) const;
  // Each token of `ids` after the first, scored given those before it by one
  // forward pass (the model's own distribution, no temperature), with the
  // top_k most likely tokens at its place: element t-1 is about ids[t].
  virtual std::vector<TokenLogprob> score(const std::vector<int>& ids, int top_k) = 0;
};

// Throws InputError when the folder is not a model or has no tokenizer.
std::unique_ptr<LocalModel> open_local(const std::string& dir, const LocalOptions& options = {});

// A warning to show before running a local model on this machine's CPU
// BLAS ("" when there is nothing to say).
std::string local_backend_warning();

// ---------------------------------------------------------------- remote

// Requests go to /v1/completions, which every OpenAI-compatible server has.
// With a chat model, steper renders the chat template itself (the prompt's
// exact text is then known and recorded) and sends the text with
// CompletionOptions::chat_rendered.

struct RemoteOptions {
  // Base URLs such as http://127.0.0.1:8000/v1; requests are spread over them.
  std::vector<std::string> endpoints;
  // The model name to send; "" asks the first endpoint's /v1/models. Default: ""
  std::string model;
  // Environment variable holding the API key (sent as a Bearer token when
  // set). Default: OPENAI_API_KEY
  std::string api_key_env = "OPENAI_API_KEY";
  int concurrency = 8;        // requests in flight. Default: 8
  int timeout_ms = 120000;    // per request. Default: 120000
  // A prompt fails only after this many further tries with every endpoint
  // down; while one is up, a failed try just moves the prompt to it. Default: 5
  int retries = 5;
  int backoff_ms = 500;       // an endpoint's first rest after a failure; doubles each time, with jitter. Default: 500
  int max_backoff_ms = 30000; // the cap on that rest. Default: 30000
};

// Throws InputError for a malformed URL; connects lazily.
std::unique_ptr<LanguageModel> open_remote(const RemoteOptions& options);

// An http(s):// URL (several separated by commas) opens the remote backend,
// anything else a local model folder.
bool is_remote_spec(const std::string& spec);

}  // namespace steper::lm
