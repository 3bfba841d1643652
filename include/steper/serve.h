// steper/serve.h — an OpenAI-compatible HTTP server over a local model:
//   GET  /v1/models, /v1/models/{id}   the one model served
//   POST /v1/completions       {"prompt": str | [str] | [id] | [[id]], "max_tokens", "temperature",
//                               "top_p", "seed", "stop", "n", "stream", "stream_options",
//                               "logprobs", "echo"}
//   POST /v1/chat/completions  {"messages": [{"role", "content": str | [text parts]}], ...the same
//                               but "logprobs": bool and "top_logprobs", and vLLM's
//                               "add_generation_prompt", "continue_final_message", "chat_template_kwargs"}
//   POST /tokenize, /detokenize; GET /tokenizer_info   vLLM's tokenizer endpoints
//   GET  /health, /metrics (Prometheus)
// Sampling settings steper does not implement (penalties, logit_bias, ...)
// are refused with a 400 naming the field unless they are their no-op value.
// A request without a seed samples with a fresh one. Every response carries
// x-request-id (the client's, or one made up) and each request gets one line
// in the access log.
// Concurrent requests with the same generation settings are decoded as one
// batch. Bad requests get a 4xx with an OpenAI-style JSON error body
// {"error": {"message", "type", "param", "code"}} and the server goes on.
//
// A chat request is rendered through the model's chat template (its
// folder's, or the one given to LocalModel) as vLLM renders it, with no BOS
// added beyond what the template writes. A model without one (steper's own
// small models) joins the message contents with blank lines, so one user
// message is exactly its prompt.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "steper/lm.h"

namespace steper::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // Default: 127.0.0.1 (loopback only)
  int port = 8000;                 // 0 picks a free port. Default: 8000
  std::string model_name;          // the name clients send; "" = the folder's name
  std::string model_path;          // the --model path as given, also accepted as the name (vLLM's default name)
  int max_batch = 32;              // prompts decoded together. Default: 32
  int max_tokens_limit = 1024;     // largest max_tokens accepted. Default: 1024
  int max_prompts = 64;            // prompts per request. Default: 64
  std::size_t max_body_bytes = 4u << 20;  // larger bodies get 413. Default: 4 MiB
  int max_connections = 1024;      // connections served at once, a thread each, started as they come. Default: 1024
  bool reuse_port = false;         // let other processes listen on the port too (SO_REUSEPORT). Default: false
  std::FILE* access_log = stderr;  // one line per request; null: none. Default: stderr
};

struct ServerStats {
  std::atomic<std::uint64_t> requests{0}, errors{0}, batches{0}, batched_prompts{0};
};

class Server {
 public:
  Server(lm::LocalModel& model, ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Binds the socket; returns the port (the chosen one when options.port is 0).
  // Throws RuntimeError when the address is taken.
  int bind();
  // Serves until stop(); call bind() first.
  void run();
  void stop();
  const ServerStats& stats() const;
  const std::string& model_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace steper::serve
