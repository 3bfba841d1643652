// What the CPU kernels share: BLAS's GEMM on raw pointers, and a [B,X,T,D]
// float tensor with a contiguous last dimension as a base pointer and
// strides (elements), which is how they walk q, k, v and the KV cache's
// windows without copying them.
#pragma once

#include <cstdint>

#include <torch/torch.h>

// The Fortran BLAS entry point, which every BLAS exports (faiss declares it
// the same way); here it is the library LibTorch itself loads.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace steper::model {

// Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C. A row-major matrix
// is its transpose in column-major order, so this is Cᵀ = op(B)ᵀ op(A)ᵀ.
inline void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  sgemm_(&cb, &ca, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

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
