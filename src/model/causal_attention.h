// Causal attention computed block by block on the CPU, forward and backward,
// without materialising the [T,S] scores or the mask.
#pragma once

#include <torch/torch.h>

namespace steper::model {

// Whether fused_causal_attention takes these tensors: float32 on the CPU with
// a contiguous last dimension. Anything else (CUDA, bf16) goes through
// LibTorch's own ops.
bool fused_attention_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// softmax(q kᵀ + causal mask) v for q [B,H,T,D] (the softmax scale already
// applied) and k, v [B,K,S,D] with S >= T and H a multiple of K (query head h
// reads key/value head h / (H/K)). Query t sees keys 0 .. S-T+t: the last T
// keys are the queries' own, any before them a cache. Returns [B,H,T,D], a
// transposed view of [B,T,H,D] memory, so that merging the heads is free.
// Differentiable in q, k and v.
torch::Tensor fused_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace steper::model
