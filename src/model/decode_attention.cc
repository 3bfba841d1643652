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

// Row r of s [rows, S] (scores): softmax over the keys the mask leaves,
// in place; zeros for masked keys, and for every key of a row that sees none.
STEPER_VECTOR_CLONES void masked_softmax_rows(float* s, int rows, int S, const float* mask) {
  for (int r = 0; r < rows; ++r) {
    float* row = s + static_cast<std::ptrdiff_t>(r) * S;
    if (mask) {
#pragma omp simd
      for (int i = 0; i < S; ++i) row[i] = mask[i] < kMaskedBelow ? kSkipped : row[i] + mask[i];
    }
    float m = kSkipped;
#pragma omp simd reduction(max : m)
    for (int i = 0; i < S; ++i) m = m > row[i] ? m : row[i];
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < S; ++i) {
      row[i] = row[i] == kSkipped ? 0.0f : exp_nonpositive(row[i] - m);
      sum += row[i];
    }
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
#pragma omp simd
    for (int i = 0; i < S; ++i) row[i] *= inv;
  }
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
  // Work is split by (row, key/value head); out's heads are in order, so
  // key/value head j's G query heads are G consecutive [D] rows of it.
  at::parallel_for(0, B * K, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(G * S));
    const int g = static_cast<int>(G), n = static_cast<int>(S), d = static_cast<int>(D);
    for (std::int64_t u = begin; u < end; ++u) {
      const std::int64_t b = u / K, j = u % K;
      gemm(false, true, g, n, d, 1.0f, Q.at(b, j * G), static_cast<int>(Q.s1), Kv.at(b, j), Kv.ld(), 0.0f, scores.data(), n);
      masked_softmax_rows(scores.data(), g, n, mp ? mp + b * S : nullptr);
      gemm(false, false, g, d, n, 1.0f, scores.data(), n, V.at(b, j), V.ld(), 0.0f, op + u * G * D, d);
    }
  });
  return out;
}

}  // namespace steper::model
