#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "steper/model.h"
#include "steper/reason.h"
#include "steper/serve.h"
#include "tiny_world.h"

namespace steper::serve {
namespace {

using json = nlohmann::json;

// `steper serve`'s server on a free loopback port, for the test's lifetime.
class Running {
 public:
  explicit Running(lm::LocalModel& model, ServeOptions o = {}) {
    o.port = 0;
    if (o.access_log == stderr) o.access_log = nullptr;  // tests that read it give a file
    server_ = std::make_unique<Server>(model, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~Running() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  Server& server() { return *server_; }

 private:
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
};

lm::LocalModel& shared_model() {
  static const auto model = lm::open_local(testing::shared_tiny_world().model);
  return *model;
}

TEST(Serve, RemoteBackendGivesTheLocalGreedyOutputs) {
  const auto& w = testing::shared_tiny_world();
  Running server(shared_model());
  lm::RemoteOptions ro;
  ro.endpoints = {server.url()};
  ro.concurrency = 4;
  auto remote = lm::open_remote(ro);
  EXPECT_EQ(remote->name(), "model");  // asked /v1/models
  auto retriever = retrieve::open_retriever(w.index);
  auto questions = data::read_questions(w.dev);
  questions.resize(6);
  reason::StrategyOptions o;
  o.max_steps = 3;
  o.step_tokens = 20;
  auto local = reason::answer(o, shared_model(), retriever.get(), questions);
  auto over_http = reason::answer(o, *remote, retriever.get(), questions);
  ASSERT_EQ(local.size(), over_http.size());
  for (std::size_t i = 0; i < local.size(); ++i) EXPECT_EQ(data::to_json(local[i]), data::to_json(over_http[i]));
  EXPECT_GT(server.server().stats().batched_prompts.load(), server.server().stats().batches.load());  // requests were batched
}

TEST(Serve, ChatAndStreamingAgreeWithPlainCompletions) {
  Running server(shared_model());
  httplib::Client c("127.0.0.1", server.port());
  json req{{"prompt", "Wikipedia Title: Soraia\nSoraia is a"}, {"max_tokens", 12}, {"temperature", 0}};
  auto plain = c.Post("/v1/completions", req.dump(), "application/json");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  const std::string text = json::parse(plain->body)["choices"][0]["text"];
  EXPECT_FALSE(text.empty());

  json chat{{"messages", {{{"role", "user"}, {"content", req["prompt"]}}}}, {"max_tokens", 12}, {"temperature", 0}};
  auto chat_res = c.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_EQ(chat_res->status, 200) << chat_res->body;
  EXPECT_EQ(json::parse(chat_res->body)["choices"][0]["message"]["content"], text);

  req["stream"] = true;
  std::string streamed, raw;
  auto s = c.Post("/v1/completions", req.dump(), "application/json");
  ASSERT_EQ(s->status, 200);
  EXPECT_EQ(s->get_header_value("Content-Type"), "text/event-stream");
  raw = s->body;
  std::size_t events = 0;
  for (std::size_t at = raw.find("data: "); at != std::string::npos; at = raw.find("data: ", at + 1)) {
    const std::string line = raw.substr(at + 6, raw.find("\n\n", at) - at - 6);
    if (line == "[DONE]") break;
    streamed += json::parse(line)["choices"][0]["text"].get<std::string>();
    ++events;
  }
  EXPECT_EQ(streamed, text);
  EXPECT_GE(events, 2u);
  EXPECT_NE(raw.find("data: [DONE]"), std::string::npos);
}

// With a chat template, /v1/chat/completions renders the messages as vLLM
// does (continue_final_message included) and adds no BOS of its own: the
// answer is the local model's on the rendered text.
TEST(Serve, ChatRequestsGoThroughTheModelsChatTemplate) {
  testing::TempDir dir;
  testing::write_file(dir / "chat.jinja",
                      "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}"
                      "{% if add_generation_prompt %}<|assistant|>\n{% endif %}");
  testing::write_file(dir / "tokenizer_config.json", R"({"bos_token": "<s>"})");
  lm::LocalOptions lo;
  lo.chat_template = dir / "chat.jinja";
  auto model_owner = lm::open_local(testing::shared_tiny_world().model, lo);
  lm::LocalModel& model = *model_owner;
  Running server(model);
  httplib::Client c("127.0.0.1", server.port());
  json messages = json::array({{{"role", "user"}, {"content", "Wikipedia Title: Soraia\nQ: What is Soraia?"}},
                               {{"role", "assistant"}, {"content", "Soraia is a"}}});
  json req{{"messages", messages}, {"max_tokens", 10}, {"temperature", 0}, {"continue_final_message", true},
           {"add_generation_prompt", false}};
  auto res = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string rendered = "<s><|user|>\nWikipedia Title: Soraia\nQ: What is Soraia?<|end|>\n<|assistant|>\nSoraia is a";
  EXPECT_EQ(model.chat_template()->render(nlohmann::ordered_json::parse(messages.dump()), [] {
    text::ChatOptions o;
    o.continue_final_message = true;
    return o;
  }()), rendered);
  lm::CompletionOptions co;
  co.max_tokens = 10;
  co.chat_rendered = true;
  const auto local = model.complete({rendered}, co);
  EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], local[0].text);
  EXPECT_EQ(json::parse(res->body)["usage"]["prompt_tokens"], local[0].prompt_tokens);

