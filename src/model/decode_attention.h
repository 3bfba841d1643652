// Attention for one new token per row (decoding) on the CPU, without BLAS.
// LibTorch 1.13's batched matmul runs a [G,D] x [D,S] product per (row, key
// head) as its own GEMM call, each behind three tensor selects: at 32 rows
// and 4 layers that is 512 tiny GEMMs per step, and the step cost 17 ms
// where its arithmetic needs about 2.
#pragma once

#include <torch/torch.h>

namespace steper::model {

// Whether decode_attention takes these: float32 on the CPU, no autograd,
// one query per row (q [B,H,1,D], k and v [B,K,S,D], last dimension
// contiguous), and a mask that is undefined or additive [B,1,1,S].
bool decode_attention_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

// softmax(q kᵀ + mask) v, query head h reading key/value head h / (H/K);
// q carries the softmax scale already. Keys whose mask is below -1e8 (the
// model's padding) are skipped, not computed. Returns [B,H,1,D].
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

}  // namespace steper::model
