// The scored tokens of a completion in OpenAI's two shapes: the legacy
// completions' {tokens, token_logprobs, top_logprobs, text_offset} (as vLLM
// answers it, lm-evaluation-harness's log-likelihood reads it) and chat's
// {content: [{token, logprob, bytes, top_logprobs}]}.
#pragma once

#include <nlohmann/json.hpp>

#include "steper/lm.h"
#include "steper/text.h"

namespace steper::serve {

// `first_prompt_token`: the echoed prompt's first id, which has no score and
// comes first with nulls (-1: no echo).
nlohmann::json completion_logprobs(const std::vector<lm::TokenLogprob>& scored, const text::Tokenizer& tok, int first_prompt_token);
nlohmann::json chat_logprobs(const std::vector<lm::TokenLogprob>& scored, const text::Tokenizer& tok);

}  // namespace steper::serve
