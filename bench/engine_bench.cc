// The reasoning engine and the server under load.
//  1. steper run (ircot, local backend) over the same questions with 1
//     question in flight vs 32: questions/s and the ratio (target >= 4x).
//  2. steper serve on loopback under C concurrent clients vs 1 client:
//     requests/s, p50/p99 latency, and the mean batch the server formed.
// The model is the tests' tiny one grown to DIM and LAYERS (arguments 2, 3;
// default 256 x 4, 3.3M parameters); throughput, not answers, is measured,
// so training steps are few. Usage: engine_bench [CLIENTS [DIM [LAYERS]]]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "steper/reason.h"
#include "steper/serve.h"
#include "tiny_world.h"

using namespace steper;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A fresh model per run, so that no run finds another's prompts in its
// prefix cache (`prefix_mb` 0: no cache).
double run_questions(const std::string& model_dir, int prefix_mb, retrieve::Retriever& retriever, const std::string& questions,
                     int in_flight, const std::string& out) {
  std::filesystem::remove(out);
  lm::LocalOptions lo;
  lo.prefix_cache_mb = prefix_mb;
  auto local = lm::open_local(model_dir, lo);
  lm::LocalModel& model = *local;
  reason::StrategyOptions o;
  o.max_steps = 3;
  o.step_tokens = 24;
  reason::RunOptions ro;
  ro.in_flight = in_flight;
  const auto t0 = Clock::now();
  auto stats = reason::run(o, model, &retriever, questions, out, ro);
  const double total = seconds_since(t0);
  // Where the time went: what batching can shrink (decoding) and what it
  // cannot (each prompt's own prefill).
  const lm::GenerationTotals g = model.totals();
  std::printf("  %2d in flight: %.2f q/s; of %.2f s, prefill %.2f s (%lld prompt tokens, %lld from the prefix cache), "
              "decoding and the rest %.2f s (%lld steps, %.2f ms each)\n",
              in_flight, static_cast<double>(stats.progress.done) / total, total, g.prefill_seconds,
              static_cast<long long>(g.prompt_tokens), static_cast<long long>(g.reused_tokens), g.seconds - g.prefill_seconds,
              static_cast<long long>(g.decode_steps), 1000 * (g.seconds - g.prefill_seconds) / std::max<double>(1, g.decode_steps));
  return static_cast<double>(stats.progress.done) / total;
}

struct Load {
  double rps, p50_ms, p99_ms;
};

Load load(int port, int clients, int per_client) {
  std::vector<double> latencies;
  std::mutex mu;
  std::atomic<int> failures{0};
  const std::string body = nlohmann::json{{"prompt", "Wikipedia Title: Soraia\nSoraia is a country. Its capital is"},
                                          {"max_tokens", 24}, {"temperature", 0}}.dump();
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(std::chrono::seconds(300));
      for (int i = 0; i < per_client; ++i) {
        const auto ts = Clock::now();
        auto r = client.Post("/v1/completions", body, "application/json");
        if (!r || r->status != 200) {
          if (failures++ == 0) {
            std::fprintf(stderr, "a request failed: %s\n",
                         r ? (std::to_string(r->status) + " " + r->body).c_str() : httplib::to_string(r.error()).c_str());
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        latencies.push_back(1000 * seconds_since(ts));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double total = seconds_since(t0);
  if (failures) std::fprintf(stderr, "%d requests failed\n", failures.load());
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies[std::min(latencies.size() - 1, static_cast<std::size_t>(p * static_cast<double>(latencies.size())))]; };
  return {static_cast<double>(latencies.size()) / total, pct(0.5), pct(0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = argc > 1 ? std::atoi(argv[1]) : 32;
  const int dim = argc > 2 ? std::atoi(argv[2]) : 256;
  const int layers = argc > 3 ? std::atoi(argv[3]) : 4;
  model::tune_allocator();
  testing::TempDir dir;
  std::fprintf(stderr, "building the tiny world and model...\n");
  testing::TinyWorld w = testing::make_tiny_world(dir.path(), 60, dim, layers);
  auto retriever = retrieve::open_retriever(w.index);
  const lm::LocalOptions defaults;
  auto local = lm::open_local(w.model, defaults);
  lm::LocalModel& model = *local;
  std::printf("model: %.2fM parameters; questions: %s\n", static_cast<double>(model.parameters()) / 1e6, w.train.c_str());

  for (int prefix_mb : {0, defaults.prefix_cache_mb}) {
    std::printf("steper run (ircot, local), prefix cache %s:\n", prefix_mb ? "on (the default)" : "off");
    const double one = run_questions(w.model, prefix_mb, *retriever, w.train, 1, dir / "t1.jsonl");
    for (int n : {4, 8, 16}) run_questions(w.model, prefix_mb, *retriever, w.train, n, dir / "tn.jsonl");
    const double many = run_questions(w.model, prefix_mb, *retriever, w.train, 32, dir / "t32.jsonl");
    std::printf("  1 in flight %.2f q/s | 32 in flight %.2f q/s | ratio %.2fx (target >= 4x)\n", one, many, many / one);
  }

  serve::ServeOptions so;
  so.port = 0;
  serve::Server server(model, so);
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  const Load single = load(port, 1, 16);
  const auto before_batches = server.stats().batches.load(), before_prompts = server.stats().batched_prompts.load();
  const Load concurrent = load(port, clients, 8);
  const double mean_batch = static_cast<double>(server.stats().batched_prompts.load() - before_prompts) /
                            static_cast<double>(std::max<std::uint64_t>(1, server.stats().batches.load() - before_batches));
  std::printf("steper serve, 24 new tokens per request: 1 client %.1f req/s (p50 %.0f ms, p99 %.0f ms) | %d clients %.1f req/s "
              "(p50 %.0f ms, p99 %.0f ms), mean batch %.1f | ratio %.2fx\n",
              single.rps, single.p50_ms, single.p99_ms, clients, concurrent.rps, concurrent.p50_ms, concurrent.p99_ms, mean_batch,
              concurrent.rps / single.rps);
  server.stop();
  serving.join();
  return 0;
}
