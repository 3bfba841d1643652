#include "openai_response.h"

namespace steper::serve {
namespace {

using json = nlohmann::json;

// A token as text. A piece that is part of a UTF-8 character decodes to
// U+FFFD, as in vLLM; its bytes (chat) say what it is.
std::string piece(const text::Tokenizer& tok, int id) { return tok.decode({id}); }

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

json completion_logprobs(const std::vector<lm::TokenLogprob>& scored, const text::Tokenizer& tok, int first_prompt_token) {
  json tokens = json::array(), logprobs = json::array(), top = json::array(), offsets = json::array();
  std::size_t offset = 0;
  if (first_prompt_token >= 0) {
    const std::string s = piece(tok, first_prompt_token);
    tokens.push_back(s);
    logprobs.push_back(nullptr);
    top.push_back(nullptr);
    offsets.push_back(offset);
    offset += s.size();
  }
  for (const auto& t : scored) {
    const std::string s = piece(tok, t.id);
    tokens.push_back(s);
    logprobs.push_back(t.logprob);
    // The token itself and its alternatives, as vLLM lists them.
    json alternatives = json::object();
    alternatives[s] = t.logprob;
    for (const auto& [id, lp] : t.top) alternatives[piece(tok, id)] = lp;
    top.push_back(alternatives);
    offsets.push_back(offset);
    offset += s.size();
  }
  return json{{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json chat_logprobs(const std::vector<lm::TokenLogprob>& scored, const text::Tokenizer& tok) {
  json content = json::array();
  for (const auto& t : scored) {
    const std::string s = piece(tok, t.id);
    json alternatives = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string a = piece(tok, id);
      alternatives.push_back({{"token", a}, {"logprob", lp}, {"bytes", bytes_of(a)}});
    }
    content.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", alternatives}});
  }
  return json{{"content", content}};
}

}  // namespace steper::serve
