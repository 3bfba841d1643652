// The block-wise causal attention kernel against plain LibTorch ops: outputs
// and the gradients of q, k and v, with grouped heads, a cached prefix,
// lengths that are not multiples of the block, and strided inputs.
#include <gtest/gtest.h>

#include "causal_attention.h"

namespace {

using steper::model::fused_attention_supports;
using steper::model::fused_causal_attention;

// softmax(q kᵀ + mask) v with key/value heads repeated to the query heads'.
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const std::int64_t G = q.size(1) / k.size(1), T = q.size(2), S = k.size(2);
  torch::Tensor kk = k.repeat_interleave(G, 1), vv = v.repeat_interleave(G, 1);
  torch::Tensor mask = torch::full({T, S}, -std::numeric_limits<float>::infinity()).triu(S - T + 1);
  return torch::softmax(torch::matmul(q, kk.transpose(-2, -1)) + mask, -1).matmul(vv);
}

struct Case {
  std::int64_t B, H, K, T, S, D;
};

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double tol, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_LT(diff, tol) << what << ": max difference " << diff;
}

class FusedAttention : public ::testing::TestWithParam<Case> {};

TEST_P(FusedAttention, MatchesPlainOpsForwardAndBackward) {
  const Case c = GetParam();
  torch::manual_seed(7);
  // q laid out as the model makes it ([B,T,H,D] memory seen as [B,H,T,D]);
  // k and v a window of a longer cache, as KVCache::append returns them.
  torch::Tensor q = torch::randn({c.B, c.T, c.H, c.D}).transpose(1, 2).mul(0.5).detach().requires_grad_();
  torch::Tensor k_buf = torch::randn({c.B, c.K, c.S + 5, c.D});
  torch::Tensor k = k_buf.narrow(2, 0, c.S).detach().requires_grad_();
  torch::Tensor v = torch::randn({c.B, c.K, c.S + 3, c.D}).narrow(2, 0, c.S).detach().requires_grad_();
  ASSERT_TRUE(fused_attention_supports(q, k, v));

  torch::Tensor grad = torch::randn({c.B, c.H, c.T, c.D});
  torch::Tensor want = reference(q, k, v);
  auto want_grads = torch::autograd::grad({want}, {q, k, v}, {grad});
  torch::Tensor got = fused_causal_attention(q, k, v);
  auto got_grads = torch::autograd::grad({got}, {q, k, v}, {grad});

  expect_close(got, want, 1e-5, "output");
  expect_close(got_grads[0], want_grads[0], 1e-4, "dq");
  expect_close(got_grads[1], want_grads[1], 1e-4, "dk");
  expect_close(got_grads[2], want_grads[2], 1e-4, "dv");

  torch::NoGradGuard no_grad;
  expect_close(fused_causal_attention(q, k, v), want, 1e-5, "output without autograd");
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedAttention,
                         ::testing::Values(Case{2, 4, 2, 45, 45, 16},   // grouped heads, a partial last block
                                           Case{1, 2, 1, 7, 70, 8},     // 63 cached keys before the queries
                                           Case{3, 3, 3, 64, 64, 32},   // whole blocks, one head per key head
                                           Case{2, 4, 4, 1, 1, 16},     // one query, one key
                                           Case{1, 6, 2, 33, 40, 24}));  // cache and queries both off the block size

TEST(FusedAttention, LeavesOtherDevicesAndTypesToLibTorch) {
  torch::Tensor q = torch::randn({1, 2, 4, 8}), k = torch::randn({1, 2, 4, 8});
  EXPECT_FALSE(fused_attention_supports(q.to(torch::kBFloat16), k.to(torch::kBFloat16), k.to(torch::kBFloat16)));
  EXPECT_FALSE(fused_attention_supports(q.transpose(2, 3), k, k));          // last dimension strided
  EXPECT_FALSE(fused_attention_supports(q, k.narrow(2, 0, 3), k.narrow(2, 0, 3)));  // fewer keys than queries
  EXPECT_FALSE(fused_attention_supports(torch::randn({1, 3, 4, 8}), k, k));  // 3 query heads over 2 key heads
}

// Rows far apart in scale: the softmax must subtract each row's own maximum.
TEST(FusedAttention, LargeScoresStayFinite) {
  torch::manual_seed(3);
  torch::Tensor q = torch::randn({1, 1, 40, 16}) * 30, k = torch::randn({1, 1, 40, 16}) * 30, v = torch::randn({1, 1, 40, 16});
  torch::Tensor got = fused_causal_attention(q, k, v);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  expect_close(got, reference(q, k, v), 1e-4, "output");
}

// With two intra-op threads the (batch, head) units run side by side, each
// calling BLAS: the result must not change.
TEST(FusedAttention, TwoThreadsGiveTheSameGradients) {
  torch::manual_seed(5);
  torch::Tensor q = torch::randn({3, 4, 70, 16}).requires_grad_(), k = torch::randn({3, 2, 70, 16}).requires_grad_(),
                v = torch::randn({3, 2, 70, 16}).requires_grad_(), g = torch::randn({3, 4, 70, 16});
  auto grads = [&] { return torch::autograd::grad({fused_causal_attention(q, k, v)}, {q, k, v}, {g}); };
  const int before = torch::get_num_threads();
  const auto one = grads();
  torch::set_num_threads(2);
  const auto two = grads();
  torch::set_num_threads(before);
  for (int i = 0; i < 3; ++i) expect_close(two[static_cast<std::size_t>(i)], one[static_cast<std::size_t>(i)], 1e-6, "gradient");
}

}  // namespace