  // Both switches at once, and a template error, are the client's mistakes.
  req["add_generation_prompt"] = true;
  auto both = c.Post("/v1/chat/completions", req.dump(), "application/json");
  EXPECT_EQ(both->status, 400) << both->body;
  // A client that rendered the template itself turns BOS off, as with vLLM.
  json plain{{"prompt", rendered}, {"max_tokens", 10}, {"temperature", 0}, {"add_special_tokens", false}};
  auto p = c.Post("/v1/completions", plain.dump(), "application/json");
  ASSERT_EQ(p->status, 200) << p->body;
  EXPECT_EQ(json::parse(p->body)["choices"][0]["text"], local[0].text);
}

TEST(Serve, BadRequestsGet4xxJsonAndTheServerKeepsServing) {
  ServeOptions o;
  o.max_body_bytes = 4096;
  o.max_tokens_limit = 64;
  Running server(shared_model(), o);
  httplib::Client c("127.0.0.1", server.port());
  const std::string long_prompt(3000, 'x');
  const struct {
    std::string path, body;
    int status;
    std::string says;
  } cases[] = {
      {"/v1/completions", "{not json", 400, "not valid JSON"},
      {"/v1/completions", "[1,2]", 400, "JSON object"},
      {"/v1/completions", R"({"max_tokens": 5})", 400, "'prompt' is required"},
      {"/v1/completions", R"({"prompt": 7})", 400, "'prompt' must be a string"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 100000})", 400, "'max_tokens'"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 2.5})", 400, "integer"},
      {"/v1/completions", R"({"prompt": "a", "temperature": -1})", 400, "'temperature'"},
      {"/v1/completions", R"({"prompt": "a", "model": "gpt-9"})", 404, "does not exist"},
      {"/v1/completions", R"({"prompt": "a", "stop": [1]})", 400, "'stop'"},
      {"/v1/completions", json{{"prompt", long_prompt.substr(0, 2000)}}.dump(), 400, "maximum context length"},
      {"/v1/completions", json{{"prompt", long_prompt + long_prompt}}.dump(), 413, "larger than"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user"}]})", 400, "messages[0]"},
      {"/v1/nothing", "{}", 404, "no route"},
  };
  for (const auto& k : cases) {
    auto r = c.Post(k.path.c_str(), k.body, "application/json");
    ASSERT_TRUE(r) << k.body;
    EXPECT_EQ(r->status, k.status) << k.body << " -> " << r->body;
    json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(k.says), std::string::npos) << r->body;
  }
  auto ok = c.Post("/v1/completions", R"({"prompt": "Soraia is", "max_tokens": 4})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto models = c.Get("/v1/models");
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "model");
}

