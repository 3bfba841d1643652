// The HTTP side of steper serve: request checking, OpenAI-shaped responses,
// server-sent events for streaming.
#include <dirent.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "batcher.h"
#include "connection_pool.h"
#include "steper/serve.h"

namespace steper::serve {
namespace {

using json = nlohmann::json;

// A request the client got wrong: HTTP status, message and the parameter.
struct BadRequest {
  int status;
  std::string message, param, type = "invalid_request_error";
};

json error_body(const BadRequest& e) {
  return json{{"error", {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json() : json(e.param)}, {"code", json()}}}};
}

std::vector<std::string> strings_of(const json& j, const char* field, std::size_t max, bool allow_empty_list) {
  std::vector<std::string> out;
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) throw BadRequest{400, std::string("'") + field + "' must be a string or an array of strings", field};
  for (const auto& x : j) {
    if (!x.is_string()) throw BadRequest{400, std::string("'") + field + "' must hold strings only", field};
    out.push_back(x.get<std::string>());
  }
  if (out.empty() && !allow_empty_list) throw BadRequest{400, std::string("'") + field + "' is empty", field};
  if (out.size() > max) {
    throw BadRequest{400, std::string("'") + field + "' holds " + std::to_string(out.size()) + " entries; at most " + std::to_string(max), field};
  }
  return out;
}

double number_in(const json& body, const char* field, double fallback, double lo, double hi, bool open_lo = false) {
  if (!body.contains(field) || body[field].is_null()) return fallback;
  if (!body[field].is_number()) throw BadRequest{400, std::string("'") + field + "' must be a number", field};
  const double v = body[field].get<double>();
  if (v > hi || v < lo || (open_lo && v == lo)) {
    throw BadRequest{400, std::string("'") + field + "' is " + body[field].dump() + "; it must be in " + (open_lo ? "(" : "[") +
                               json(lo).dump() + ", " + json(hi).dump() + "]", field};
  }
  return v;
}

std::string finish_reason(const std::string& finish) { return finish == "length" ? "length" : "stop"; }

// httplib listens with a backlog of 5 (a compile-time setting of Debian's
// shared build): 32 clients connecting at once lost SYNs and waited for the
// 1 s retransmission (p99 latency ~1 s). Linux lets a listening socket's
// backlog be raised by calling listen() again; httplib does not expose the
// socket, so find it: the listening TCP socket of this process on `port`.
void widen_backlog(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    const int p = addr.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                  : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                               : -1;
    if (p == port) ::listen(fd, 1024);
  }
  ::closedir(dir);
}

}  // namespace

struct Server::Impl {
  lm::LocalModel& model;
  ServeOptions o;
  std::string name;
  httplib::Server http;
  Batcher batcher;
  ServerStats stats;
  std::atomic<std::uint64_t> next_id{0};

  // The most bytes a prompt may have: the context times the longest token,
  // times 4 for normalisation that shrinks text. Longer prompts are refused
  // before any tokenizing: a 3.9 MB prompt once cost the server gigabytes to
  // find out. (Long runs of white space that SentencePiece folds into one
  // token could fit beyond this; no client needs them.)
  std::size_t max_prompt_bytes;

  Impl(lm::LocalModel& m, ServeOptions options)
      : model(m),
        o(std::move(options)),
        name(o.model_name.empty() ? m.name() : o.model_name),
        batcher(m, o.max_batch),
        max_prompt_bytes(static_cast<std::size_t>(m.context()) * longest_token_bytes(m.tokenizer()) * 4) {}

  static std::size_t longest_token_bytes(const text::Tokenizer& tok) {
    std::size_t longest = 1;
    for (int id = 0; id < tok.vocab_size(); ++id) longest = std::max(longest, tok.decode({id}).size());
    return longest;
  }

