// The Llama layer's element-wise parts — RMSNorm, rotary embeddings, SwiGLU —
// each one pass over memory forward and one backward, for CPU float32.
// LibTorch 1.13 computes each as a chain of 4 to 10 ops, and each op is a
// full pass over [tokens, width] on one core; in the ~1M model's training
// step they took a third of the time. Other devices and dtypes take the same
// formulas through LibTorch's ops, so the results agree everywhere.
#pragma once

#include <torch/torch.h>

namespace steper::model {

// weight * x / sqrt(mean(x^2) + eps) over the last dimension, in float32.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Rotary embedding of x [B,H,T,D] with tables cos, signed_sin [B,T,D] (the
// sine's first half negated, see rope_tables), times `scale`:
//   (x * cos + roll(x, D/2) * signed_sin) * scale
torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin, double scale);

// silu(gate) * up.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace steper::model
