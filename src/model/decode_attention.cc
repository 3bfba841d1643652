#include "decode_attention.h"

#include <cfloat>
#include <vector>

#include <ATen/Parallel.h>

#include "strided_view.h"
#include "vector_math.h"

namespace steper::model {
namespace {

constexpr float kSkipped = -FLT_MAX;  // a score marked as a masked key's
constexpr float kMaskedBelow = -1e8f;  // the model masks with -1e9

// One query row against S keys: out = Σ softmax(q·k_s + mask_s) v_s.
// `scores` is scratch of S floats.
STEPER_VECTOR_CLONES void attend_row(const float* q, const float* k, const float* v, std::int64_t key_stride,
                                     const float* mask, int S, int D, float* scores, float* out) {
  float m = kSkipped;
  for (int s = 0; s < S; ++s) {
    if (mask && mask[s] < kMaskedBelow) {
      scores[s] = kSkipped;
      continue;
    }
    const float* ks = k + s * key_stride;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int d = 0; d < D; ++d) dot += q[d] * ks[d];
    if (mask) dot += mask[s];
    scores[s] = dot;
    m = m > dot ? m : dot;
  }
  for (int d = 0; d < D; ++d) out[d] = 0;
  if (m == kSkipped) return;  // no key to see (a padding query): zeros
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int s = 0; s < S; ++s) {
    const float p = scores[s] == kSkipped ? 0.0f : exp_nonpositive(scores[s] - m);
    scores[s] = p;
    sum += p;
  }
  for (int s = 0; s < S; ++s) {
    const float p = scores[s];
    if (p == 0.0f) continue;
    const float* vs = v + s * key_stride;
#pragma omp simd
    for (int d = 0; d < D; ++d) out[d] += p * vs[d];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int d = 0; d < D; ++d) out[d] *= inv;
}

}  // namespace

bool decode_attention_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  for (const torch::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->dim() != 4 || t->stride(3) != 1) return false;
    if (torch::GradMode::is_enabled() && t->requires_grad()) return false;
  }
  if (q.size(2) != 1 || q.size(0) != k.size(0) || k.sizes() != v.sizes() || k.strides() != v.strides() ||
      q.size(3) != k.size(3) || k.size(1) == 0 || q.size(1) % k.size(1) != 0) {
    return false;
  }
  if (!mask.defined()) return true;
  return mask.device().is_cpu() && mask.scalar_type() == torch::kFloat32 && mask.dim() == 4 && mask.size(0) == q.size(0) &&
         mask.size(1) == 1 && mask.size(2) == 1 && mask.size(3) == k.size(2);
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  TORCH_CHECK(decode_attention_supports(q, k, v, mask), "decode_attention: unsupported tensors");
  const std::int64_t B = q.size(0), H = q.size(1), K = k.size(1), S = k.size(2), D = q.size(3), G = H / K;
  torch::Tensor out = torch::empty({B, H, 1, D}, q.options());
  const torch::Tensor m = mask.defined() ? mask.contiguous() : mask;
  const StridedView Q(q), Kv(k), V(v);
  const float* mp = m.defined() ? m.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * H, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(S));
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t b = u / H, h = u % H;
      attend_row(Q.at(b, h), Kv.at(b, h / G), V.at(b, h / G), Kv.s2, mp ? mp + b * S : nullptr,
                 static_cast<int>(S), static_cast<int>(D), scores.data(), op + u * D);
    }
  });
  return out;
}

}  // namespace steper::model
