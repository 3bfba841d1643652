// The HTTP side of steper serve: routes, OpenAI-shaped responses,
// server-sent events for streaming, request ids, the access log and
// /metrics. Requests are read in openai_request.cc.
#include <dirent.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "batcher.h"
#include "connection_pool.h"
#include "metrics.h"
#include "openai_request.h"
#include "openai_response.h"
#include "steper/serve.h"

namespace steper::serve {
namespace {

using json = nlohmann::json;

std::string finish_reason(const std::string& finish) { return finish == "length" ? "length" : "stop"; }

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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


// The request this connection's thread is serving: httplib runs routing,
// the handler, a stream's provider and the logger of one request on one
// thread, one request after another.
struct Current {
  RequestRecord record;
  std::chrono::steady_clock::time_point start;
};
thread_local Current current;

// A client's x-request-id is echoed when it is short and printable.
bool usable_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  return true;
}

const char* const kRoutes[] = {"/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions",
                               "/tokenize", "/detokenize", "/tokenizer_info"};

}  // namespace

struct Server::Impl {
  lm::LocalModel& model;
  ServeOptions o;
  RequestLimits limits;
  std::string name;
  std::int64_t created = unix_seconds();
  httplib::Server http;
  Metrics metrics;
  Batcher batcher;
  ServerStats stats;
  std::atomic<std::uint64_t> next_id{0};
  // run() and stop() from different threads: a stop that comes before
  // httplib listens would be lost (its stop() acts only while running).
  std::mutex run_mutex;
  bool stop_requested = false, run_started = false;
  std::atomic<bool> finished{false};

  Impl(lm::LocalModel& m, ServeOptions options)
      : model(m), o(std::move(options)), batcher(m, o.max_batch, [this](std::size_t n) { metrics.batch_done(n); }) {
    name = o.model_name.empty() ? m.name() : o.model_name;
    limits.model_names = {name};
    // vLLM's default name is the path given to --model; a client may send either.
    if (!o.model_path.empty() && o.model_path != name) limits.model_names.push_back(o.model_path);
    limits.max_tokens_limit = o.max_tokens_limit;
    limits.max_prompts = o.max_prompts;
    // The most bytes a prompt may have: the context times the longest token,
    // times 4 for normalisation that shrinks text. Longer prompts are refused
    // before any tokenizing: a 3.9 MB prompt once cost the server gigabytes
    // to find out. (Long runs of white space that SentencePiece folds into
    // one token could fit beyond this; no client needs them.)
    limits.max_prompt_bytes = static_cast<std::size_t>(m.context()) * longest_token_bytes(m.tokenizer()) * 4;
  }

  static std::size_t longest_token_bytes(const text::Tokenizer& tok) {
    std::size_t longest = 1;
    for (int id = 0; id < tok.vocab_size(); ++id) longest = std::max(longest, tok.decode({id}).size());
    return longest;
  }

