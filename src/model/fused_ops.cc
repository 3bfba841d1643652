// Derivations of the backward passes (n = normalised x, r = 1/rms, C = width):
//   RMSNorm   y = w ∘ n, n = x r:   dw = Σ_rows dy ∘ n,
//                                    dx = r (dn - n · mean(dn ∘ n)), dn = dy ∘ w
//   rope      y_i = x_i c_i + x_{i±D/2} s_i (the partner in the other half):
//                                    dx_j = dy_j c_j + dy_{j±D/2} s_{j±D/2}
//   SwiGLU    y = g σ(g) u:          du = dy g σ(g),
//                                    dg = dy u σ(g) (1 + g (1 - σ(g)))
#include "fused_ops.h"

#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "strided_view.h"
#include "vector_math.h"

namespace steper::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool cpu_float(std::initializer_list<const torch::Tensor*> ts) {
  for (const torch::Tensor* t : ts) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  }
  return true;
}

bool needs_grad(std::initializer_list<const torch::Tensor*> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const torch::Tensor* t : ts) {
    if (t->requires_grad()) return true;
  }
  return false;
}

constexpr std::int64_t kGrainRows = 64, kGrainElements = 1 << 14;

// ---- RMSNorm -------------------------------------------------------------

STEPER_VECTOR_CLONES void rms_norm_rows(const float* x, const float* w, float* y, float* r, std::int64_t rows, int C,
                                        float eps) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * C;
    float* yi = y + i * C;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < C; ++j) ss += xi[j] * xi[j];
    const float ri = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    r[i] = ri;
#pragma omp simd
    for (int j = 0; j < C; ++j) yi[j] = w[j] * (xi[j] * ri);
  }
}

// dx for `rows` rows, and their share of dw added into dw_part.
STEPER_VECTOR_CLONES void rms_norm_backward_rows(const float* x, const float* w, const float* r, const float* dy, float* dx,
                                                 float* dw_part, std::int64_t rows, int C) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * C;
    const float* dyi = dy + i * C;
    float* dxi = dx + i * C;
    const float ri = r[i];
    float dot = 0;  // Σ dn ∘ n
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < C; ++j) {
      const float n = xi[j] * ri;
      dot += dyi[j] * w[j] * n;
      dw_part[j] += dyi[j] * n;
    }
    const float mean = dot / static_cast<float>(C);
#pragma omp simd
    for (int j = 0; j < C; ++j) dxi[j] = ri * (dyi[j] * w[j] - xi[j] * ri * mean);
  }
}

std::pair<torch::Tensor, torch::Tensor> rms_norm_forward(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const int C = static_cast<int>(x.size(-1));
  const std::int64_t rows = x.numel() / C;
  torch::Tensor y = torch::empty_like(x), r = torch::empty({rows}, x.options());
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *yp = y.data_ptr<float>(), *rp = r.data_ptr<float>();
  at::parallel_for(0, rows, kGrainRows, [&](std::int64_t begin, std::int64_t end) {
    rms_norm_rows(xp + begin * C, wp, yp + begin * C, rp + begin, end - begin, C, static_cast<float>(eps));
  });
  return {y, r};
}

struct RMSNormFunction : torch::autograd::Function<RMSNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w, double eps) {
    auto [y, r] = rms_norm_forward(x, w, eps);
    ctx->save_for_backward({x, w, r});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &w = saved[1], &r = saved[2];
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const torch::Tensor dy = grads[0].contiguous();
    const int C = static_cast<int>(x.size(-1));
    const std::int64_t rows = x.numel() / C;
    torch::Tensor dx = torch::empty_like(x);
    // Each chunk of rows sums its own share of dw; the shares are added last.
    const std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>(at::get_num_threads(), rows / kGrainRows));
    torch::Tensor dw_parts = torch::zeros({chunks, C}, x.options());
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *rp = r.data_ptr<float>(), *dyp = dy.data_ptr<float>();
    float *dxp = dx.data_ptr<float>(), *dwp = dw_parts.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t c = c0; c < c1; ++c) {
        const std::int64_t begin = rows * c / chunks, end = rows * (c + 1) / chunks;
        rms_norm_backward_rows(xp + begin * C, wp, rp + begin, dyp + begin * C, dxp + begin * C, dwp + c * C, end - begin, C);
      }
    });
    return {dx, dw_parts.sum(0), torch::Tensor()};
  }
};

// ---- rotary embeddings ---------------------------------------------------

// y = (x c + partner(x) s) * scale, where partner swaps the halves. The
// backward pass is the same loop with the tables' halves swapped as well
// (see the top of the file), so one kernel serves both.
STEPER_VECTOR_CLONES void rope_row(const float* x, const float* c, const float* s, float* y, int half, float scale,
                                   bool backward) {
  if (!backward) {
#pragma omp simd
    for (int i = 0; i < half; ++i) {
      y[i] = (x[i] * c[i] + x[i + half] * s[i]) * scale;
      y[i + half] = (x[i + half] * c[i + half] + x[i] * s[i + half]) * scale;
    }
  } else {
#pragma omp simd
    for (int i = 0; i < half; ++i) {
      y[i] = (x[i] * c[i] + x[i + half] * s[i + half]) * scale;
      y[i + half] = (x[i + half] * c[i + half] + x[i] * s[i]) * scale;
    }
  }
}

