#include "openai_request.h"

#include <mutex>
#include <random>

namespace steper::serve {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string quoted(const std::string& field) { return "'" + field + "'"; }

bool present(const json& body, const char* field) { return body.contains(field) && !body[field].is_null(); }

double number_in(const json& body, const char* field, double fallback, double lo, double hi, bool open_lo = false) {
  if (!present(body, field)) return fallback;
  if (!body[field].is_number()) throw BadRequest{400, quoted(field) + " must be a number", field};
  const double v = body[field].get<double>();
  if (v > hi || v < lo || (open_lo && v == lo)) {
    throw BadRequest{400, quoted(field) + " is " + body[field].dump() + "; it must be in " + (open_lo ? "(" : "[") + json(lo).dump() +
                              ", " + json(hi).dump() + "]", field};
  }
  return v;
}

int integer_in(const json& body, const char* field, int fallback, int lo, int hi) {
  if (!present(body, field)) return fallback;
  if (!body[field].is_number_integer()) throw BadRequest{400, quoted(field) + " must be an integer", field};
  return static_cast<int>(number_in(body, field, fallback, lo, hi));
}

bool flag(const json& body, const char* field, bool fallback) {
  if (!present(body, field)) return fallback;
  if (!body[field].is_boolean()) throw BadRequest{400, quoted(field) + " must be true or false", field};
  return body[field].get<bool>();
}

std::vector<std::string> strings_of(const json& j, const char* field, std::size_t max) {
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) throw BadRequest{400, quoted(field) + " must be a string or an array of strings", field};
  std::vector<std::string> out;
  for (const auto& x : j) {
    if (!x.is_string()) throw BadRequest{400, quoted(field) + " must hold strings only", field};
    out.push_back(x.get<std::string>());
  }
  if (out.size() > max) {
    throw BadRequest{400, quoted(field) + " holds " + std::to_string(out.size()) + " entries; at most " + std::to_string(max), field};
  }
  return out;
}

// A JSON list of token ids, each checked against the vocabulary; `at`
// names the list in messages, `param` is the field it belongs to.
std::vector<int> token_ids(const json& list, const std::string& at, int vocab, const char* param) {
  std::vector<int> ids;
  for (std::size_t j = 0; j < list.size(); ++j) {
    const json& t = list[j];
    if (!t.is_number_integer() || t.get<std::int64_t>() < 0 || t.get<std::int64_t>() >= vocab) {
      throw BadRequest{400, at + "[" + std::to_string(j) + "] is " + t.dump(0).substr(0, 40) + "; token ids are integers from 0 to " +
                                std::to_string(vocab - 1), param};
    }
    ids.push_back(t.get<int>());
  }
  return ids;
}

// The "model" a request names, checked against the served names (404 when
// it is none of them); absent or null is fine.
void check_model_name(const json& body, const RequestLimits& limits) {
  if (!present(body, "model")) return;
  if (!body["model"].is_string()) throw BadRequest{400, "'model' must be a string", "model"};
  const std::string asked = body["model"].get<std::string>();
  for (const auto& n : limits.model_names) {
    if (asked == n) return;
  }
  throw BadRequest{404, "the model '" + asked + "' does not exist; this server serves '" + limits.model_names.at(0) + "'", "model",
                   "not_found_error"};
}

// The request body, which must be a JSON object naming this server's model (or none).
json read_body_object(const std::string& raw, const RequestLimits& limits) {
  json body = json::parse(raw, nullptr, false);
  if (body.is_discarded()) throw BadRequest{400, "the body is not valid JSON", ""};
  if (!body.is_object()) throw BadRequest{400, "the body must be a JSON object", ""};
  check_model_name(body, limits);
  return body;
}

