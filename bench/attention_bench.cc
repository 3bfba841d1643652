// Attention alone, forward and backward: the block-wise kernel
// (causal_attention.cc) against LibTorch's ops (matmul, mask add, softmax,
// matmul) on the shapes of model_bench's training step.
//
//   build/bench/attention_bench [THREADS...]     e.g. attention_bench 1 2
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "causal_attention.h"
#include "steper/model.h"

namespace {

using Clock = std::chrono::steady_clock;

torch::Tensor plain(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const std::int64_t T = q.size(2);
  torch::Tensor mask = torch::full({T, T}, -1e9f).triu_(1);
  return torch::softmax(torch::matmul(q, k.transpose(-2, -1)) + mask, -1).matmul(v);
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
    std::int64_t B, H, T, D;
  };
  const Shape shapes[] = {{"~1M model layer", 16, 4, 256, 32}, {"~7M model layer", 16, 8, 256, 32}, {"prompt of 640", 1, 4, 640, 64}};
  for (int n : threads) {
    torch::set_num_threads(n);
    std::printf("%d intra-op thread(s)\n", n);
    for (const Shape& s : shapes) {
      torch::manual_seed(0);
      torch::Tensor q = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_();
      torch::Tensor k = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_();
      torch::Tensor v = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_();
      torch::Tensor g = torch::randn({s.B, s.H, s.T, s.D});
      auto step = [&](auto attend) {
        return [&, attend] {
          torch::Tensor y = attend(q, k, v);
          torch::autograd::grad({y}, {q, k, v}, {g});
        };
      };
      const double a = ms_per_call(step(plain), 10);
      const double b = ms_per_call(step(steper::model::fused_causal_attention), 10);
      std::printf("  %-16s [%lld,%lld,%lld,%lld]  fwd+bwd  LibTorch ops %7.2f ms  block-wise %7.2f ms  %.2fx\n", s.name,
                  static_cast<long long>(s.B), static_cast<long long>(s.H), static_cast<long long>(s.T),
                  static_cast<long long>(s.D), a, b, a / b);
    }
  }
  return 0;
}