  // A chat request through the model's chat template, as vLLM renders it:
  // add_generation_prompt (default true), continue_final_message and
  // chat_template_kwargs are honoured. Read in key order, so that tools and
  // arguments come out of `tojson` as the client wrote them.
  std::string render_chat(const std::string& raw) const {
    const auto body = nlohmann::ordered_json::parse(raw, nullptr, false);
    const auto& messages = body.contains("messages") ? body["messages"] : nlohmann::ordered_json();
    if (!messages.is_array() || messages.empty()) throw BadRequest{400, "'messages' must be a non-empty array", "messages"};
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      const std::string at = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw BadRequest{400, at + " needs a string 'role'", at};
      if (m.contains("content") && !(m["content"].is_string() || m["content"].is_array() || m["content"].is_null())) {
        throw BadRequest{400, at + ".content must be a string, a list of parts or null", at};
      }
    }
    text::ChatOptions chat;
    auto flag = [&](const char* field, bool fallback) {
      if (!body.contains(field) || body[field].is_null()) return fallback;
      if (!body[field].is_boolean()) throw BadRequest{400, std::string("'") + field + "' must be true or false", field};
      return body[field].get<bool>();
    };
    chat.continue_final_message = flag("continue_final_message", false);
    chat.add_generation_prompt = flag("add_generation_prompt", !chat.continue_final_message);
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