// Sampling settings steper does not implement: refused unless they are
// their no-op value, so that a client never gets silently different text.
void refuse_unsupported(const json& body) {
  auto refuse = [](const std::string& field, const std::string& what) {
    throw BadRequest{400, quoted(field) + " is not supported by steper serve" + what, field};
  };
  for (const char* f : {"presence_penalty", "frequency_penalty", "min_p"}) {
    if (present(body, f) && !(body[f].is_number() && body[f].get<double>() == 0)) refuse(f, "; send 0 or leave it out");
  }
  if (present(body, "repetition_penalty") && !(body["repetition_penalty"].is_number() && body["repetition_penalty"].get<double>() == 1)) {
    refuse("repetition_penalty", "; send 1 or leave it out");
  }
  if (present(body, "top_k") && !(body["top_k"].is_number_integer() && (body["top_k"].get<int>() == -1 || body["top_k"].get<int>() == 0))) {
    refuse("top_k", "; send -1 or leave it out");
  }
  if (present(body, "min_tokens") && !(body["min_tokens"].is_number_integer() && body["min_tokens"].get<int>() == 0)) {
    refuse("min_tokens", "; send 0 or leave it out");
  }
  if (present(body, "logit_bias") && !(body["logit_bias"].is_object() && body["logit_bias"].empty())) {
    refuse("logit_bias", "; leave it out");
  }
  if (present(body, "suffix") && !(body["suffix"].is_string() && body["suffix"].get<std::string>().empty())) {
    refuse("suffix", " (no model steper serves fills in the middle)");
  }
  if (present(body, "response_format")) {
    const json& f = body["response_format"];
    if (!(f.is_object() && f.contains("type") && f["type"] == "text")) refuse("response_format", "; only {\"type\": \"text\"}");
  }
  for (const char* f : {"guided_json", "guided_regex", "guided_choice", "guided_grammar"}) {
    if (present(body, f)) refuse(f, "");
  }
  if (present(body, "best_of") && !(body["best_of"].is_number_integer() && body["best_of"] == body.value("n", json(1)))) {
    refuse("best_of", " beyond n");
  }
}

// A message's content as one string: text parts joined by newlines, as vLLM
// does for templates that take string content.
void flatten_content(ordered_json& messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    ordered_json& m = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw BadRequest{400, at + " needs a string 'role'", at};
    if (!m.contains("content") || m["content"].is_string() || m["content"].is_null()) continue;
    if (!m["content"].is_array()) throw BadRequest{400, at + ".content must be a string, a list of parts or null", at + ".content"};
    std::string text;
    for (std::size_t j = 0; j < m["content"].size(); ++j) {
      const ordered_json& part = m["content"][j];
      const std::string pat = at + ".content[" + std::to_string(j) + "]";
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) throw BadRequest{400, pat + " needs a string 'type'", pat};
      if (part["type"] != "text") {
        throw BadRequest{400, pat + " is a '" + part["type"].get<std::string>() + "' part; steper serves text models and takes text parts only", pat};
      }
      if (!part.contains("text") || !part["text"].is_string()) throw BadRequest{400, pat + " needs a string 'text'", pat};
      text += (j ? "\n" : "") + part["text"].get<std::string>();
    }
    m["content"] = text;
  }
}

// A chat request as the model's prompt: through its chat template as vLLM
// renders it (add_generation_prompt, default true; continue_final_message;
// chat_template_kwargs; tools), read in key order so that tools and
// arguments come out of `tojson` as the client wrote them. Without a
// template the contents are joined with blank lines.
std::string render_chat(const std::string& raw, const lm::LocalModel& model, bool& rendered) {
  ordered_json body = ordered_json::parse(raw, nullptr, false);
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    throw BadRequest{400, "'messages' must be a non-empty array", "messages"};
  }
  flatten_content(body["messages"]);
  const ordered_json& messages = body["messages"];
  rendered = model.chat_template() != nullptr;
  if (!rendered) {
    std::string prompt;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      if (!messages[i].contains("content") || !messages[i]["content"].is_string()) {
        throw BadRequest{400, "messages[" + std::to_string(i) + "] needs a string 'content'", "messages[" + std::to_string(i) + "]"};
      }
      prompt += (i ? "\n\n" : "") + messages[i]["content"].get<std::string>();
    }
    return prompt;
  }
  text::ChatOptions chat;
  const json plain = json::parse(raw, nullptr, false);
  chat.continue_final_message = flag(plain, "continue_final_message", false);
  chat.add_generation_prompt = flag(plain, "add_generation_prompt", !chat.continue_final_message);
  if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null()) {
    if (!body["chat_template_kwargs"].is_object()) throw BadRequest{400, "'chat_template_kwargs' must be an object", "chat_template_kwargs"};
    chat.variables = body["chat_template_kwargs"];
  }
  if (body.contains("tools") && !body["tools"].is_null()) chat.variables["tools"] = body["tools"];
  try {
    return model.chat_template()->render(messages, chat);
  } catch (const InputError& e) {
    throw BadRequest{400, e.what(), "messages"};
  }
}

