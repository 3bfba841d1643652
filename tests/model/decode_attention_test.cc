// The decoding attention kernel against plain LibTorch ops: grouped heads,
// a strided KV-cache window, left padding masked per row, and no mask.
#include <gtest/gtest.h>

#include "decode_attention.h"

namespace {

using steper::model::decode_attention;
using steper::model::decode_attention_supports;

torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  const std::int64_t G = q.size(1) / k.size(1);
  torch::Tensor scores = torch::matmul(q, k.repeat_interleave(G, 1).transpose(-2, -1));
  if (mask.defined()) scores = scores + mask;
  return torch::softmax(scores, -1).matmul(v.repeat_interleave(G, 1));
}

TEST(DecodeAttention, MatchesPlainOpsWithPaddingAndGroupedHeads) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  const std::int64_t B = 3, H = 4, K = 2, S = 37, D = 16;
  torch::Tensor q = torch::randn({B, 1, H, D}).transpose(1, 2);
  // A window of a longer cache, as KVCache::append returns it.
  torch::Tensor k = torch::randn({B, K, S + 9, D}).narrow(2, 0, S);
  torch::Tensor v = torch::randn({B, K, S + 9, D}).narrow(2, 0, S);
  // Row b has its first 5b slots padded, the model's -1e9.
  torch::Tensor mask = torch::zeros({B, 1, 1, S});
  for (std::int64_t b = 0; b < B; ++b) mask[b].narrow(-1, 0, 5 * b).fill_(-1e9f);
  ASSERT_TRUE(decode_attention_supports(q, k, v, mask));
  torch::Tensor got = decode_attention(q, k, v, mask);
  EXPECT_LT((got - reference(q, k, v, mask)).abs().max().item<double>(), 1e-5);

  ASSERT_TRUE(decode_attention_supports(q, k, v, torch::Tensor()));
  got = decode_attention(q, k, v, torch::Tensor());
  EXPECT_LT((got - reference(q, k, v, torch::Tensor())).abs().max().item<double>(), 1e-5);
}

TEST(DecodeAttention, LargeScoresStayFinite) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(12);
  torch::Tensor q = torch::randn({2, 2, 1, 8}) * 30, k = torch::randn({2, 2, 50, 8}) * 30, v = torch::randn({2, 2, 50, 8});
  torch::Tensor got = decode_attention(q, k, v, torch::Tensor());
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  EXPECT_LT((got - reference(q, k, v, torch::Tensor())).abs().max().item<double>(), 1e-4);
}

TEST(DecodeAttention, RefusesWhatItDoesNotHandle) {
  torch::Tensor q = torch::randn({1, 2, 1, 8}), k = torch::randn({1, 2, 5, 8});
  EXPECT_FALSE(decode_attention_supports(torch::randn({1, 2, 2, 8}), k, k, torch::Tensor()));  // two queries per row
  EXPECT_FALSE(decode_attention_supports(q.to(torch::kFloat64), k, k, torch::Tensor()));
  EXPECT_FALSE(decode_attention_supports(q, k, k, torch::zeros({1, 5})));  // a [T,S] mask
  torch::Tensor leaf = q.clone().requires_grad_();
  EXPECT_FALSE(decode_attention_supports(leaf, k, k, torch::Tensor()));  // training needs autograd
}

}  // namespace
