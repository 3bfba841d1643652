// The remote backend: any OpenAI-compatible endpoint. Each call spreads its
// prompts over `concurrency` worker threads per endpoint, each thread with its
// own connection to each endpoint (httplib clients are not shared across
// threads); prompt i starts at endpoint i mod N.
//
// Failover: a transient failure (connection error, 429, 5xx) marks that
// endpoint down for a backoff that doubles with each consecutive failure
// (with jitter, capped at max_backoff_ms, at least any Retry-After), and the
// prompt moves at once to the next endpoint that is up: a dead endpoint's
// share goes to the others while it is retried now and then. A prompt waits
// only when every endpoint is down, and fails (stopping the run, whose
// finished traces are already written) only once it has failed retries + 1
// times with no endpoint up. A 4xx that concerns one prompt becomes that
// prompt's error completion; one that concerns the whole setup
// (401/403/404) stops the run with a hint.
#include <algorithm>
#include <atomic>
#include <cmath>
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

using Clock = std::chrono::steady_clock;

// What the workers know of one endpoint's health, shared by all of them.
struct Health {
  std::mutex mutex;
  int consecutive_failures = 0;
  Clock::time_point down_until{};
  std::uint64_t ok = 0, errors = 0;
  Clock::time_point first_ok{};
};

class RemoteModel : public LanguageModel {
 public:
  explicit RemoteModel(const RemoteOptions& o) : o_(o) {
    if (o.endpoints.empty()) throw InputError("no endpoint given");
    if (o.concurrency < 1) throw InputError("concurrency must be at least 1");
    if (o.retries < 0) throw InputError("retries must not be negative");
    if (o.backoff_ms < 0 || o.max_backoff_ms < o.backoff_ms) throw InputError("backoff must be at least 0 and at most max_backoff_ms");
    for (const auto& url : o.endpoints) endpoints_.push_back(parse_endpoint(url));
    health_ = std::vector<Health>(endpoints_.size());
    if (const char* key = std::getenv(o.api_key_env.c_str()); key && *key) api_key_ = key;
  }

  std::vector<EndpointStatus> endpoints() const override {
    std::vector<EndpointStatus> out;
    const auto now = Clock::now();
    for (std::size_t e = 0; e < endpoints_.size(); ++e) {
      Health& h = health_[e];
      std::lock_guard<std::mutex> lock(h.mutex);
      EndpointStatus s;
      s.url = endpoints_[e].url;
      s.ok = h.ok;
      s.errors = h.errors;
      s.up = h.down_until <= now;
      const double seconds = h.ok > 1 ? std::chrono::duration<double>(now - h.first_ok).count() : 0;
      s.per_second = seconds > 0 ? static_cast<double>(h.ok - 1) / seconds : 0;
      out.push_back(std::move(s));
    }
    return out;
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
          out[i] = request(clients, i, model, prompts[i], options, jitter);
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

  // The endpoint for a prompt's next try: the first that is up, starting
  // from the prompt's own; when all are down, the one back soonest, after
  // waiting for it. False when all are down and `may_wait` is false.
  bool pick_endpoint(std::size_t start, bool may_wait, std::size_t& chosen) {
    const std::size_t n = endpoints_.size();
    std::size_t soonest = start % n;
    Clock::time_point soonest_at = Clock::time_point::max();
    const auto now = Clock::now();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t e = (start + k) % n;
      std::lock_guard<std::mutex> lock(health_[e].mutex);
      if (health_[e].down_until <= now) {
        chosen = e;
        return true;
      }
      if (health_[e].down_until < soonest_at) {
        soonest_at = health_[e].down_until;
        soonest = e;
      }
    }
    if (!may_wait) return false;
    std::this_thread::sleep_until(soonest_at);
    chosen = soonest;
    return true;
  }