// A completion prompt: a string, an array of strings, an array of token
// ids, or an array of such arrays (vLLM's four forms). Ids are run as they
// are; text gets the model's BOS unless add_special_tokens is false.
void read_prompts(const json& body, const RequestLimits& limits, const lm::LocalModel& model, CompletionRequest& r) {
  if (!body.contains("prompt")) throw BadRequest{400, "'prompt' is required", "prompt"};
  const json& p = body["prompt"];
  const int vocab = model.tokenizer().vocab_size();
  auto ids_of = [&](const json& list, const std::string& at) {
    std::vector<int> ids = token_ids(list, at, vocab, "prompt");
    if (ids.empty()) throw BadRequest{400, at + " is an empty list of token ids", "prompt"};
    r.prompt_texts.push_back(model.tokenizer().decode(ids));
    r.prompts.push_back(std::move(ids));
  };
  const bool ids = p.is_array() && !p.empty() && (p[0].is_number() || p[0].is_array());
  if (ids && p[0].is_number()) {
    ids_of(p, "prompt");
  } else if (ids) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!p[i].is_array()) throw BadRequest{400, "prompt[" + std::to_string(i) + "] must be a list of token ids like the others", "prompt"};
      ids_of(p[i], "prompt[" + std::to_string(i) + "]");
    }
  } else {
    r.prompt_texts = strings_of(p, "prompt", static_cast<std::size_t>(limits.max_prompts));
    if (r.prompt_texts.empty()) throw BadRequest{400, "'prompt' is empty", "prompt"};
    // vLLM's switch: false when the client rendered a chat template, which wrote BOS itself.
    r.options.chat_rendered = !flag(body, "add_special_tokens", true);
    for (std::size_t i = 0; i < r.prompt_texts.size(); ++i) {
      if (r.prompt_texts[i].size() > limits.max_prompt_bytes) {
        throw BadRequest{400, "this model's maximum context length is " + std::to_string(model.context()) + " tokens; prompt " +
                                  std::to_string(i) + " is " + std::to_string(r.prompt_texts[i].size()) + " bytes, more than " +
                                  std::to_string(limits.max_prompt_bytes) + " bytes can fit", "prompt"};
      }
      r.prompts.push_back(model.prompt_ids(r.prompt_texts[i], r.options.chat_rendered));
    }
  }
}

std::uint64_t random_seed() {
  static std::mutex mutex;
  static std::mt19937_64 draw{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mutex);
  return draw() >> 1;  // below 2^63, as the seed a client may send
}

}  // namespace

json error_body(const BadRequest& e) {
  return json{{"error", {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json() : json(e.param)}, {"code", json()}}}};
}


