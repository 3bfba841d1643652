// The memory plan counts what this code allocates, tensor by tensor: the
// activation terms below follow what each operation of llama.cc keeps for
// its backward pass (fused_ops.cc, causal_attention.cc, or LibTorch's ops
// where those do not apply). bench/memory_plan_bench checks the sums
// against measured peak memory.
#include "steper/memory_plan.h"

#include <algorithm>

namespace steper::train {
namespace {

// LoRA factors (A: rank x in, B: out x rank) of one layer.
double lora_per_layer(const model::ModelConfig& c, const PlanOptions& o) {
  const double C = c.hidden_size, I = c.intermediate_size, q = c.num_attention_heads * c.head_dim(),
               kv = c.num_key_value_heads * c.head_dim();
  double n = 0;
  for (const auto& t : o.lora_targets) {
    double in = C, out = C;
    if (t == "q_proj") out = q;
    else if (t == "k_proj" || t == "v_proj") out = kv;
    else if (t == "o_proj") in = q;
    else if (t == "gate_proj" || t == "up_proj") out = I;
    else if (t == "down_proj") in = I;
    else throw InputError("unknown LoRA target '" + t + "'");
    n += o.lora_rank * (in + out);
  }
  return n;
}

// Bytes one decoder layer keeps per token for its backward pass.
double layer_bytes_per_token(const model::ModelConfig& c, const PlanOptions& o, double b) {
  const double C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads, D = c.head_dim(),
               K = c.num_key_value_heads, T = o.max_tokens;
  if (o.fused_kernels) {
    // Both residual streams and both norms' outputs; q and k after RoPE, v;
    // the attention's output and its [B,T,H*D] copy for o_proj; its
    // log-sum-exp; gate, up and their SwiGLU.
    return 4 * (4 * C + 3 * H * D + 2 * K * D + 3 * I + H);
  }
  // Each RMSNorm keeps its float32 input, the normalised rows and its output
  // in the dtype; q, k (after RoPE) and v; the [H, T, T] softmax in float32
  // and its copy in the dtype (one tensor in float32); o_proj's input; gate,
  // up, silu(gate) and the product.
  const double norms = 2 * C * (4 + 2 * b);
  const double attention = b * (2 * H * D + 2 * K * D) + H * T * (4 + (b == 4 ? 0 : b));
  return norms + attention + 4 * I * b;
}

}  // namespace

MemoryPlan plan_memory(const model::ModelConfig& c, const PlanOptions& o) {
  if (o.batch < 1 || o.max_tokens < 1 || o.world_size < 1 || o.lora_rank < 0 || !(o.target_share > 0 && o.target_share <= 1)) {
    throw InputError("a memory plan needs batch, max tokens and world size >= 1, a LoRA rank >= 0 and a target share in (0, 1]");
  }
  const double b = static_cast<double>(model::dtype_size(o.dtype));
  const bool mixed = o.dtype != model::DType::f32;
  const double L = c.num_hidden_layers, C = c.hidden_size, V = c.vocab_size;
  const double lora = o.lora_rank > 0 ? L * lora_per_layer(c, o) : 0;
  MemoryPlan p;
  p.parameters = static_cast<double>(c.parameter_count()) + lora;
  p.trained = o.lora_rank > 0 ? lora : p.parameters;
  const double N = o.world_size;
  p.weights_gb = p.parameters * b;
  if (o.shard_optimizer) {
    // The model's gradients, and this rank's shard of the averaged ones;
    // float32 masters are kept for every dtype (sharded_optimizer.cc).
    p.grads_gb = p.trained * (b + 4 / N);
    p.optimizer_gb = p.trained * 12 / N;
  } else {
    p.grads_gb = p.trained * (b + (mixed ? 4 : 0) + (N > 1 ? 4 : 0));
    p.optimizer_gb = p.trained * (8 + (mixed ? 4 : 0));
  }

  // Activations at the step's three candidate peaks: the end of the forward
  // pass (every layer's saved tensors, the last layer's unfused scores in
  // flight, the logits and their log-softmax), the start of the backward
  // pass (the log-softmax, its gradient, the logits' gradient and its cast
  // to the dtype), and, under recomputation, a layer run again with its
  // backward pass's buffers (the logits' tensors are gone by then).
  const double tokens = static_cast<double>(o.batch) * o.max_tokens;
  const double layer = layer_bytes_per_token(c, o, b) * tokens;
  const double scores = o.fused_kernels ? 0 : 2.0 * c.num_attention_heads * o.max_tokens * 4 * tokens;
  const double kept = o.recompute ? L * C * b * tokens : L * layer;
  const double rows = tokens * o.target_share;  // positions with a loss: the LM head's rows
  const double head = tokens * C * (4 + 2 * b) + rows * C * b;
  const double forward_end = kept + scores + head + rows * V * (b + (mixed ? 4 : 0) + 4);
  const double backward_start = kept + head + rows * V * (12 + (mixed ? b : 0));
  const double in_layer = kept + layer + (o.recompute ? layer + scores : 0);
  p.activations_gb = std::max({forward_end, backward_start, in_layer});

  for (double* x : {&p.weights_gb, &p.grads_gb, &p.optimizer_gb, &p.activations_gb}) *x /= 1e9;
  p.total_gb = p.weights_gb + p.grads_gb + p.optimizer_gb + p.activations_gb;
  return p;
}

}  // namespace steper::train