// The requests lm-evaluation-harness's local-completions model sends (its
// request shapes, lm_eval/models/openai_completions.py and api_models.py),
// read back the way it reads them: first the probe for vLLM's tokenizer
// endpoints, then a log-likelihood batch of token-id prompts with echo and
// logprobs 1, then a generation request. The scores must be the model's own
// forward pass; the generations the local model's.
TEST(Serve, LmEvaluationHarnessRequestsGetTheModelsOwnScores) {
  lm::LocalModel& model = shared_model();
  Running server(model);
  httplib::Client c("127.0.0.1", server.port());
  auto info = c.Get("/tokenizer_info");
  ASSERT_EQ(info->status, 200) << info->body;
  EXPECT_EQ(json::parse(info->body)["eos_token"], "</s>");  // its text, which decoding would drop
  EXPECT_EQ(json::parse(info->body)["pad_token"], "<pad>");
  auto tokenize = [&](const std::string& text) {
    auto r = c.Post("/tokenize", json{{"prompt", text}, {"add_special_tokens", false}}.dump(), "application/json");
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["tokens"].get<std::vector<int>>();
  };
  EXPECT_EQ(tokenize("test"), model.tokenizer().encode("test"));
  auto detok = c.Post("/detokenize", json{{"tokens", tokenize("Soraia is a horse")}}.dump(), "application/json");
  EXPECT_EQ(json::parse(detok->body)["prompt"], "Soraia is a horse");

  // (context, continuation) pairs, encoded as the harness does.
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Wikipedia Title: Soraia\nSoraia is a", " horse"},
      {"Q: Who founded the town?\nA:", " The founder of the town was"},
      {"Wikipedia Title: Soraia\n", "Soraia"}};
  json prompts = json::array();
  std::vector<std::size_t> ctxlens;
  std::vector<std::vector<int>> whole;
  for (const auto& [context, continuation] : pairs) {
    std::vector<int> ids = tokenize(context);
    ctxlens.push_back(ids.size());
    for (int id : tokenize(continuation)) ids.push_back(id);
    whole.push_back(ids);
    prompts.push_back(ids);
  }
  {  // and a continuation that is the model's own greedy one
    std::vector<int> ids = tokenize(pairs[0].first);
    lm::CompletionOptions greedy;
    greedy.max_tokens = 3;
    std::vector<int> next = model.complete_tokens({ids}, greedy, nullptr)[0].ids;
    next.erase(std::remove(next.begin(), next.end(), model.tokenizer().eos_id()), next.end());
    ASSERT_FALSE(next.empty());
    ctxlens.push_back(ids.size());
    ids.insert(ids.end(), next.begin(), next.end());
    whole.push_back(ids);
    prompts.push_back(ids);
  }
  json loglikelihood{{"model", "model"}, {"prompt", prompts}, {"temperature", 0}, {"max_tokens", 1},
                     {"logprobs", 1}, {"seed", 1234}, {"echo", true}};
  auto res = c.Post("/v1/completions", loglikelihood.dump(), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  json out = json::parse(res->body);
  ASSERT_EQ(out["choices"].size(), whole.size());
  for (const auto& choice : out["choices"]) {
    const std::size_t i = choice["index"];
    const json& lp = choice["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), whole[i].size() + 1) << "the prompt's tokens and the one generated";
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    // parse_logprobs: the continuation's tokens are [ctxlen:-1].
    double sum = 0;
    bool greedy = true;
    for (std::size_t t = ctxlens[i]; t < whole[i].size(); ++t) {
      const double tok = lp["token_logprobs"][t];
      sum += tok;
      double best = -1e300;
      for (const auto& [piece, v] : lp["top_logprobs"][t].items()) best = std::max(best, v.get<double>());
      greedy = greedy && tok == best;
    }
    // The same from steper's own forward pass over exactly these ids.
    const auto scored = model.score(whole[i], 1);
    double want = 0;
    bool want_greedy = true;
    for (std::size_t t = ctxlens[i]; t < whole[i].size(); ++t) {
      want += scored[t - 1].logprob;
      want_greedy = want_greedy && scored[t - 1].top[0].first == whole[i][t];
    }
    EXPECT_NEAR(sum, want, 1e-4 * std::max(1.0, std::abs(want))) << i;
    std::printf("pair %zu: continuation log-likelihood %.6f over HTTP, %.6f from the forward pass, greedy %d\n", i, sum, want, greedy);
    EXPECT_LT(want, 0);
    EXPECT_EQ(greedy, want_greedy) << i;
    if (i == 3) {
      EXPECT_TRUE(greedy) << "the model's own greedy continuation";
    }
    // Echo: the text is the prompt's, then the token generated.
    EXPECT_EQ(choice["text"].get<std::string>().rfind(model.tokenizer().decode(whole[i]), 0), 0u);
    EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  }

  // generate_until: token ids, greedy, stop strings and the seed.
  json generate{{"prompt", json::array({whole[0]})}, {"model", "model"}, {"max_tokens", 12}, {"temperature", 0},
                {"stop", {"\n\n", json::parse(info->body)["eos_token"]}}, {"seed", 1234}};
  auto gen = c.Post("/v1/completions", generate.dump(), "application/json");
  ASSERT_EQ(gen->status, 200) << gen->body;
  lm::CompletionOptions co;
  co.max_tokens = 12;
  co.stop = generate["stop"].get<std::vector<std::string>>();
  EXPECT_EQ(json::parse(gen->body)["choices"][0]["text"], model.complete_tokens({whole[0]}, co, nullptr)[0].text);
  // Token ids outside the vocabulary are the client's mistake.
  auto bad = c.Post("/v1/completions", json{{"prompt", {1, 2, 1000000}}}.dump(), "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("prompt[2] is 1000000"), std::string::npos) << bad->body;
}

// The rest of what vLLM's clients send: n, seeds, content parts, model ids,
// stream usage, methods, request ids, metrics, the access log, and sampling
// settings steper cannot honour refused by name.
TEST(Serve, TheOpenAIApiAsVllmAnswersIt) {
  testing::TempDir dir;
  const std::string log_path = dir / "access.log";
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  ASSERT_NE(log, nullptr);
  ServeOptions o;
  o.model_path = "/models/tiny/";
  o.access_log = log;
  {
    Running server(shared_model(), o);
    httplib::Client c("127.0.0.1", server.port());
    auto post = [&](const std::string& path, const json& body, httplib::Headers headers = {}) {
      auto r = c.Post(path.c_str(), headers, body.dump(), "application/json");
      EXPECT_TRUE(r);
      return r;
    };
    const std::string prompt = "Wikipedia Title: Soraia\nSoraia is a";
    // n choices, sampled apart; without a seed each request samples afresh.
    auto n3 = post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 1}, {"n", 3}, {"seed", 5}});
    ASSERT_EQ(n3->status, 200) << n3->body;
    json choices = json::parse(n3->body)["choices"];
    ASSERT_EQ(choices.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(choices[i]["index"], i);
    std::set<std::string> unseeded, seeded;
    for (int k = 0; k < 4; ++k) {
      unseeded.insert(json::parse(post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 1}})->body)["choices"][0]["text"]);
      seeded.insert(json::parse(post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 1}, {"seed", 9}})->body)["choices"][0]["text"]);
    }
    EXPECT_GE(unseeded.size(), 2u) << "requests without a seed must not all sample the same text";
    EXPECT_EQ(seeded.size(), 1u);
    // Content parts are text joined by newlines; other parts are refused.
    json parts{{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Wikipedia Title: Soraia"}},
                                                             {{"type", "text"}, {"text", "Soraia is a"}}}}}}},
               {"max_tokens", 6}, {"temperature", 0}};
    json joined{{"prompt", "Wikipedia Title: Soraia\nSoraia is a"}, {"max_tokens", 6}, {"temperature", 0}};
    auto pr = post("/v1/chat/completions", parts);
    ASSERT_EQ(pr->status, 200) << pr->body;
    EXPECT_EQ(json::parse(pr->body)["choices"][0]["message"]["content"],
              json::parse(post("/v1/completions", joined)->body)["choices"][0]["text"]);
    parts["messages"][0]["content"][1] = {{"type", "image_url"}, {"image_url", {{"url", "x"}}}};
    auto img = post("/v1/chat/completions", parts);
    EXPECT_EQ(img->status, 400);
    EXPECT_NE(img->body.find("messages[0].content[1]"), std::string::npos) << img->body;
    // Chat logprobs: a switch and alternatives.
    auto clp = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", prompt}}}}, {"max_tokens", 4},
                                              {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}});
    ASSERT_EQ(clp->status, 200) << clp->body;
    json content = json::parse(clp->body)["choices"][0]["logprobs"]["content"];
    ASSERT_FALSE(content.empty());
    EXPECT_EQ(content[0]["top_logprobs"].size(), 2u);
    EXPECT_LE(content[0]["logprob"].get<double>(), 0);
    // Settings steper does not implement are refused by name.
    for (const json& extra : {json{{"presence_penalty", 0.5}}, json{{"frequency_penalty", 1}}, json{{"logit_bias", {{"5", 10}}}},
                              json{{"suffix", "end"}}, json{{"response_format", {{"type", "json_object"}}}}, json{{"top_k", 5}}}) {
      json body{{"prompt", prompt}};
      body.update(extra);
      auto r = post("/v1/completions", body);
      EXPECT_EQ(r->status, 400) << body.dump();
      EXPECT_EQ(json::parse(r->body)["error"]["param"], extra.begin().key()) << r->body;
    }
    json noop{{"prompt", prompt}, {"max_tokens", 2}, {"presence_penalty", 0}, {"logit_bias", json::object()}};
    EXPECT_EQ(post("/v1/completions", noop)->status, 200);
    // Models: by name, by the --model path, with created; 404 otherwise.
    auto m = c.Get("/v1/models/model");
    ASSERT_EQ(m->status, 200) << m->body;
    EXPECT_GT(json::parse(m->body)["created"].get<std::int64_t>(), 1700000000);
    EXPECT_EQ(c.Get("/v1/models/nope")->status, 404);
    EXPECT_EQ(post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 2}, {"model", "/models/tiny/"}})->status, 200);
    // Streams end with the usage when asked.
    auto s = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", prompt}}}}, {"max_tokens", 5},
                                           {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}});
    ASSERT_EQ(s->status, 200);
    const std::string raw = s->body;
    const std::size_t last = raw.rfind("data: {");
    ASSERT_NE(last, std::string::npos);
    json usage_chunk = json::parse(raw.substr(last + 6, raw.find("\n\n", last) - last - 6));
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_GT(usage_chunk["usage"]["completion_tokens"].get<int>(), 0);
    EXPECT_EQ(post("/v1/completions", {{"prompt", prompt}, {"stream_options", {{"include_usage", true}}}})->status, 400);
    // A known path with the wrong method is a 405 naming the right one.
    auto wrong = c.Get("/v1/completions");
    EXPECT_EQ(wrong->status, 405);
    EXPECT_EQ(wrong->get_header_value("Allow"), "POST");
    // Request ids: the client's echoed, else one made up.
    auto with_id = post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 2}}, {{"X-Request-Id", "trace-42"}});
    EXPECT_EQ(with_id->get_header_value("x-request-id"), "trace-42");
    EXPECT_FALSE(c.Get("/health")->get_header_value("x-request-id").empty());
    // Prometheus text.
    auto metrics = c.Get("/metrics");
    ASSERT_EQ(metrics->status, 200);
    for (const char* line : {"steper_requests_total{path=\"/v1/completions\",status=\"200\"}", "steper_generation_tokens_total ",
                             "steper_queue_depth 0", "steper_batch_size_bucket{le=\"+Inf\"}",
                             "steper_request_duration_seconds_count "}) {
      EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
    }
  }
  std::fclose(log);
  const std::string lines = testing::read_file(log_path);
  EXPECT_NE(lines.find(" trace-42 POST /v1/completions 200 in="), std::string::npos) << lines;
  EXPECT_NE(lines.find(" GET /v1/completions 405 "), std::string::npos) << lines;
}

