// The remote backend: any OpenAI-compatible endpoint. Each call spreads its
// prompts over `concurrency` worker threads, each with its own connection to
// each endpoint (httplib clients are not shared across threads); prompt i
// goes to endpoint i mod N. Transient failures (connection errors, 429, 5xx)
// are retried with exponential backoff and jitter, honouring Retry-After;
// a 4xx that concerns one prompt becomes that prompt's error completion;
// one that concerns the whole setup (401/403/404) stops the run with a hint.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "steper/lm.h"

namespace steper::lm {
namespace {

using json = nlohmann::json;

struct Endpoint {
  std::string url;     // as given, for messages
  std::string origin;  // scheme://host:port
  std::string base;    // path prefix, e.g. "/v1"
};

Endpoint parse_endpoint(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::size_t scheme = url.find("://");
  if (!is_remote_spec(url) || scheme == std::string::npos) {
    throw InputError("'" + url + "' is not an http:// or https:// URL");
  }
  const std::size_t slash = url.find('/', scheme + 3);
  Endpoint e{url, url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
  if (e.origin.size() <= scheme + 3) throw InputError("'" + url + "' names no host");
  return e;
}

// The error message an OpenAI-style body carries, else the body itself (cut).
std::string error_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  }
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

class RemoteModel : public LanguageModel {
 public:
  explicit RemoteModel(const RemoteOptions& o) : o_(o) {
    if (o.endpoints.empty()) throw InputError("no endpoint given");
    if (o.concurrency < 1) throw InputError("concurrency must be at least 1");
    for (const auto& url : o.endpoints) endpoints_.push_back(parse_endpoint(url));
    if (const char* key = std::getenv(o.api_key_env.c_str()); key && *key) api_key_ = key;
  }

  std::string name() const override { return model_name(); }
  int parallelism() const override { return o_.concurrency * static_cast<int>(endpoints_.size()); }

  std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options) override {
    const std::string model = model_name();
    std::vector<Completion> out(prompts.size());
    std::atomic<std::size_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    std::atomic<bool> failed{false};
    auto worker = [&](unsigned seed) {
      std::vector<std::unique_ptr<httplib::Client>> clients(endpoints_.size());
      std::mt19937 jitter(seed);
      for (;;) {
        const std::size_t i = next++;
        if (i >= prompts.size() || failed) return;
        try {
          const std::size_t e = i % endpoints_.size();
          if (!clients[e]) clients[e] = connect(endpoints_[e]);
          out[i] = request(*clients[e], endpoints_[e], model, prompts[i], options, jitter);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (!failure) failure = std::current_exception();
          failed = true;
          return;
        }
      }
    };
    const std::size_t n = std::min<std::size_t>(prompts.size(), static_cast<std::size_t>(parallelism()));
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < n; ++t) threads.emplace_back(worker, static_cast<unsigned>(t + 1));
    for (auto& t : threads) t.join();
    if (failure) std::rethrow_exception(failure);
    return out;
  }

