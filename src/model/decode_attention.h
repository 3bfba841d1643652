// Attention for one new token per row (decoding) on the CPU. LibTorch
// 1.13's batched matmul runs the [G,D] x [D,S] product of each (row, key
// head) as its own GEMM behind three tensor selects: at 32 rows and 4 layers,
// 512 GEMMs and 1,536 selects per step. Here each (row, key/value head) is
// two direct BLAS calls, the G query heads that share it as the rows of one
// GEMM, with a vectorised masked softmax between them.
#pragma once

#include <torch/torch.h>

namespace steper::model {

// Whether decode_attention takes these: float32 on the CPU, no autograd,
// one query per row (q [B,H,1,D], k and v [B,K,S,D], last dimension
// contiguous), and a mask that is undefined or additive [B,1,1,S].
bool decode_attention_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

// softmax(q kᵀ + mask) v, query head h reading key/value head h / (H/K);
// q carries the softmax scale already. Keys whose mask is below -1e8 (the
// model's padding) get weight exactly 0, and a row that sees no key gets
// zeros. Returns [B,H,1,D].
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

}  // namespace steper::model
