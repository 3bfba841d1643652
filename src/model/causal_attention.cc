// Block-wise causal attention for the CPU (the FlashAttention recipe, with
// BLAS for the products). LibTorch 1.13's path — matmul, mask add, softmax,
// matmul — writes and re-reads [B,H,T,S] scores several times, computes the
// masked upper triangle, and keeps the probabilities for the backward pass.
// Here each (batch, head) is taken 64 query rows at a time: their scores
// against the keys they can see stay in cache, the softmax runs in place,
// and only the row's log-sum-exp is kept; the backward pass recomputes the
// probabilities from it.
//
// Forward, per block of rows r (keys 0..L-1 visible to the block's last row):
//   S = Q_r Kᵀ;  P = softmax(S) with keys past the row's own masked;
//   O_r = P V;  lse_r = log Σ exp(S)
// Backward (Δ_t = dO_t · O_t):
//   P = exp(S - lse);  dV += Pᵀ dO_r;  dP = dO_r Vᵀ;  dS = P ∘ (dP - Δ);
//   dQ_r = dS K;  dK += dSᵀ Q_r
#include "causal_attention.h"
#include "strided_view.h"
#include "vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

namespace steper::model {
namespace {

constexpr int kRows = 64;  // query rows per block: their scores against S keys stay in L2

// Row r of s [rows, L] has `first + r` visible keys (at most L): softmax over
// them in place, zeros after them, and lse[r] = log Σ exp.
STEPER_VECTOR_CLONES void softmax_rows(float* s, int rows, int L, int first, float* lse) {
  for (int r = 0; r < rows; ++r) {
    float* row = s + static_cast<std::ptrdiff_t>(r) * L;
    const int n = std::min(first + r, L);
    float m = row[0];
#pragma omp simd reduction(max : m)
    for (int i = 0; i < n; ++i) m = m > row[i] ? m : row[i];  // (std::max, through references, stays scalar)
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; ++i) {
      row[i] = exp_nonpositive(row[i] - m);
      sum += row[i];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int i = 0; i < n; ++i) row[i] *= inv;
    std::fill(row + n, row + L, 0.0f);
    lse[r] = m + std::log(sum);
  }
}

// The probabilities again, from the scores and each row's log-sum-exp.
STEPER_VECTOR_CLONES void probabilities(float* s, int rows, int L, int first, const float* lse) {
  for (int r = 0; r < rows; ++r) {
    float* row = s + static_cast<std::ptrdiff_t>(r) * L;
    const int n = std::min(first + r, L);
    const float l = lse[r];
#pragma omp simd
    for (int i = 0; i < n; ++i) row[i] = exp_nonpositive(row[i] - l);
    std::fill(row + n, row + L, 0.0f);
  }
}

// dp <- p ∘ (dp - delta[r]), row by row: the softmax's backward.
STEPER_VECTOR_CLONES void softmax_backward(const float* p, float* dp, int rows, int L, const float* delta) {
  for (int r = 0; r < rows; ++r) {
    const float d = delta[r];
    const float* pr = p + static_cast<std::ptrdiff_t>(r) * L;
    float* dr = dp + static_cast<std::ptrdiff_t>(r) * L;
#pragma omp simd
    for (int i = 0; i < L; ++i) dr[i] = pr[i] * (dr[i] - d);
  }
}

struct Shape {
  std::int64_t B, H, K, T, S, D;
  explicit Shape(const torch::Tensor& q, const torch::Tensor& k)
      : B(q.size(0)), H(q.size(1)), K(k.size(1)), T(q.size(2)), S(k.size(2)), D(q.size(3)) {}
  std::int64_t past() const { return S - T; }
};

// out [B,H,T,D] (strided), lse [B,H,T].
void forward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, torch::Tensor& out,
                    torch::Tensor& lse) {
  const Shape sh(q, k);
  const StridedView Q(q), Kv(k), V(v), O(out);
  float* lse_data = lse.data_ptr<float>();
  const std::int64_t G = sh.H / sh.K;
  const int D = static_cast<int>(sh.D);
  at::parallel_for(0, sh.B * sh.H, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> s(static_cast<std::size_t>(kRows * sh.S));
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t b = u / sh.H, h = u % sh.H;
      const float* qp = Q.at(b, h);
      const float* kp = Kv.at(b, h / G);
      const float* vp = V.at(b, h / G);
      float* op = O.at(b, h);
      float* l = lse_data + u * sh.T;
      for (std::int64_t t0 = 0; t0 < sh.T; t0 += kRows) {
        const int rows = static_cast<int>(std::min<std::int64_t>(kRows, sh.T - t0));
        const int L = static_cast<int>(sh.past() + t0 + rows);
        gemm(false, true, rows, L, D, 1.0f, qp + t0 * Q.s2, Q.ld(), kp, Kv.ld(), 0.0f, s.data(), L);
        softmax_rows(s.data(), rows, L, static_cast<int>(sh.past() + t0 + 1), l + t0);
        gemm(false, false, rows, D, L, 1.0f, s.data(), L, vp, V.ld(), 0.0f, op + t0 * O.s2, O.ld());
      }
    }
  });
}

