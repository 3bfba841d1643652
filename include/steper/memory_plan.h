// steper/memory_plan.h — what training a model takes in memory per rank,
// from its config.json alone: `steper train --plan` and `pretrain --plan`.
// Torch-free (part of train/), so a plan for a 70B model needs no weights.
#pragma once

#include <string>
#include <vector>

#include "steper/model_config.h"

namespace steper::train {

struct PlanOptions {
  model::DType dtype = model::DType::f32;  // the model's: f32, or bf16/f16 in mixed precision. Default: f32
  int batch = 1;             // sequences per micro-batch per rank. Default: 1
  int max_tokens = 2048;     // tokens per sequence. Default: 2048
  // Share of positions that carry a loss: logits are computed there only
  // (distillation's targets; 1 for pretraining). Default: 1
  double target_share = 1.0;
  int world_size = 1;            // data-parallel ranks. Default: 1
  bool shard_optimizer = false;  // ZeRO stage 2 (TrainConfig::shard_optimizer). Default: off
  bool recompute = false;        // activation recomputation. Default: off
  int lora_rank = 0;             // 0: every weight trains. Default: 0
  // LoRA's target projections. Default: the four attention projections
  std::vector<std::string> lora_targets{"q_proj", "k_proj", "v_proj", "o_proj"};
  // CPU float32 runs steper's fused kernels (attention that keeps no T x T
  // scores); anything else runs LibTorch's ops. Default: off (a GPU)
  bool fused_kernels = false;
};

// Bytes per rank, in decimal gigabytes (1e9 bytes), as the training loop
// allocates them at its peak (the backward pass of a step after the first):
//   weights: every parameter (and LoRA factor) in the model's dtype;
//   grads: the trained tensors' gradients in the dtype, plus their float32
//     copies under mixed precision, plus the flat all-reduce buffer with
//     more than one rank; sharded, the gradients in the dtype plus this
//     rank's 1/N of the averaged ones in float32;
//   optimizer: AdamW's two float32 moments, plus float32 master weights
//     under mixed precision; sharded, 1/N of the moments and of float32
//     masters (kept whatever the dtype);
//   activations: what the forward pass keeps for the backward pass (per
//     layer, or each layer's input under recomputation), the logits and
//     their loss, at the largest of the step's peaks (memory_plan.cc).
struct MemoryPlan {
  double weights_gb = 0, grads_gb = 0, optimizer_gb = 0, activations_gb = 0, total_gb = 0;
  double parameters = 0, trained = 0;  // counts
};

MemoryPlan plan_memory(const model::ModelConfig& config, const PlanOptions& options);

}  // namespace steper::train
