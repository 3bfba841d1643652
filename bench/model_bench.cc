// Model benchmark: training throughput and batch-1 / batched decoding of
// steper's Llama, against the same model and step written in PyTorch eager
// mode on Debian's python3-torch (same LibTorch), run in the same session.
// Also the training's achieved GFLOP/s as a share of a plain matmul's.
//
// The machine's speed drifts by tens of percent within minutes (a shared
// VM), so each size is measured in rounds, steper then Python in each, and
// the ratios reported are the median over rounds with their range.
//
//   build/bench/model_bench [--steps N] [--decode N] [--rounds N] [--threads N] [--size ~1M|~7M] [--trace FILE]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "steper/model.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Size {
  const char* name;
  int dim, layers, heads, kv_heads, ffn, vocab;
};
constexpr Size kSizes[] = {{"~1M", 128, 4, 4, 4, 352, 1024}, {"~7M", 256, 8, 8, 8, 704, 2048}};
constexpr int kSeq = 256, kBatch = 16;

// A 1024^3 float32 matmul, the ceiling a model's matrix work can approach.
double matmul_gflops() {
  torch::Tensor a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  for (int i = 0; i < 3; ++i) torch::matmul(a, b);
  auto t = Clock::now();
  const int n = 20;
  for (int i = 0; i < n; ++i) torch::matmul(a, b);
  return n * 2.0 * 1024 * 1024 * 1024 / since(t) / 1e9;
}

steper::model::ModelConfig config_of(const Size& s) {
  steper::model::ModelConfig c;
  c.hidden_size = s.dim;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.intermediate_size = s.ffn;
  c.vocab_size = s.vocab;
  c.max_position_embeddings = 1024;
  return c;
}

nlohmann::json python_side(const Size& s, int steps, int decode) {
  char cmd[512];
  std::snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/model_bench.py %d %d %d %d %d %d %d %d %d %d", STEPER_BENCH_DIR, s.dim,
                s.layers, s.heads, s.kv_heads, s.ffn, s.vocab, kSeq, kBatch, steps, decode);
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd, "r"), pclose);
  std::string out;
  char buf[4096];
  while (p && std::fgets(buf, sizeof buf, p.get())) out += buf;
  return nlohmann::json::parse(out);
}

// Token ids straight from bytes: decoding speed needs no real tokenizer.
struct IdTokenizer final : steper::text::Tokenizer {
  int v;
  explicit IdTokenizer(int vocab) : v(vocab) {}
  std::vector<int> encode(const std::string& str) const override {
    std::vector<int> ids;
    for (unsigned char ch : str) ids.push_back(ch % v);
    return ids;
  }
  std::string decode(const std::vector<int>&) const override { return {}; }
  int vocab_size() const override { return v; }
  int bos_id() const override { return -1; }
  int eos_id() const override { return -1; }
  bool add_bos() const override { return false; }
  std::string kind() const override { return "ids"; }
};

struct SteperFigures {
  double train_tps, train_gflops, decode1, decode32;  // tokens/s, GFLOP/s, tokens/s at batch 1 and 32
};

// One round of steper's side: `steps` timed training steps of a fresh model,
// then greedy decoding of 16-token prompts, one alone and 32 at once.
SteperFigures measure_steper(const Size& s, int steps, int decode, const std::string& trace) {
  const steper::model::ModelConfig c = config_of(s);
  torch::manual_seed(0);
  steper::model::CausalLM m(c);
  // Weight decay on every parameter, exactly as model_bench.py does.
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).weight_decay(0.1));
  torch::Tensor data = torch::randint(0, c.vocab_size, {kBatch, kSeq + 1});
  auto step = [&] {
    torch::Tensor logits = m->forward(data.narrow(1, 0, kSeq));
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, c.vocab_size}), data.narrow(1, 1, kSeq).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  if (!trace.empty()) {  // LibTorch's op-level profile of a few steps, as a chrome://tracing file
    torch::autograd::profiler::RecordProfile guard(trace);
    for (int i = 0; i < 3; ++i) step();
  }
  auto t = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  SteperFigures f;
  f.train_tps = steps * kBatch * kSeq / since(t);
  // 6 N per token for the matrices, 12 L T C for attention (fwd + bwd).
  const double flops_per_token = 6.0 * static_cast<double>(c.parameter_count()) + 12.0 * s.layers * kSeq * s.dim;
  f.train_gflops = f.train_tps * flops_per_token / 1e9;

  IdTokenizer tok(c.vocab_size);
  steper::model::GenerateOptions g;
  g.max_new_tokens = decode;
  g.stop_at_eos = false;
  steper::model::GenerateStats one, many;
  steper::model::generate(m, tok, {"0123456789abcdef"}, g, &one);
  std::vector<std::string> prompts(32, "0123456789abcdef");
  steper::model::generate(m, tok, prompts, g, &many);
  f.decode1 = static_cast<double>(one.new_tokens) / one.seconds;
  f.decode32 = static_cast<double>(many.new_tokens) / many.seconds;
  return f;
}