// Two servers on one port split its requests between them (Debian's httplib
// sets SO_REUSEPORT): the second must stop, unless both opt in.
TEST(Serve, ASecondServerOnATakenPortIsRefused) {
  ServeOptions o;
  Running first(shared_model(), o);
  o.port = first.port();
  Server second(shared_model(), o);
  try {
    second.bind();
    FAIL() << "a second server bound port " << o.port;
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
}

// A stop that comes before the serving thread listens is not lost: the
// test above once hung in ~Running when its thread had not yet begun.
TEST(Serve, AStopBeforeTheServerListensIsNotLost) {
  ServeOptions o;
  o.port = 0;
  o.access_log = nullptr;
  {
    Server s(shared_model(), o);
    s.bind();
    s.stop();
    s.run();  // returns at once
  }
  for (int i = 0; i < 20; ++i) {  // and the race itself: stop just after the thread starts
    Server s(shared_model(), o);
    s.bind();
    std::thread t([&] { s.run(); });
    if (i % 2) std::this_thread::yield();
    s.stop();
    t.join();
  }
}

// Many clients connecting at once must not wait for SYN retransmission:
// httplib's backlog of 5 once put p99 latency at ~1 s under 32 clients.
// Without accepting anything, 64 connections must all be established.
TEST(Serve, ListenBacklogHoldsManySimultaneousConnections) {
  ServeOptions o;
  o.port = 0;
  Server server(shared_model(), o);
  const int port = server.bind();  // listening, but nobody accepts
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fds.push_back(fd);
  }
  int connected = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLOUT, 0};
    int err = 1;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, 300) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++connected;
    ::close(fd);
  }
  EXPECT_EQ(connected, 64);
}