  json envelope(bool chat, const std::string& id, bool chunk) const {
    return json{{"id", id},
                {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                {"created", unix_seconds()},
                {"model", name}};
  }

  json model_object() const {
    return json{{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "steper"}, {"root", name},
                {"parent", nullptr}, {"max_model_len", model.context()}};
  }

  void send_error(httplib::Response& res, const BadRequest& e) {
    ++stats.errors;
    res.status = e.status;
    res.set_content(error_body(e).dump(), "application/json");
  }

  // Reads a body through httplib's content reader, so that the limit holds
  // for chunked bodies too (httplib 0.11 checks it only against
  // Content-Length: a 6 MB chunked body was read and tokenized in full).
  // Past the limit the rest is read and dropped (up to 16 times the limit),
  // so that the client gets its 413 rather than a reset. False: answered.
  bool read_body(const httplib::ContentReader& read, httplib::Response& res, std::string& body) {
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
    if (whole && !too_large) return true;
    res.set_header("Connection", "close");  // the rest of the body may be unread
    send_error(res, too_large || res.status == 413
                        ? BadRequest{413, "the request body is larger than " + std::to_string(o.max_body_bytes) + " bytes", ""}
                        : BadRequest{400, "the request body could not be read", ""});
    return false;
  }

  // A completion route.
  httplib::Server::HandlerWithContentReader route(bool chat) {
    return [this, chat](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read) {
      ++stats.requests;
      bool large = false;
      {
        std::string body;
        if (!read_body(read, res, body)) return;
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
    CompletionRequest r;
    try {
      r = parse_completion_request(raw, chat, limits, model);
    } catch (const BadRequest& e) {
      return send_error(res, e);
    }
    auto job = std::make_shared<Job>();
    for (const auto& p : r.prompts) {
      for (int j = 0; j < r.n; ++j) job->prompts.push_back(p);  // choice i*n+j
    }
    job->options = r.options;
    job->any_seed = r.any_seed;
    job->logprobs = r.logprobs;
    job->score_prompt = r.echo;
    for (const auto& p : r.prompts) current.record.prompt_tokens += static_cast<std::int64_t>(p.size());
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id);
    batcher.submit(job);
    if (r.stream) return start_stream(res, job, r, id);
    std::unique_lock<std::mutex> lock(job->mutex);
    job->changed.wait(lock, [&] { return job->done; });
    if (!job->error.empty()) return send_error(res, BadRequest{500, job->error, "", "server_error"});
    for (const auto& c : job->out) {
      if (c.finish == "error") return send_error(res, BadRequest{400, c.error, chat ? "messages" : "prompt"});
    }
    json out = envelope(chat, id, false);
    out["choices"] = json::array();
    std::int64_t completion_tokens = 0;
    for (std::size_t k = 0; k < job->out.size(); ++k) {
      const lm::Completion& c = job->out[k];
      const std::size_t prompt = k / static_cast<std::size_t>(r.n);
      json choice{{"index", k}, {"finish_reason", finish_reason(c.finish)}};
      const std::vector<lm::TokenLogprob> none;
      const auto& scored = job->scores.empty() ? none : job->scores[k];
      if (chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        if (r.logprobs >= 0) {
          // The end-of-sequence token is not part of the message.
          std::vector<lm::TokenLogprob> shown = scored;
          if (c.finish == "eos" && !shown.empty()) shown.pop_back();
          choice["logprobs"] = chat_logprobs(shown, model.tokenizer());
        } else {
          choice["logprobs"] = nullptr;
        }
      } else {
        choice["text"] = r.echo ? r.prompt_texts[prompt] + c.text : c.text;
        const int first = r.echo && !c.prompt_ids.empty() ? c.prompt_ids[0] : -1;
        choice["logprobs"] = r.logprobs >= 0 ? completion_logprobs(scored, model.tokenizer(), first) : json(nullptr);
      }
      out["choices"].push_back(choice);
      completion_tokens += c.completion_tokens;
    }
    current.record.completion_tokens = completion_tokens;
    out["usage"] = usage(current.record.prompt_tokens, completion_tokens);
    res.set_content(out.dump(), "application/json");
  }

  static json usage(std::int64_t prompt, std::int64_t completion) {
    return json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  // Server-sent events: one chunk per new piece of text. Text that may still
  // turn into a stop string, or ends inside a UTF-8 character, is held back
  // until the next token settles it. With stream_options.include_usage a
  // last chunk with no choices carries the usage.
  void start_stream(httplib::Response& res, std::shared_ptr<Job> job, const CompletionRequest& r, std::string id) {
    auto sent = std::make_shared<std::vector<std::size_t>>(job->prompts.size(), 0);
    auto started = std::make_shared<std::vector<bool>>(job->prompts.size(), false);
    const bool chat = r.chat, include_usage = r.include_usage;
    const std::int64_t prompt_tokens = current.record.prompt_tokens;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, job, chat, include_usage, prompt_tokens, id, sent, started](
                                                              std::size_t, httplib::DataSink& sink) {
      auto event = [&](const json& j) {
        const std::string line = "data: " + j.dump() + "\n\n";
        return sink.write(line.data(), line.size());
      };
      auto chunk = [&](std::size_t i, const std::string& piece, const json& finish) {
        json j = envelope(chat, id, true);
        json choice{{"index", i}, {"finish_reason", finish}};
        if (chat) {
          choice["delta"] = json::object();
          if (!(*started)[i]) choice["delta"]["role"] = "assistant";
          if (!piece.empty()) choice["delta"]["content"] = piece;
        } else {
          choice["text"] = piece;
        }
        choice["logprobs"] = nullptr;
        j["choices"] = json::array({choice});
        if (include_usage) j["usage"] = nullptr;
        (*started)[i] = true;
        return event(j);
      };
      std::unique_lock<std::mutex> lock(job->mutex);
      job->changed.wait_for(lock, std::chrono::milliseconds(200));
      if (job->done) {
        if (!job->error.empty()) {
          current.record.status = 500;
          event(error_body(BadRequest{500, job->error, "", "server_error"}));
        } else {
          std::int64_t completion_tokens = 0;
          for (std::size_t i = 0; i < job->out.size(); ++i) {
            if (job->out[i].finish == "error") {
              current.record.status = 400;
              event(error_body(BadRequest{400, job->out[i].error, chat ? "messages" : "prompt"}));
              break;
            }
            const std::string& text = job->out[i].text;
            const std::string rest = (*sent)[i] < text.size() ? text.substr((*sent)[i]) : "";
            if (!rest.empty() && !chunk(i, rest, nullptr)) return false;
            if (!chunk(i, "", finish_reason(job->out[i].finish))) return false;
            completion_tokens += job->out[i].completion_tokens;
          }
          current.record.completion_tokens = completion_tokens;
          if (include_usage) {
            json j = envelope(chat, id, true);
            j["choices"] = json::array();
            j["usage"] = usage(prompt_tokens, completion_tokens);
            if (!event(j)) return false;
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

  // vLLM's tokenizer endpoints, which lm-evaluation-harness's
  // local-completions uses instead of a Hugging Face tokenizer when the
  // server has them: POST /tokenize {"prompt" | "messages",
  // "add_special_tokens"}, POST /detokenize {"tokens"}, GET /tokenizer_info.
  httplib::Server::HandlerWithContentReader tokenize_route(bool encode) {
    return [this, encode](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read) {
      ++stats.requests;
      std::string raw;
      if (!read_body(read, res, raw)) return;
      try {
        if (!encode) {
          const std::vector<int> ids = parse_detokenize_request(raw, limits, model);
          res.set_content(json{{"prompt", model.tokenizer().decode(ids)}}.dump(), "application/json");
          return;
        }
        const std::vector<int> ids = parse_tokenize_request(raw, limits, model);
        res.set_content(json{{"count", ids.size()}, {"max_model_len", model.context()}, {"tokens", ids}, {"token_strs", nullptr}}.dump(),
                        "application/json");
      } catch (const BadRequest& e) {
        send_error(res, e);
      }
    };
  }

  json tokenizer_info() const {
    const text::Tokenizer& tok = model.tokenizer();
    // Special tokens by their text in the tokenizer's files ("</s>"), which
    // decoding drops.
    auto token = [&](int id) { return id >= 0 ? json(tok.token_text(id)) : json(nullptr); };
    json info{{"tokenizer_class", tok.kind() == "bpe" ? "PreTrainedTokenizerFast" : "LlamaTokenizer"},
              {"bos_token", token(tok.bos_id())},
              {"eos_token", token(tok.eos_id())},
              {"pad_token", token(tok.pad_id())},
              {"add_bos_token", tok.add_bos()},
              {"model_max_length", model.context()},
              {"vocab_size", tok.vocab_size()}};
    info["chat_template"] = model.chat_template() ? json(model.chat_template()->source()) : json(nullptr);
    return info;
  }

  void routes() {
    http.new_task_queue = [n = o.max_connections] { return new ConnectionPool(static_cast<std::size_t>(n)); };
    http.set_payload_max_length(o.max_body_bytes);
    // Without SO_REUSEPORT (which Debian's httplib sets): a second server on
    // a taken port would start and take half of the first one's requests.
    http.set_socket_options([reuse = o.reuse_port](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      if (reuse) ::setsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
    });
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      current = Current{};
      current.start = std::chrono::steady_clock::now();
      const std::string given = req.get_header_value("x-request-id");
      current.record.id = usable_request_id(given) ? given : "req-" + std::to_string(++next_id);
      current.record.method = req.method;
      current.record.path = req.path;
      res.set_header("x-request-id", current.record.id);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      RequestRecord& r = current.record;
      if (r.id.empty()) r.id = "-", r.method = req.method, r.path = req.path;  // refused before routing
      if (r.status == 0) r.status = res.status;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - current.start).count();
      r.route = "other";
      for (const char* known : kRoutes) {
        if (r.path == known) r.route = known;
      }
      if (r.path.rfind("/v1/models/", 0) == 0) r.route = "/v1/models/{id}";
      metrics.request_done(r);
      if (o.access_log) {
        const std::string line = "steper serve: " + access_log_line(r) + "\n";
        std::fputs(line.c_str(), o.access_log);
        std::fflush(o.access_log);
      }
      current = Current{};
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("{\"status\":\"ok\"}", "application/json"); });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.text(batcher.queued(), batcher.running()), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(json{{"object", "list"}, {"data", json::array({model_object()})}}.dump(), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string asked = req.matches[1];
      for (const auto& n : limits.model_names) {
        if (asked == n) return res.set_content(model_object().dump(), "application/json");
      }
      send_error(res, BadRequest{404, "the model '" + asked + "' does not exist; this server serves '" + name + "'", "model", "not_found_error"});
    });
    http.Post("/v1/completions", route(false));
    http.Post("/v1/chat/completions", route(true));
    http.Post("/tokenize", tokenize_route(true));
    http.Post("/detokenize", tokenize_route(false));
    http.Get("/tokenizer_info", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(tokenizer_info().dump(), "application/json");
    });
    // Statuses httplib sets itself (404 unknown path, 413 too large, ...)
    // get a JSON body too; a known path with the wrong method is a 405.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      ++stats.errors;
      if (res.status == 404) {
        const bool get = req.path == "/health" || req.path == "/metrics" || req.path == "/tokenizer_info" || req.path == "/v1/models" ||
                         req.path.rfind("/v1/models/", 0) == 0;
        const bool post = req.path == "/v1/completions" || req.path == "/v1/chat/completions" || req.path == "/tokenize" || req.path == "/detokenize";
        if (get || post) {
          res.status = 405;
          res.set_header("Allow", get ? "GET" : "POST");
          res.set_content(error_body(BadRequest{405, req.method + " is not allowed on " + req.path + "; use " + (get ? "GET" : "POST"), ""}).dump(),
                          "application/json");
          return;
        }
      }
      std::string message = res.status == 404 ? "no route " + req.method + " " + req.path
                            : res.status == 413 ? "the request body is larger than " + std::to_string(o.max_body_bytes) + " bytes"
                                                : "HTTP " + std::to_string(res.status);
      res.set_content(error_body(BadRequest{res.status, message, ""}).dump(), "application/json");
    });
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string message = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
      }
      send_error(res, BadRequest{500, message, "", "server_error"});
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
  if (port < 0) {
    throw RuntimeError("cannot listen on " + s.o.host + ":" + std::to_string(s.o.port) +
                       ": the address is in use (another server?) or not an address of this machine");
  }
  widen_backlog(port);
  return port;
}

void Server::run() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mutex);
    if (impl_->stop_requested) return;
    impl_->run_started = true;
  }
  impl_->http.listen_after_bind();
  impl_->finished = true;
}

void Server::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mutex);
    impl_->stop_requested = true;
    if (!impl_->run_started) return;  // run() has not begun: it will return at once
  }
  // run() is about to listen: wait until it does, so that httplib's stop acts.
  while (!impl_->http.is_running() && !impl_->finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->http.stop();
}
const ServerStats& Server::stats() const {
  impl_->stats.batches = impl_->batcher.batches();
  impl_->stats.batched_prompts = impl_->batcher.prompts();
  return impl_->stats;
}
const std::string& Server::model_name() const { return impl_->name; }

}  // namespace steper::serve