 private:
  std::unique_ptr<httplib::Client> connect(const Endpoint& e) const {
    auto c = std::make_unique<httplib::Client>(e.origin);
    const auto sec = std::chrono::milliseconds(o_.timeout_ms);
    c->set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(sec).count() > 10 ? std::chrono::seconds(10) : sec);
    c->set_read_timeout(sec);
    c->set_write_timeout(sec);
    c->set_keep_alive(true);
    if (!api_key_.empty()) c->set_bearer_token_auth(api_key_.c_str());
    return c;
  }

  // The name to send: the configured one, else the first the endpoint serves.
  std::string model_name() const {
    std::lock_guard<std::mutex> lock(name_mutex_);
    if (!model_.empty()) return model_;
    if (!o_.model.empty()) return model_ = o_.model;
    const Endpoint& e = endpoints_.front();
    auto c = connect(e);
    auto res = c->Get((e.base + "/models").c_str());
    if (!res) {
      throw RuntimeError("cannot reach " + e.url + " (" + httplib::to_string(res.error()) + ")" +
                         "\n  hint: is the server running? the URL should end in /v1");
    }
    if (res->status != 200) {
      throw InputError(e.url + "/models answered HTTP " + std::to_string(res->status) + ": " + error_message(res->body) +
                       "\n  hint: name the model with --model-name");
    }
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
        !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
      throw InputError(e.url + "/models lists no model\n  hint: name the model with --model-name");
    }
    return model_ = j["data"][0]["id"].get<std::string>();
  }

  Completion request(httplib::Client& client, const Endpoint& e, const std::string& model, const std::string& prompt,
                     const CompletionOptions& o, std::mt19937& jitter) const {
    json body{{"model", model}, {"max_tokens", o.max_tokens}, {"temperature", o.temperature}, {"top_p", o.top_p},
              {"seed", o.seed}, {"stream", false}};
    if (!o.stop.empty()) body["stop"] = o.stop;
    if (o_.chat) body["messages"] = json::array({json{{"role", "user"}, {"content", prompt}}});
    else body["prompt"] = prompt;
    const std::string path = e.base + (o_.chat ? "/chat/completions" : "/completions");
    const std::string payload = body.dump();
    std::string last_problem;
    for (int attempt = 0;; ++attempt) {
      double wait_ms = o_.backoff_ms * std::pow(2.0, attempt) * std::uniform_real_distribution<double>(0.5, 1.5)(jitter);
      auto res = client.Post(path.c_str(), payload, "application/json");
      bool unreachable = false;
      if (!res) {
        last_problem = httplib::to_string(res.error()) + " error";
        unreachable = true;
      } else if (res->status == 200) {
        return parse_response(res->body, e, o_.chat);
      } else if (res->status == 429 || res->status >= 500) {
        last_problem = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
        if (res->has_header("Retry-After")) wait_ms = std::max(wait_ms, 1000.0 * std::atof(res->get_header_value("Retry-After").c_str()));
      } else if (res->status == 401 || res->status == 403) {
        throw InputError(e.url + " refused the request (HTTP " + std::to_string(res->status) + "): " + error_message(res->body) +
                         "\n  hint: put the API key in $" + o_.api_key_env);
      } else if (res->status == 404) {
        throw InputError(e.url + path.substr(e.base.size()) + " answered HTTP 404: " + error_message(res->body) +
                         "\n  hint: check the URL (it should end in /v1) and the model name ('" + model + "')");
      } else {
        Completion c;  // this prompt's problem: too long, bad parameter
        c.finish = "error";
        c.error = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
        return c;
      }
      if (attempt >= o_.retries) {
        const std::string tries = " (after " + std::to_string(attempt + 1) + " tries)";
        if (unreachable) throw RuntimeError("cannot reach " + e.url + ": " + last_problem + tries + "\n  hint: is the server running?");
        throw RuntimeError(e.url + ": " + last_problem + tries);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<std::int64_t>(wait_ms)));
    }
  }

  static Completion parse_response(const std::string& body, const Endpoint& e, bool chat) {
    json j = json::parse(body, nullptr, false);
    auto bad = [&](const std::string& what) {
      return RuntimeError(e.url + " sent a response that is not an OpenAI completion (" + what + ")");
    };
    if (j.is_discarded() || !j.is_object()) throw bad("not JSON");
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) throw bad("no choices");
    const json& choice = j["choices"][0];
    Completion c;
    const json* text = nullptr;
    if (chat) {
      if (choice.contains("message") && choice["message"].is_object() && choice["message"].contains("content")) text = &choice["message"]["content"];
    } else if (choice.contains("text")) {
      text = &choice["text"];
    }
    if (!text || !(text->is_string() || text->is_null())) throw bad(chat ? "no choices[0].message.content" : "no choices[0].text");
    if (text->is_string()) c.text = text->get<std::string>();
    c.finish = choice.contains("finish_reason") && choice["finish_reason"].is_string() ? choice["finish_reason"].get<std::string>() : "stop";
    if (j.contains("usage") && j["usage"].is_object()) {
      c.prompt_tokens = j["usage"].value("prompt_tokens", 0);
      c.completion_tokens = j["usage"].value("completion_tokens", 0);
    }
    return c;
  }

  RemoteOptions o_;
  std::vector<Endpoint> endpoints_;
  std::string api_key_;
  mutable std::mutex name_mutex_;
  mutable std::string model_;
};

}  // namespace

bool is_remote_spec(const std::string& spec) {
  return spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0;
}

std::unique_ptr<LanguageModel> open_remote(const RemoteOptions& options) { return std::make_unique<RemoteModel>(options); }

}  // namespace steper::lm