// Gradients of q, k, v. Work is split by (batch, key/value head), so that the
// query heads sharing a key/value head add into its dK and dV one at a time.
void backward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& out,
                     const torch::Tensor& lse, const torch::Tensor& dout, torch::Tensor& dq, torch::Tensor& dk,
                     torch::Tensor& dv) {
  const Shape sh(q, k);
  const StridedView Q(q), Kv(k), V(v), O(out), dO(dout), dQ(dq), dK(dk), dV(dv);
  const float* lse_data = lse.data_ptr<float>();
  const std::int64_t G = sh.H / sh.K;
  const int D = static_cast<int>(sh.D);
  at::parallel_for(0, sh.B * sh.K, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> p(static_cast<std::size_t>(kRows * sh.S)), dp(p.size()), delta(static_cast<std::size_t>(sh.T));
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t b = u / sh.K, j = u % sh.K;
      const float* kp = Kv.at(b, j);
      const float* vp = V.at(b, j);
      float* dkp = dK.at(b, j);
      float* dvp = dV.at(b, j);
      for (std::int64_t h = j * G; h < (j + 1) * G; ++h) {
        const float* qp = Q.at(b, h);
        const float* op = O.at(b, h);
        const float* dop = dO.at(b, h);
        float* dqp = dQ.at(b, h);
        const float* l = lse_data + (b * sh.H + h) * sh.T;
        for (std::int64_t t = 0; t < sh.T; ++t) {
          float acc = 0;
          for (int d = 0; d < D; ++d) acc += dop[t * dO.s2 + d] * op[t * O.s2 + d];
          delta[static_cast<std::size_t>(t)] = acc;
        }
        for (std::int64_t t0 = 0; t0 < sh.T; t0 += kRows) {
          const int rows = static_cast<int>(std::min<std::int64_t>(kRows, sh.T - t0));
          const int L = static_cast<int>(sh.past() + t0 + rows);
          const float* q_r = qp + t0 * Q.s2;
          const float* do_r = dop + t0 * dO.s2;
          gemm(false, true, rows, L, D, 1.0f, q_r, Q.ld(), kp, Kv.ld(), 0.0f, p.data(), L);
          probabilities(p.data(), rows, L, static_cast<int>(sh.past() + t0 + 1), l + t0);
          gemm(true, false, L, D, rows, 1.0f, p.data(), L, do_r, dO.ld(), 1.0f, dvp, dV.ld());
          gemm(false, true, rows, L, D, 1.0f, do_r, dO.ld(), vp, V.ld(), 0.0f, dp.data(), L);
          softmax_backward(p.data(), dp.data(), rows, L, delta.data() + t0);
          gemm(false, false, rows, D, L, 1.0f, dp.data(), L, kp, Kv.ld(), 0.0f, dqp + t0 * dQ.s2, dQ.ld());
          gemm(true, false, L, D, rows, 1.0f, dp.data(), L, q_r, Q.ld(), 1.0f, dkp, dK.ld());
        }
      }
    }
  });
}

std::pair<torch::Tensor, torch::Tensor> attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const Shape sh(q, k);
  torch::Tensor out = heads_interleaved(sh.B, sh.H, sh.T, sh.D);
  torch::Tensor lse = torch::empty({sh.B, sh.H, sh.T}, torch::kFloat32);
  forward_kernel(q, k, v, out, lse);
  return {out, lse};
}

struct CausalAttention : torch::autograd::Function<CausalAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
    auto [out, lse] = attend(q, k, v);
    ctx->save_for_backward({q, k, v, out, lse});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const Shape sh(q, k);
    torch::Tensor dout = last_dim_contiguous(grads[0]);
    torch::Tensor dq = heads_interleaved(sh.B, sh.H, sh.T, sh.D);
    torch::Tensor dk = torch::zeros({sh.B, sh.K, sh.S, sh.D}, torch::kFloat32);
    torch::Tensor dv = torch::zeros({sh.B, sh.K, sh.S, sh.D}, torch::kFloat32);
    backward_kernel(q, k, v, out, lse, dout, dq, dk, dv);
    return {dq, dk, dv};
  }
};

}  // namespace

bool fused_attention_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  for (const torch::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->dim() != 4 || t->stride(3) != 1) return false;
  }
  return q.size(0) == k.size(0) && k.sizes() == v.sizes() && q.size(3) == k.size(3) && k.size(1) > 0 &&
         q.size(1) % k.size(1) == 0 && k.size(2) >= q.size(2);
}

torch::Tensor fused_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(fused_attention_supports(q, k, v), "fused_causal_attention: unsupported tensors");
  const bool grad = torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (!grad) return attend(q, k, v).first;
  return CausalAttention::apply(q, k, v);
}

}  // namespace steper::model