  // The prompts and settings of a request, checked; `stream` says whether
  // the client asked for server-sent events.
  std::shared_ptr<Job> parse(const std::string& raw, bool chat, bool& stream) {
    json body = json::parse(raw, nullptr, false);
    if (body.is_discarded()) throw BadRequest{400, "the body is not valid JSON", ""};
    if (!body.is_object()) throw BadRequest{400, "the body must be a JSON object", ""};
    if (body.contains("model") && !body["model"].is_null()) {
      if (!body["model"].is_string()) throw BadRequest{400, "'model' must be a string", "model"};
      if (body["model"].get<std::string>() != name) {
        throw BadRequest{404, "the model '" + body["model"].get<std::string>() + "' does not exist; this server serves '" + name + "'",
                         "model", "not_found_error"};
      }
    }
    if (body.contains("n") && !(body["n"].is_number_integer() && body["n"].get<int>() == 1)) {
      throw BadRequest{400, "only n = 1 is supported", "n"};
    }
    auto job = std::make_shared<Job>();
    if (chat && model.chat_template()) {
      job->prompts.push_back(render_chat(raw));
      job->options.chat_rendered = true;
    } else if (chat) {
      if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
        throw BadRequest{400, "'messages' must be a non-empty array", "messages"};
      }
      std::string prompt;
      for (std::size_t i = 0; i < body["messages"].size(); ++i) {
        const json& m = body["messages"][i];
        const std::string at = "messages[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw BadRequest{400, at + " needs a string 'role'", at};
        if (!m.contains("content") || !m["content"].is_string()) throw BadRequest{400, at + " needs a string 'content'", at};
        prompt += (i ? "\n\n" : "") + m["content"].get<std::string>();
      }
      job->prompts.push_back(std::move(prompt));
    } else {
      if (!body.contains("prompt")) throw BadRequest{400, "'prompt' is required", "prompt"};
      job->prompts = strings_of(body["prompt"], "prompt", static_cast<std::size_t>(o.max_prompts), false);
      // vLLM's switch: false when the client rendered a chat template, which wrote BOS itself.
      if (body.contains("add_special_tokens") && !body["add_special_tokens"].is_null()) {
        if (!body["add_special_tokens"].is_boolean()) throw BadRequest{400, "'add_special_tokens' must be true or false", "add_special_tokens"};
        job->options.chat_rendered = !body["add_special_tokens"].get<bool>();
      }
    }
    lm::CompletionOptions& c = job->options;
    const std::string tokens_field = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    c.max_tokens = static_cast<int>(number_in(body, tokens_field.c_str(), chat ? 256 : 16, 1, o.max_tokens_limit));
    if (body.contains(tokens_field) && !body[tokens_field].is_number_integer()) throw BadRequest{400, "'" + tokens_field + "' must be an integer", tokens_field};
    c.temperature = number_in(body, "temperature", 1.0, 0, 2);
    c.top_p = number_in(body, "top_p", 1.0, 0, 1, true);
    c.seed = static_cast<std::uint64_t>(number_in(body, "seed", 0, 0, 1e18));
    if (body.contains("stop") && !body["stop"].is_null()) c.stop = strings_of(body["stop"], "stop", 4, true);
    // Refuse what cannot fit before any byte of a stream is sent.
    const text::Tokenizer& tok = model.tokenizer();
    const int bos = tok.add_bos() && !c.chat_rendered ? 1 : 0;
    for (std::size_t i = 0; i < job->prompts.size(); ++i) {
      if (job->prompts[i].size() > max_prompt_bytes) {
        throw BadRequest{400, "this model's maximum context length is " + std::to_string(model.context()) + " tokens; prompt " +
                                  std::to_string(i) + " is " + std::to_string(job->prompts[i].size()) + " bytes, more than " +
                                  std::to_string(max_prompt_bytes) + " bytes can fit", chat ? "messages" : "prompt"};
      }
      const int n = static_cast<int>(tok.encode(job->prompts[i]).size()) + bos;
      if (n >= model.context()) {
        throw BadRequest{400, "this model's maximum context length is " + std::to_string(model.context()) + " tokens; prompt " +
                                  std::to_string(i) + " is " + std::to_string(n) + " tokens", chat ? "messages" : "prompt"};
      }
    }
    stream = false;
    if (body.contains("stream") && !body["stream"].is_null()) {
      if (!body["stream"].is_boolean()) throw BadRequest{400, "'stream' must be true or false", "stream"};
      stream = body["stream"].get<bool>();
    }
    return job;
  }

  json envelope(bool chat, const std::string& id, bool chunk) const {
    return json{{"id", id},
                {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                {"created", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()},
                {"model", name}};
  }

  // A completion route. The body is read here, not by httplib, so that its
  // limit holds for chunked bodies too (httplib 0.11 checks it only against
  // Content-Length: a 6 MB chunked body was read and tokenized in full).
  httplib::Server::HandlerWithContentReader route(bool chat) {
    return [this, chat](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read) {
      bool large = false;
      {
        // Past the limit the rest is read and dropped (up to 16 times the
        // limit), so that the client gets its 413 rather than a reset.
        std::string body;
        bool too_large = false;
        std::size_t dropped = 0;
        const bool whole = read([&](const char* data, std::size_t n) {
          if (!too_large && body.size() + n <= o.max_body_bytes) {
            body.append(data, n);
            return true;
          }
          too_large = true;
          body = std::string();
          dropped += n;
          return dropped <= 16 * o.max_body_bytes;
        });
        if (!whole || too_large) {
          ++stats.requests;
          ++stats.errors;
          res.set_header("Connection", "close");  // the rest of the body may be unread
          const BadRequest e = too_large || res.status == 413
                                   ? BadRequest{413, "the request body is larger than " + std::to_string(o.max_body_bytes) + " bytes", ""}
                                   : BadRequest{400, "the request body could not be read", ""};
          res.status = e.status;
          res.set_content(error_body(e).dump(), "application/json");
          return;
        }
        large = body.size() >= kLargeBody;
        complete(body, res, chat);
      }
      // glibc keeps freed memory for reuse; after 9 prompts of 3.9 MB the
      // server held 5.8 GB. Give the main heap's back once a large request
      // is done (the request threads' heaps: see the Server constructor).
      if (large) ::malloc_trim(0);
    };
  }
  static constexpr std::size_t kLargeBody = 1u << 20;

  void complete(const std::string& raw, httplib::Response& res, bool chat) {
    ++stats.requests;
    std::shared_ptr<Job> job;
    bool stream = false;
    try {
      job = parse(raw, chat, stream);
    } catch (const BadRequest& e) {
      ++stats.errors;
      res.status = e.status;
      res.set_content(error_body(e).dump(), "application/json");
      return;
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id);
    batcher.submit(job);
    if (stream) return start_stream(res, job, chat, id);
    std::unique_lock<std::mutex> lock(job->mutex);
    job->changed.wait(lock, [&] { return job->done; });
    if (!job->error.empty()) {
      ++stats.errors;
      res.status = 500;
      res.set_content(error_body(BadRequest{500, job->error, "", "server_error"}).dump(), "application/json");
      return;
    }
    json out = envelope(chat, id, false);
    out["choices"] = json::array();
    int prompt_tokens = 0, completion_tokens = 0;
    for (std::size_t i = 0; i < job->out.size(); ++i) {
      const lm::Completion& c = job->out[i];
      json choice{{"index", i}, {"finish_reason", finish_reason(c.finish)}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      else {
        choice["text"] = c.text;
        choice["logprobs"] = nullptr;
      }
      out["choices"].push_back(choice);
      prompt_tokens += c.prompt_tokens;
      completion_tokens += c.completion_tokens;
    }
    out["usage"] = {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}, {"total_tokens", prompt_tokens + completion_tokens}};
    res.set_content(out.dump(), "application/json");
  }

  // Server-sent events: one chunk per new piece of text. Text that may still
  // turn into a stop string, or ends inside a UTF-8 character, is held back
  // until the next token settles it.
  void start_stream(httplib::Response& res, std::shared_ptr<Job> job, bool chat, std::string id) {
    auto sent = std::make_shared<std::vector<std::size_t>>(job->prompts.size(), 0);
    auto started = std::make_shared<bool>(false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, job, chat, id, sent, started](std::size_t, httplib::DataSink& sink) {
      auto event = [&](const json& j) {
        const std::string line = "data: " + j.dump() + "\n\n";
        return sink.write(line.data(), line.size());
      };
      auto chunk = [&](std::size_t i, const std::string& piece, const json& finish) {
        json j = envelope(chat, id, true);
        json choice{{"index", i}, {"finish_reason", finish}};
        if (chat) {
          choice["delta"] = json::object();
          if (!*started) choice["delta"]["role"] = "assistant";
          if (!piece.empty()) choice["delta"]["content"] = piece;
        } else {
          choice["text"] = piece;
          choice["logprobs"] = nullptr;
        }
        j["choices"] = json::array({choice});
        *started = true;
        return event(j);
      };
      std::unique_lock<std::mutex> lock(job->mutex);
      job->changed.wait_for(lock, std::chrono::milliseconds(200));
      if (job->done) {
        if (!job->error.empty()) {
          event(error_body(BadRequest{500, job->error, "", "server_error"}));
        } else {
          for (std::size_t i = 0; i < job->out.size(); ++i) {
            const std::string& text = job->out[i].text;
            const std::string rest = (*sent)[i] < text.size() ? text.substr((*sent)[i]) : "";
            if (!rest.empty() && !chunk(i, rest, nullptr)) return false;
            if (!chunk(i, "", finish_reason(job->out[i].finish))) return false;
          }
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
      }
      for (std::size_t i = 0; i < job->so_far.size(); ++i) {
        const std::string safe = settled(job->so_far[i], job->options.stop);
        if (safe.size() > (*sent)[i] && safe.compare(0, (*sent)[i], job->so_far[i], 0, (*sent)[i]) == 0) {
          if (!chunk(i, safe.substr((*sent)[i]), nullptr)) return false;  // the client left
          (*sent)[i] = safe.size();
        }
      }
      return true;
    });
  }

  // The prefix of `text` that no later token can change.
  static std::string settled(const std::string& text, const std::vector<std::string>& stops) {
    std::size_t end = text.size();
    for (const auto& s : stops) {
      if (s.empty()) continue;
      if (std::size_t at = text.find(s); at != std::string::npos) end = std::min(end, at);
      for (std::size_t k = std::min(s.size() - 1, text.size()); k > 0; --k) {  // a stop string may be starting
        if (text.compare(text.size() - k, k, s, 0, k) == 0) {
          end = std::min(end, text.size() - k);
          break;
        }
      }
    }
    std::string out = text.substr(0, end);
    // Drop a trailing replacement character (half a character so far) and
    // an unfinished UTF-8 sequence.
    static const std::string kReplacement = "\xEF\xBF\xBD";
    while (out.size() >= 3 && out.compare(out.size() - 3, 3, kReplacement) == 0) out.resize(out.size() - 3);
    std::size_t k = out.size();
    while (k > 0 && (static_cast<unsigned char>(out[k - 1]) & 0xC0) == 0x80) --k;
    if (k > 0 && static_cast<unsigned char>(out[k - 1]) >= 0xC0) {
      const unsigned char lead = static_cast<unsigned char>(out[k - 1]);
      const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
      if (out.size() - (k - 1) < need) out.resize(k - 1);
    }
    return out;
  }

  void routes() {
    http.new_task_queue = [n = o.max_connections] { return new ConnectionPool(static_cast<std::size_t>(n)); };
    http.set_payload_max_length(o.max_body_bytes);
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("{\"status\":\"ok\"}", "application/json"); });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m{{"id", name}, {"object", "model"}, {"owned_by", "steper"}, {"max_model_len", model.context()}};
      res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
    });
    http.Post("/v1/completions", route(false));
    http.Post("/v1/chat/completions", route(true));
    // Statuses httplib sets itself (404 unknown path, 413 too large, ...) get a JSON body too.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      ++stats.errors;
      std::string message = res.status == 404 ? "no route " + req.method + " " + req.path
                            : res.status == 413 ? "the request body is larger than " + std::to_string(o.max_body_bytes) + " bytes"
                                                : "HTTP " + std::to_string(res.status);
      res.set_content(error_body(BadRequest{res.status, message, ""}).dump(), "application/json");
    });
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      ++stats.errors;
      std::string message = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
      }
      res.status = 500;
      res.set_content(error_body(BadRequest{500, message, "", "server_error"}).dump(), "application/json");
    });
  }
};