// in: [B,H,T,D] (strided); tables [B,T,D] contiguous. The result is a
// [B,H,T,D] view of [B,T,H,D] memory, the layout the heads came in.
torch::Tensor rope_apply(const torch::Tensor& in, const torch::Tensor& cos, const torch::Tensor& sin, float scale,
                         bool backward) {
  const std::int64_t B = in.size(0), H = in.size(1), T = in.size(2), D = in.size(3);
  const torch::Tensor src = last_dim_contiguous(in);
  torch::Tensor out = heads_interleaved(B, H, T, D);
  const StridedView X(src), Y(out);
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  const int half = static_cast<int>(D / 2);
  at::parallel_for(0, B * T, kGrainRows / 4, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t bt = begin; bt < end; ++bt) {
      const std::int64_t b = bt / T, t = bt % T;
      for (std::int64_t h = 0; h < H; ++h) {
        rope_row(X.at(b, h, t), cp + bt * D, sp + bt * D, Y.at(b, h, t), half, scale, backward);
      }
    }
  });
  return out;
}

struct RopeFunction : torch::autograd::Function<RopeFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               double scale) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["scale"] = scale;
    return rope_apply(x, cos, sin, static_cast<float>(scale), false);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    return {rope_apply(grads[0], saved[0], saved[1], scale, true), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// ---- SwiGLU --------------------------------------------------------------

STEPER_VECTOR_CLONES void swiglu_forward_span(const float* g, const float* u, float* y, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) y[i] = g[i] * sigmoid(g[i]) * u[i];
}

STEPER_VECTOR_CLONES void swiglu_backward_span(const float* g, const float* u, const float* dy, float* dg, float* du,
                                               std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(g[i]);
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

torch::Tensor swiglu_forward(const torch::Tensor& g, const torch::Tensor& u) {
  torch::Tensor y = torch::empty_like(g);
  const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, g.numel(), kGrainElements, [&](std::int64_t begin, std::int64_t end) {
    swiglu_forward_span(gp + begin, up + begin, yp + begin, end - begin);
  });
  return y;
}

struct SwiGLUFunction : torch::autograd::Function<SwiGLUFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& g, const torch::Tensor& u) {
    ctx->save_for_backward({g, u});
    return swiglu_forward(g, u);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &g = saved[0], &u = saved[1];
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dg = torch::empty_like(g), du = torch::empty_like(u);
    const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>(), *dyp = dy.data_ptr<float>();
    float *dgp = dg.data_ptr<float>(), *dup = du.data_ptr<float>();
    at::parallel_for(0, g.numel(), kGrainElements, [&](std::int64_t begin, std::int64_t end) {
      swiglu_backward_span(gp + begin, up + begin, dyp + begin, dgp + begin, dup + begin, end - begin);
    });
    return {dg, du};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!cpu_float({&x, &weight}) || x.size(-1) != weight.numel()) {
    const auto dtype = x.scalar_type();
    torch::Tensor xf = dtype == torch::kFloat32 ? x : x.to(torch::kFloat32);
    xf = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return weight * (dtype == torch::kFloat32 ? xf : xf.to(dtype));
  }
  const torch::Tensor xc = x.contiguous(), wc = weight.contiguous();
  if (needs_grad({&x, &weight})) return RMSNormFunction::apply(xc, wc, eps);
  return rms_norm_forward(xc, wc, eps).first;
}

torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin, double scale) {
  const bool fits = x.dim() == 4 && x.size(3) % 2 == 0 && cos.dim() == 3 && cos.sizes() == signed_sin.sizes() &&
                    cos.size(0) == x.size(0) && cos.size(1) == x.size(2) && cos.size(2) == x.size(3);
  if (!fits || !cpu_float({&x, &cos, &signed_sin})) {
    torch::Tensor y = torch::addcmul(x * cos.unsqueeze(1), x.roll(x.size(-1) / 2, -1), signed_sin.unsqueeze(1));
    return scale == 1.0 ? y : y * scale;
  }
  const torch::Tensor c = cos.contiguous(), s = signed_sin.contiguous();
  if (needs_grad({&x})) return RopeFunction::apply(x, c, s, scale);
  return rope_apply(x, c, s, static_cast<float>(scale), false);
}

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
  if (!cpu_float({&gate, &up}) || gate.sizes() != up.sizes()) return torch::nn::functional::silu(gate) * up;
  const torch::Tensor g = gate.contiguous(), u = up.contiguous();
  if (needs_grad({&gate, &up})) return SwiGLUFunction::apply(g, u);
  return swiglu_forward(g, u);
}

}  // namespace steper::model
