// Reading OpenAI-style requests (/v1/completions, /v1/chat/completions) the
// way vLLM reads them, into token ids and generation settings. Anything the
// server cannot honour is refused with a 400 naming the field, never ignored.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "steper/lm.h"

namespace steper::serve {

// A request the client got wrong: HTTP status, message and the parameter.
struct BadRequest {
  int status;
  std::string message, param, type = "invalid_request_error";
};

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
nlohmann::json error_body(const BadRequest& e);

struct RequestLimits {
  std::vector<std::string> model_names;  // names a client may send as "model"; the first is answered
  int max_tokens_limit = 1024;
  int max_prompts = 64;                  // choices per request (prompts times n)
  std::size_t max_prompt_bytes = 0;      // longer text is refused before tokenizing
  int max_logprobs = 20;                 // vLLM's default max_logprobs
};

struct CompletionRequest {
  bool chat = false;
  bool stream = false, include_usage = false;
  int n = 1;                                // choices per prompt
  std::vector<std::vector<int>> prompts;    // as the model runs them
  std::vector<std::string> prompt_texts;    // the prompts as text (decoded when given as ids), for echo
  lm::CompletionOptions options;
  bool any_seed = false;                    // no seed given: options.seed was drawn at random
  int logprobs = -1;                        // alternatives per token; -1: no logprobs
  bool echo = false;                        // completions: the prompt comes back, scored when logprobs
};

// Throws BadRequest.
CompletionRequest parse_completion_request(const std::string& raw, bool chat, const RequestLimits& limits,
                                           const lm::LocalModel& model);

// vLLM's POST /tokenize: {"prompt", "add_special_tokens"} or a chat
// request's "messages" (rendered as /v1/chat/completions renders them), as
// the ids the model would run. POST /detokenize: {"tokens"}, checked
// against the vocabulary. Both throw BadRequest.
std::vector<int> parse_tokenize_request(const std::string& raw, const RequestLimits& limits, const lm::LocalModel& model);
std::vector<int> parse_detokenize_request(const std::string& raw, const RequestLimits& limits, const lm::LocalModel& model);

}  // namespace steper::serve