  void mark_failed(std::size_t e, double min_wait_ms, std::mt19937& jitter) {
    Health& h = health_[e];
    std::lock_guard<std::mutex> lock(h.mutex);
    ++h.errors;
    const int k = std::min(h.consecutive_failures++, 30);
    double wait = std::min<double>(o_.max_backoff_ms, o_.backoff_ms * std::pow(2.0, k));
    wait *= std::uniform_real_distribution<double>(0.5, 1.5)(jitter);
    wait = std::max(wait, min_wait_ms);
    h.down_until = Clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(wait));
  }

  void mark_ok(std::size_t e) {
    Health& h = health_[e];
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.ok++ == 0) h.first_ok = Clock::now();
    h.consecutive_failures = 0;
    h.down_until = Clock::time_point{};
  }

  Completion request(std::vector<std::unique_ptr<httplib::Client>>& clients, std::size_t i, const std::string& model,
                     const std::string& prompt, const CompletionOptions& o, std::mt19937& jitter) {
    json body{{"model", model}, {"max_tokens", o.max_tokens}, {"temperature", o.temperature}, {"top_p", o.top_p},
              {"seed", o.seed}, {"stream", false}};
    if (!o.stop.empty()) body["stop"] = o.stop;
    body["prompt"] = prompt;
    if (o.chat_rendered) body["add_special_tokens"] = false;  // the template wrote BOS (vLLM's switch)
    const std::string suffix = "/completions";
    const std::string payload = body.dump();
    std::string last_problem;
    std::size_t last_endpoint = i % endpoints_.size();
    bool unreachable = false;
    // Failures of this prompt; with other endpoints up they cost nothing
    // but the try, and the hard cap keeps flapping endpoints from looping.
    const int budget = o_.retries + 1, hard_cap = budget * static_cast<int>(endpoints_.size()) + budget;
    for (int failures = 0, tries = 0;; ++tries) {
      std::size_t e = 0;
      if (!pick_endpoint(i + static_cast<std::size_t>(tries), failures < budget, e)) break;
      last_endpoint = e;
      if (!clients[e]) clients[e] = connect(endpoints_[e]);
      const Endpoint& ep = endpoints_[e];
      const std::string path = ep.base + suffix;
      auto res = clients[e]->Post(path.c_str(), payload, "application/json");
      double retry_after_ms = 0;
      if (!res) {
        last_problem = httplib::to_string(res.error()) + " error";
        unreachable = true;
      } else if (res->status == 200) {
        mark_ok(e);
        return parse_response(res->body, ep);
      } else if (res->status == 429 || res->status >= 500) {
        last_problem = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
        unreachable = false;
        if (res->has_header("Retry-After")) retry_after_ms = 1000.0 * std::atof(res->get_header_value("Retry-After").c_str());
      } else if (res->status == 401 || res->status == 403) {
        throw InputError(ep.url + " refused the request (HTTP " + std::to_string(res->status) + "): " + error_message(res->body) +
                         "\n  hint: put the API key in $" + o_.api_key_env);
      } else if (res->status == 404) {
        throw InputError(ep.url + suffix + " answered HTTP 404: " + error_message(res->body) +
                         "\n  hint: check the URL (it should end in /v1) and the model name ('" + model + "')");
      } else {
        mark_ok(e);  // the endpoint works; this prompt is the problem (too long, bad parameter)
        Completion c;
        c.finish = "error";
        c.error = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
        return c;
      }
      clients[e].reset();  // a fresh connection next time
      mark_failed(e, retry_after_ms, jitter);
      ++failures;
      if (tries + 1 >= hard_cap) break;
    }
    const Endpoint& ep = endpoints_[last_endpoint];
    const std::string where = endpoints_.size() > 1 ? "every endpoint is down; last " + ep.url : ep.url;
    const std::string tries = " (after " + std::to_string(budget) + (budget == 1 ? " try)" : " tries)");
    if (unreachable) throw RuntimeError("cannot reach " + where + ": " + last_problem + tries + "\n  hint: is the server running?");
    throw RuntimeError(where + ": " + last_problem + tries);
  }

  static Completion parse_response(const std::string& body, const Endpoint& e) {
    json j = json::parse(body, nullptr, false);
    auto bad = [&](const std::string& what) {
      return RuntimeError(e.url + " sent a response that is not an OpenAI completion (" + what + ")");
    };
    if (j.is_discarded() || !j.is_object()) throw bad("not JSON");
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) throw bad("no choices");
    const json& choice = j["choices"][0];
    Completion c;
    const json* text = choice.contains("text") ? &choice["text"] : nullptr;
    if (!text || !(text->is_string() || text->is_null())) throw bad("no choices[0].text");
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
  mutable std::vector<Health> health_;
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