CompletionRequest parse_completion_request(const std::string& raw, bool chat, const RequestLimits& limits, const lm::LocalModel& model) {
  const json body = read_body_object(raw, limits);
  refuse_unsupported(body);
  CompletionRequest r;
  r.chat = chat;
  r.n = integer_in(body, "n", 1, 1, limits.max_prompts);
  if (chat) {
    bool rendered = false;
    r.prompt_texts.push_back(render_chat(raw, model, rendered));
    r.options.chat_rendered = rendered;
    if (r.prompt_texts[0].size() > limits.max_prompt_bytes) {
      throw BadRequest{400, "this model's maximum context length is " + std::to_string(model.context()) + " tokens; the messages are " +
                                std::to_string(r.prompt_texts[0].size()) + " bytes, more than " + std::to_string(limits.max_prompt_bytes) +
                                " bytes can fit", "messages"};
    }
    r.prompts.push_back(model.prompt_ids(r.prompt_texts[0], rendered));
    // Chat's logprobs: a switch, and top_logprobs alternatives.
    if (flag(body, "logprobs", false)) r.logprobs = integer_in(body, "top_logprobs", 0, 0, limits.max_logprobs);
    else if (present(body, "top_logprobs")) throw BadRequest{400, "'top_logprobs' needs 'logprobs': true", "top_logprobs"};
  } else {
    read_prompts(body, limits, model, r);
    if (present(body, "logprobs")) r.logprobs = integer_in(body, "logprobs", -1, 0, limits.max_logprobs);
    r.echo = flag(body, "echo", false);
  }
  const std::size_t choices = r.prompts.size() * static_cast<std::size_t>(r.n);
  if (choices > static_cast<std::size_t>(limits.max_prompts)) {
    throw BadRequest{400, "the request asks for " + std::to_string(choices) + " completions (prompts times n); at most " +
                              std::to_string(limits.max_prompts), present(body, "n") ? "n" : "prompt"};
  }
  const std::string field = chat ? "messages" : "prompt";
  for (std::size_t i = 0; i < r.prompts.size(); ++i) {
    const int n = static_cast<int>(r.prompts[i].size());
    if (n >= model.context() && !(r.echo && n == model.context())) {
      throw BadRequest{400, "this model's maximum context length is " + std::to_string(model.context()) + " tokens; " +
                                (chat ? std::string("the messages are ") : "prompt " + std::to_string(i) + " is ") + std::to_string(n) + " tokens",
                       field};
    }
  }
  lm::CompletionOptions& c = r.options;
  const char* tokens_field = present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  // max_tokens 0 asks only for the prompt's scores (echo).
  c.max_tokens = integer_in(body, tokens_field, chat ? 256 : 16, r.echo ? 0 : 1, limits.max_tokens_limit);
  if (c.max_tokens == 0 && r.logprobs < 0) throw BadRequest{400, "'max_tokens' 0 needs 'logprobs': the request would return nothing", tokens_field};
  c.temperature = number_in(body, "temperature", 1.0, 0, 2);
  c.top_p = number_in(body, "top_p", 1.0, 0, 1, true);
  r.any_seed = !present(body, "seed");
  if (r.any_seed) {
    c.seed = random_seed();
  } else {
    if (!body["seed"].is_number_integer()) throw BadRequest{400, "'seed' must be an integer", "seed"};
    c.seed = body["seed"].is_number_unsigned() ? body["seed"].get<std::uint64_t>() : static_cast<std::uint64_t>(body["seed"].get<std::int64_t>());
  }
  if (present(body, "stop")) c.stop = strings_of(body["stop"], "stop", 4);
  r.stream = flag(body, "stream", false);
  if (present(body, "stream_options")) {
    const json& so = body["stream_options"];
    if (!r.stream) throw BadRequest{400, "'stream_options' needs 'stream': true", "stream_options"};
    if (!so.is_object()) throw BadRequest{400, "'stream_options' must be an object", "stream_options"};
    r.include_usage = flag(so, "include_usage", false);
    if (flag(so, "continuous_usage_stats", false)) {
      throw BadRequest{400, "'stream_options.continuous_usage_stats' is not supported; usage comes once, at the end",
                       "stream_options.continuous_usage_stats"};
    }
  }
  if (r.stream && r.logprobs >= 0) throw BadRequest{400, "'logprobs' with 'stream' is not supported; ask without streaming", "logprobs"};
  if (r.stream && r.echo) throw BadRequest{400, "'echo' with 'stream' is not supported; ask without streaming", "echo"};
  return r;
}

std::vector<int> parse_tokenize_request(const std::string& raw, const RequestLimits& limits, const lm::LocalModel& model) {
  const json body = read_body_object(raw, limits);
  if (body.contains("messages")) {  // a chat request: its rendered prompt's ids
    json as_chat = body;
    as_chat.erase("max_tokens");
    return parse_completion_request(as_chat.dump(), true, limits, model).prompts.at(0);
  }
  if (!body.contains("prompt") || !body["prompt"].is_string()) throw BadRequest{400, "'prompt' must be a string", "prompt"};
  const std::string prompt = body["prompt"].get<std::string>();
  if (prompt.size() > limits.max_prompt_bytes) {
    throw BadRequest{400, "the prompt is longer than " + std::to_string(limits.max_prompt_bytes) + " bytes", "prompt"};
  }
  return model.prompt_ids(prompt, !flag(body, "add_special_tokens", true));
}

std::vector<int> parse_detokenize_request(const std::string& raw, const RequestLimits& limits, const lm::LocalModel& model) {
  const json body = read_body_object(raw, limits);
  if (!body.contains("tokens") || !body["tokens"].is_array()) throw BadRequest{400, "'tokens' must be a list of token ids", "tokens"};
  return token_ids(body["tokens"], "tokens", model.tokenizer().vocab_size(), "tokens");
}

}  // namespace steper::serve
