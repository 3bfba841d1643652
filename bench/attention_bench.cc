// Attention alone, forward and backward: the block-wise kernel
// (causal_attention.cc) against LibTorch's ops (matmul, mask add, softmax,
// matmul) on the shapes of model_bench's training step; then one decoding
// step, the decoding kernel (decode_attention.cc) against the same ops.
//
//   build/bench/attention_bench [THREADS...]     e.g. attention_bench 1 2
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "causal_attention.h"
#include "decode_attention.h"
#include "steper/model.h"

namespace {

using Clock = std::chrono::steady_clock;

// As the model did before the kernel: the query heads sharing a key/value
// head stacked along T, one matmul per key/value head.
torch::Tensor plain(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), K = k.size(1), S = k.size(2);
  torch::Tensor mask = torch::full({T, S}, -1e9f).triu_(S - T + 1);
  torch::Tensor scores = torch::matmul(q.reshape({B, K, H / K * T, D}), k.transpose(-2, -1));
  scores = (scores.view({B, K, H / K, T, S}) + mask).view({B, K, H / K * T, S});
  return torch::softmax(scores, -1).matmul(v).view({B, H, T, D});
}

// One new token per row against S cached keys, with an additive mask
// [B,1,1,S] (left padding) or none.
torch::Tensor plain_decode(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  const std::int64_t B = q.size(0), H = q.size(1), D = q.size(3), K = k.size(1), S = k.size(2);
  torch::Tensor scores = torch::matmul(q.reshape({B, K, H / K, D}), k.transpose(-2, -1));  // [B,K,G,S]
  if (mask.defined()) scores = scores + mask.view({B, 1, 1, S});
  return torch::softmax(scores, -1).matmul(v).view({B, H, 1, D});
}

template <typename F>
double ms_per_call(F&& f, int reps) {
  for (int i = 0; i < 2; ++i) f();
  auto t = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  steper::model::tune_allocator();  // as the steper program does
  std::vector<int> threads;
  for (int i = 1; i < argc; ++i) threads.push_back(std::stoi(argv[i]));
  if (threads.empty()) threads = {torch::get_num_threads()};
  struct Shape {
    const char* name;
    std::int64_t B, H, K, T, S, D;
  };
  const Shape shapes[] = {{"~1M model layer", 16, 4, 4, 256, 256, 32},
                          {"~7M model layer", 16, 8, 8, 256, 256, 32},
                          {"prompt of 640", 1, 4, 2, 640, 640, 64},
                          {"100 after 500", 1, 4, 2, 100, 600, 64}};  // an ircot step after a cached prefix
  for (int n : threads) {
    torch::set_num_threads(n);
    std::printf("%d intra-op thread(s)\n", n);
    for (const Shape& s : shapes) {
      torch::manual_seed(0);
      torch::Tensor q = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_();
      torch::Tensor k = torch::randn({s.B, s.K, s.S, s.D}).requires_grad_();
      torch::Tensor v = torch::randn({s.B, s.K, s.S, s.D}).requires_grad_();
      torch::Tensor g = torch::randn({s.B, s.H, s.T, s.D});
      auto step = [&](auto attend) {
        return [&, attend] {
          torch::Tensor y = attend(q, k, v);
          torch::autograd::grad({y}, {q, k, v}, {g});
        };
      };
      const double a = ms_per_call(step(plain), 10);
      const double b = ms_per_call(step(steper::model::fused_causal_attention), 10);
      std::printf("  %-16s B %lld H %lld K %lld T %lld S %lld D %lld\n", s.name, static_cast<long long>(s.B),
                  static_cast<long long>(s.H), static_cast<long long>(s.K), static_cast<long long>(s.T),
                  static_cast<long long>(s.S), static_cast<long long>(s.D));
      std::printf("    forward+backward  LibTorch ops %7.2f ms  block-wise %7.2f ms  %.2fx\n", a, b, a / b);
      c10::InferenceMode inference;
      const double c = ms_per_call([&] { plain(q, k, v); }, 10);
      const double d = ms_per_call([&] { steper::model::fused_causal_attention(q, k, v); }, 10);
      std::printf("    forward           LibTorch ops %7.2f ms  block-wise %7.2f ms  %.2fx\n", c, d, c / d);
    }
    // Decoding: 600 cached slots (an ircot prompt), 4 query heads on 2
    // key/value heads; in the batch of 32, row b's first 6b slots are padding.
    c10::InferenceMode inference;
    for (std::int64_t B : {1, 32}) {
      torch::manual_seed(0);
      const std::int64_t H = 4, K = 2, S = 600, D = 64;
      torch::Tensor q = torch::randn({B, H, 1, D});
      torch::Tensor k = torch::randn({B, K, S + 24, D}).narrow(2, 0, S), v = torch::randn({B, K, S + 24, D}).narrow(2, 0, S);
      torch::Tensor mask;
      if (B > 1) {
        mask = torch::zeros({B, 1, 1, S});
        for (std::int64_t b = 0; b < B; ++b) mask[b].narrow(-1, 0, 6 * b).fill_(-1e9f);
      }
      const double a = ms_per_call([&] { plain_decode(q, k, v, mask); }, 200);
      const double b = ms_per_call([&] { steper::model::decode_attention(q, k, v, mask); }, 200);
      std::printf("  decoding step     B %lld H %lld K %lld S %lld D %lld%s\n", static_cast<long long>(B), static_cast<long long>(H),
                  static_cast<long long>(K), static_cast<long long>(S), static_cast<long long>(D), B > 1 ? ", padded rows" : "");
      std::printf("    forward           LibTorch ops %7.3f ms  decoding kernel %7.3f ms  %.2fx\n", a, b, a / b);
    }
  }
  return 0;
}
