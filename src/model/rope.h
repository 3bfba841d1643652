// Rotary position embeddings, Hugging Face's non-interleaved layout.
#pragma once

#include <utility>

#include "steper/model.h"

namespace steper::model {

// inv_freq [D/2], float32, with Llama-3.1's scaling when the config asks.
torch::Tensor rope_inverse_frequencies(const ModelConfig& c);
// positions [B,T] (each < `needed`) -> cos, signed sin [B,T,D] in `dtype`;
// the sine's first half is negated, as rope() (fused_ops.h) expects. Looked up in
// `cache` (tables for positions 0..P-1, computed in float32 and grown on
// demand) rather than recomputed at every decoding step.
std::pair<torch::Tensor, torch::Tensor> rope_tables(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                    std::int64_t needed, std::pair<torch::Tensor, torch::Tensor>& cache,
                                                    torch::Dtype dtype);

}  // namespace steper::model