// The body limit holds for chunked bodies too: httplib read a 6 MB chunked
// body in full and the server tokenized it.
TEST(Serve, ChunkedBodiesAreHeldToTheBodyLimit) {
  ServeOptions o;
  o.max_body_bytes = 4096;
  Running server(shared_model(), o);
  httplib::Client c("127.0.0.1", server.port());
  const std::string prompt = json{{"prompt", std::string(64 << 10, 'x')}}.dump();
  auto r = c.Post("/v1/completions",
                  [&](std::size_t offset, httplib::DataSink& sink) {  // no length: sent chunked
                    const std::size_t n = std::min<std::size_t>(1000, prompt.size() - offset);
                    if (n == 0) sink.done();
                    else sink.write(prompt.data() + offset, n);
                    return true;
                  },
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("larger than 4096 bytes"), std::string::npos) << r->body;
  httplib::Client again("127.0.0.1", server.port());
  auto ok = again.Post("/v1/completions", R"({"prompt": "Soraia is", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Clients that open a connection and send part of a request hold only their
// own threads: with 200 of them open, a normal request is answered within a
// second (httplib's 64 fixed workers once made it wait 33 s).
TEST(Serve, SlowClientsDoNotHoldOthersUp) {
  Running server(shared_model());
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string part = "POST /v1/completions HTTP/1.1\r\nHost: slow\r\n";  // and never the rest
    ASSERT_EQ(::send(fd, part.data(), part.size(), MSG_NOSIGNAL), static_cast<ssize_t>(part.size()));
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every one accepted and waiting
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(10, 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = c.Post("/v1/completions", R"({"prompt": "Soraia is", "max_tokens": 4})", "application/json");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int fd : slow) ::close(fd);
  std::printf("a normal request took %.3f s with 200 slow connections open\n", seconds);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(seconds, 1.0);
}

long resident_bytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// A prompt too long for the context by its bytes alone is refused before
// tokenizing, and memory taken by large bodies is given back: 9 prompts of
// 3.9 MB once grew the server from 178 MB to 5.8 GB. steper's allocator
// settings (which keep freed memory for reuse) are the ones under test.
TEST(Serve, LargeRequestsAreRefusedByTheirSizeAndTheirMemoryReturns) {
  model::tune_allocator();
  // The clients live in a child process, so that what is measured here is
  // the server's memory alone.
  int to_child[2], from_child[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(from_child), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int port = 0;
    if (::read(to_child[0], &port, sizeof port) != sizeof port) ::_exit(1);
    const std::string body = json{{"prompt", std::string(3900000, 'a')}}.dump();
    std::atomic<int> refused{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&] {
        httplib::Client c("127.0.0.1", port);
        for (int i = 0; i < 25; ++i) {
          auto r = c.Post("/v1/completions", body, "application/json");
          if (r && r->status == 400 && r->body.find("bytes, more than") != std::string::npos) ++refused;
        }
      });
    }
    for (auto& t : clients) t.join();
    const int n = refused;
    ::_exit(::write(from_child[1], &n, sizeof n) == sizeof n ? 0 : 1);
  }
  ServeOptions o;
  o.max_body_bytes = 8u << 20;
  Running server(shared_model(), o);
  httplib::Client warm("127.0.0.1", server.port());
  ASSERT_EQ(warm.Post("/v1/completions", R"({"prompt": "Soraia is", "max_tokens": 2})", "application/json")->status, 200);
  const long baseline = resident_bytes();
  const int port = server.port();
  ASSERT_EQ(::write(to_child[1], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  int refused = -1;
  ASSERT_EQ(::read(from_child[0], &refused, sizeof refused), static_cast<ssize_t>(sizeof refused));
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(refused, 100);
  const long after = resident_bytes();
  std::printf("resident: %.1f MB before, %.1f MB after 100 requests of 3.9 MB\n", baseline / 1e6, after / 1e6);
  EXPECT_LT(after, baseline + baseline / 10) << "baseline " << baseline;
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
}

// A stand-in endpoint that fails a set number of times before answering.
class Flaky {
 public:
  Flaky(int failures, int status) : failures_(failures), status_(status) {
    http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      if (calls_++ < failures_) {
        res.status = status_;
        res.set_content(R"({"error":{"message":"busy"}})", "application/json");
        return;
      }
      json body = json::parse(req.body);
      res.set_content(json{{"choices", {{{"text", "echo " + body["prompt"].get<std::string>()}, {"finish_reason", "stop"}}}}}.dump(),
                      "application/json");
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~Flaky() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int calls() const { return calls_; }

 private:
  httplib::Server http_;
  std::atomic<int> calls_{0};
  int failures_, status_, port_;
  std::thread thread_;
};

TEST(RemoteBackend, RetriesTransientFailuresThenAnswers) {
  Flaky flaky(2, 503);
  lm::RemoteOptions o;
  o.endpoints = {flaky.url()};
  o.model = "m";
  o.backoff_ms = 5;
  o.concurrency = 1;
  auto remote = lm::open_remote(o);
  auto out = remote->complete({"hi"}, {});
  EXPECT_EQ(out[0].text, "echo hi");
  EXPECT_EQ(flaky.calls(), 3);
}

TEST(RemoteBackend, GivesUpWithAClearErrorAfterItsRetries) {
  Flaky flaky(100, 500);
  lm::RemoteOptions o;
  o.endpoints = {flaky.url()};
  o.model = "m";
  o.backoff_ms = 1;
  o.retries = 2;
  try {
    lm::open_remote(o)->complete({"hi"}, {});
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 500: busy (after 3 tries)"), std::string::npos) << e.what();
  }
}

// A dead endpoint beside a live one: every prompt is answered, the dead
// one's share moving to the live one, and the health report says so.
TEST(RemoteBackend, FailoverMovesADeadEndpointsShareToTheLiveOne) {
  Flaky live(0, 200), flapping(3, 503);
  lm::RemoteOptions o;
  o.endpoints = {"http://127.0.0.1:1/v1", flapping.url(), live.url()};
  o.model = "m";
  o.backoff_ms = 20;
  o.max_backoff_ms = 200;
  o.retries = 1;
  o.concurrency = 2;
  auto remote = lm::open_remote(o);
  std::vector<std::string> prompts;
  for (int i = 0; i < 30; ++i) prompts.push_back("q" + std::to_string(i));
  auto out = remote->complete(prompts, {});
  for (int i = 0; i < 30; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)].text, "echo q" + std::to_string(i));
  auto health = remote->endpoints();
  ASSERT_EQ(health.size(), 3u);
  EXPECT_EQ(health[0].ok, 0u);
  EXPECT_GE(health[0].errors, 1u);
  EXPECT_GE(health[1].errors, 1u);
  EXPECT_LE(health[1].errors, 3u);
  EXPECT_EQ(health[0].ok + health[1].ok + health[2].ok, 30u);
  EXPECT_GT(health[2].ok, 10u);
}

TEST(RemoteBackend, StopsOnlyWhenEveryEndpointIsDown) {
  Flaky down(1000, 503);
  lm::RemoteOptions o;
  o.endpoints = {"http://127.0.0.1:1/v1", down.url()};
  o.model = "m";
  o.backoff_ms = 1;
  o.max_backoff_ms = 4;
  o.retries = 2;
  const auto start = std::chrono::steady_clock::now();
  try {
    lm::open_remote(o)->complete({"hi"}, {});
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("every endpoint is down"), std::string::npos) << e.what();
  }
  // Capped backoff: the failure comes quickly, not after minutes of doubling.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RemoteBackend, UnreachableEndpointAndWrongPathAreNamed) {
  lm::RemoteOptions o;
  o.endpoints = {"http://127.0.0.1:1/v1"};
  o.retries = 0;
  try {
    lm::open_remote(o)->complete({"hi"}, {});
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach http://127.0.0.1:1/v1"), std::string::npos) << e.what();
  }
  Running server(shared_model());
  o.endpoints = {"http://127.0.0.1:" + std::to_string(server.port())};  // no /v1
  o.model = "model";
  try {
    lm::open_remote(o)->complete({"hi"}, {});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("should end in /v1"), std::string::npos) << e.what();
  }
  o.endpoints = {"ftp://x"};
  EXPECT_THROW(lm::open_remote(o), InputError);
}

}  // namespace
}  // namespace steper::serve