Server::Server(lm::LocalModel& model, ServeOptions options) : impl_(std::make_unique<Impl>(model, std::move(options))) {
  // A server lives long and meets bursts: model::tune_allocator()'s "keep
  // every freed block" held each burst's peak for good (100 requests of
  // 3.9 MB left 96 MB behind in the request threads' heaps, which
  // malloc_trim does not reach: glibc gives their free tops back only past
  // this threshold).
  ::mallopt(M_TRIM_THRESHOLD, 4 << 20);
  ::mallopt(M_TOP_PAD, 1 << 20);
  if (impl_->o.max_batch < 1 || impl_->o.max_connections < 1) throw InputError("batch size and connections must be at least 1");
  impl_->routes();
}

Server::~Server() { stop(); }

int Server::bind() {
  Impl& s = *impl_;
  int port = s.o.port;
  if (port == 0) port = s.http.bind_to_any_port(s.o.host.c_str());
  else if (!s.http.bind_to_port(s.o.host.c_str(), port)) port = -1;
  if (port < 0) throw RuntimeError("cannot listen on " + s.o.host + ":" + std::to_string(s.o.port) + " (in use, or not an address here)");
  widen_backlog(port);
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }
const ServerStats& Server::stats() const {
  impl_->stats.batches = impl_->batcher.batches();
  impl_->stats.batched_prompts = impl_->batcher.prompts();
  return impl_->stats;
}
const std::string& Server::model_name() const { return impl_->name; }

}  // namespace steper::serve