// Median and range of a few figures, as "1.23x (1.10-1.31 over 3 rounds)".
std::string summary(std::vector<double> v, const char* unit) {
  std::sort(v.begin(), v.end());
  const double median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f%s (%.2f-%.2f over %zu rounds)", median, unit, v.front(), v.back(), v.size());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 10, decode = 128, rounds = 3;
  std::string only;   // one size's name, to profile it alone
  std::string trace;  // where to write an op-level profile of steper's training step
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--steps") steps = std::stoi(argv[i + 1]);
    else if (k == "--decode") decode = std::stoi(argv[i + 1]);
    else if (k == "--rounds") rounds = std::max(1, std::stoi(argv[i + 1]));
    else if (k == "--size") only = argv[i + 1];
    else if (k == "--trace") trace = argv[i + 1];
    else if (k == "--threads") torch::set_num_threads(std::stoi(argv[i + 1]));  // steper's side only
  }
  steper::model::tune_allocator();  // as the steper program does
  if (std::string w = steper::model::blas_warning(); !w.empty()) std::printf("WARNING: %s\n", w.c_str());
  std::printf("model benchmark: batch %d x %d tokens, AdamW, float32, %d intra-op threads; plain 1024^3 matmul %.1f GFLOP/s\n\n",
              kBatch, kSeq, torch::get_num_threads(), matmul_gflops());
  for (const Size& s : kSizes) {
    if (!only.empty() && only != s.name) continue;
    const steper::model::ModelConfig c = config_of(s);
    std::vector<double> train_ratio, decode_ratio, share, batch_gain;
    std::printf("%s model (%.2fM parameters)\n", s.name, static_cast<double>(c.parameter_count()) / 1e6);
    for (int round = 0; round < rounds; ++round) {
      // The ceiling is measured again each round: the machine's speed drifts.
      const double peak = matmul_gflops();
      const SteperFigures f = measure_steper(s, steps, decode, trace);
      nlohmann::json py = python_side(s, steps, decode);
      const double py_train = py["train_tokens_per_s"], py_decode = py["decode_tokens_per_s"];
      std::printf("  round %d  training steper %6.0f  python %6.0f tok/s (%.2fx, %.0f%% of matmul)   decode b=1 steper %5.0f  python %5.0f tok/s (%.2fx)   b=32 %6.0f tok/s\n",
                  round + 1, f.train_tps, py_train, f.train_tps / py_train, 100 * f.train_gflops / peak, f.decode1, py_decode,
                  f.decode1 / py_decode, f.decode32);
      std::fflush(stdout);
      train_ratio.push_back(f.train_tps / py_train);
      decode_ratio.push_back(f.decode1 / py_decode);
      share.push_back(100 * f.train_gflops / peak);
      batch_gain.push_back(f.decode32 / f.decode1);
    }
    std::printf("  training   steper/python %s\n", summary(train_ratio, "x").c_str());
    std::printf("  training   GFLOP/s / plain matmul's  %s\n", summary(share, "%").c_str());
    std::printf("  decode b=1 steper/python %s\n", summary(decode_ratio, "x").c_str());
    std::printf("  decode b=32 / b=1        %s\n\n", summary(batch_gain, "x").c_str());
  }
  return 0;
}
