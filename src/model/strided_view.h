// A [B,X,T,D] float tensor with a contiguous last dimension, as a base
// pointer and strides (elements): how the CPU kernels walk q, k, v and the
// KV cache's windows without copying them.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace steper::model {

struct StridedView {
  float* data;
  std::int64_t s0, s1, s2;
  explicit StridedView(const torch::Tensor& t)
      : data(t.data_ptr<float>()), s0(t.stride(0)), s1(t.stride(1)), s2(t.stride(2)) {}
  float* at(std::int64_t b, std::int64_t x, std::int64_t t = 0) const { return data + b * s0 + x * s1 + t * s2; }
  int ld() const { return static_cast<int>(s2); }  // the row stride, as BLAS takes it
};

inline torch::Tensor last_dim_contiguous(const torch::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

// [B,H,T,D] float32 view over fresh [B,T,H,D] memory (every element gets
// written): the layout the projections make, so that merging heads is free.
inline torch::Tensor heads_interleaved(std::int64_t B, std::int64_t H, std::int64_t T, std::int64_t D) {
  return torch::empty({B, T, H, D}, torch::kFloat32).transpose(1, 2);
}

}  // namespace steper::model
