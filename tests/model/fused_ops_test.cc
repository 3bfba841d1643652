// The fused RMSNorm, rotary-embedding and SwiGLU kernels against the
// formulas written with plain LibTorch ops in float64: outputs and every
// gradient, for contiguous and strided inputs, with and without autograd.
#include <gtest/gtest.h>

#include "fused_ops.h"

namespace {

using steper::model::rms_norm;
using steper::model::rope;
using steper::model::swiglu;

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tol, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  ASSERT_EQ(got.scalar_type(), torch::kFloat32) << what;
  const double diff = (got.to(torch::kFloat64) - want).abs().max().item<double>();
  EXPECT_LT(diff, tol) << what << ": max difference " << diff;
}

// A float32 leaf and its float64 twin, both requiring grad.
std::pair<torch::Tensor, torch::Tensor> leaf_pair(const torch::Tensor& values) {
  return {values.to(torch::kFloat32).detach().requires_grad_(), values.to(torch::kFloat64).detach().requires_grad_()};
}

TEST(FusedRMSNorm, MatchesPlainOpsForwardAndBackward) {
  torch::manual_seed(3);
  auto [x, x64] = leaf_pair(torch::randn({3, 7, 48}, torch::kFloat64) * 2.5);
  auto [w, w64] = leaf_pair(torch::randn({48}, torch::kFloat64));
  const double eps = 1e-5;
  torch::Tensor want = w64 * (x64 * torch::rsqrt(x64.pow(2).mean(-1, true) + eps));
  torch::Tensor grad = torch::randn({3, 7, 48}, torch::kFloat64);
  auto want_g = torch::autograd::grad({want}, {x64, w64}, {grad});

  torch::Tensor got = rms_norm(x, w, eps);
  auto got_g = torch::autograd::grad({got}, {x, w}, {grad.to(torch::kFloat32)});
  expect_close(got, want, 1e-5, "output");
  expect_close(got_g[0], want_g[0], 1e-4, "dx");
  expect_close(got_g[1], want_g[1], 1e-4, "dweight");

  torch::NoGradGuard no_grad;
  expect_close(rms_norm(x, w, eps), want.detach(), 1e-5, "output without autograd");
}

TEST(FusedRMSNorm, TakesStridedInputAndTinyRows) {
  torch::manual_seed(4);
  // A transposed view, and rows of zeros that only eps keeps finite.
  torch::Tensor base = torch::randn({32, 5}, torch::kFloat64);
  base.select(1, 2).zero_();
  auto [x, x64] = leaf_pair(base);
  torch::Tensor w = torch::ones({32}), w64 = torch::ones({32}, torch::kFloat64);
  torch::Tensor want = w64 * (x64.t() * torch::rsqrt(x64.t().pow(2).mean(-1, true) + 1e-6));
  torch::Tensor got = rms_norm(x.t(), w, 1e-6);
  expect_close(got, want, 1e-5, "output");
  auto want_g = torch::autograd::grad({want.sum()}, {x64});
  auto got_g = torch::autograd::grad({got.sum()}, {x});
  expect_close(got_g[0], want_g[0], 1e-4, "dx");
  EXPECT_TRUE(torch::isfinite(got_g[0]).all().item<bool>());
}

// HF's formulation: x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1).
torch::Tensor rope_reference(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::int64_t h = x.size(-1) / 2;
  torch::Tensor rotated = torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

TEST(FusedRope, MatchesRotateHalfForwardAndBackward) {
  torch::manual_seed(5);
  const std::int64_t B = 2, H = 3, T = 9, D = 16;
  // Each batch row at its own positions, as in a padded batch.
  torch::Tensor angles = torch::rand({B, T, D / 2}, torch::kFloat64) * 20;
  torch::Tensor cos = torch::cat({angles.cos(), angles.cos()}, -1);
  torch::Tensor sin = torch::cat({angles.sin(), angles.sin()}, -1);
  torch::Tensor signed_sin = torch::cat({-angles.sin(), angles.sin()}, -1);
  // x as the model makes it: [B,T,H,D] memory seen as [B,H,T,D].
  auto [xm, xm64] = leaf_pair(torch::randn({B, T, H, D}, torch::kFloat64));
  torch::Tensor x = xm.transpose(1, 2), x64 = xm64.transpose(1, 2);
  const double scale = 0.25;
  torch::Tensor want = rope_reference(x64, cos, sin) * scale;
  torch::Tensor grad = torch::randn({B, H, T, D}, torch::kFloat64);
  auto want_g = torch::autograd::grad({want}, {xm64}, {grad});

  torch::Tensor got = rope(x, cos.to(torch::kFloat32), signed_sin.to(torch::kFloat32), scale);
  auto got_g = torch::autograd::grad({got}, {xm}, {grad.to(torch::kFloat32).transpose(1, 2).contiguous().transpose(1, 2)});
  expect_close(got, want, 1e-5, "output");
  expect_close(got_g[0], want_g[0], 1e-5, "dx");

  torch::NoGradGuard no_grad;
  expect_close(rope(x, cos.to(torch::kFloat32), signed_sin.to(torch::kFloat32), scale), want.detach(), 1e-5,
               "output without autograd");
  // The plain-op path (taken for float64) computes the same.
  torch::Tensor plain = rope(x64, cos, signed_sin, scale);
  EXPECT_LT((plain - want).abs().max().item<double>(), 1e-12);
}

TEST(FusedSwiGLU, MatchesSiluTimesUpIncludingLargeInputs) {
  torch::manual_seed(6);
  torch::Tensor gv = torch::randn({4, 33, 70}, torch::kFloat64) * 3;
  gv.view(-1).narrow(0, 0, 6).copy_(torch::tensor({-100.0, -30.0, -0.0, 0.0, 30.0, 100.0}, torch::kFloat64));
  auto [g, g64] = leaf_pair(gv);
  auto [u, u64] = leaf_pair(torch::randn({4, 33, 70}, torch::kFloat64));
  torch::Tensor want = torch::nn::functional::silu(g64) * u64;
  torch::Tensor grad = torch::randn({4, 33, 70}, torch::kFloat64);
  auto want_g = torch::autograd::grad({want}, {g64, u64}, {grad});

  torch::Tensor got = swiglu(g, u);
  auto got_g = torch::autograd::grad({got}, {g, u}, {grad.to(torch::kFloat32)});
  // Relative to the values' size: g * u reaches a few hundred here.
  expect_close(got, want, 1e-4, "output");
  expect_close(got_g[0], want_g[0], 1e-4, "dgate");
  expect_close(got_g[1], want_g[1], 1e-4, "dup");
  EXPECT_TRUE(torch::isfinite(got_g[0]).all().item<bool>());

  torch::NoGradGuard no_grad;
  expect_close(swiglu(g, u), want.detach(), 1e-4, "output without autograd");
}

TEST(FusedOps, TwoThreadsGiveTheSameGradients) {
  torch::manual_seed(8);
  torch::Tensor x = torch::randn({64, 130, 32}).requires_grad_();  // enough rows for two chunks
  torch::Tensor w = torch::randn({32}).requires_grad_();
  auto run = [&] {
    torch::Tensor y = rms_norm(x, w, 1e-5);
    torch::Tensor z = swiglu(y, y.flip(-1));
    return torch::autograd::grad({z.sum()}, {x, w});
  };
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto one = run();
  at::set_num_threads(2);
  auto two = run();
  at::set_num_threads(before);
  EXPECT_LT((one[0] - two[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((one[1] - two[1]).abs().max().item<double>(), 1e-3 * one[1].abs().max().item<double>());
}

}  // namespace
