// The Llama architecture (as Hugging Face's modeling_llama computes it):
//   h = embed(ids)
//   per layer:  h = h + o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h))))
//               h = h + down(silu(gate(n2(h))) * up(n2(h)))
//   logits = lm_head(norm(h))
// RMSNorm: x / sqrt(mean(x^2) + eps) * w, computed in float32.
// RoPE: non-interleaved halves (rotate_half), inv_freq_i = theta^(-2i/D),
//   optionally rescaled as Llama-3.1 does (rope.cc).
// Attention: causal, grouped-query (each key/value head serves H/K query
//   heads), scores and softmax in float32 whatever the model dtype.
#include <cmath>

#include "causal_attention.h"
#include "decode_attention.h"
#include "fused_ops.h"
#include "rope.h"
#include "steper/model.h"

namespace steper::model {

namespace F = torch::nn::functional;

RMSNormImpl::RMSNormImpl(std::int64_t dim, double e) : eps(e) { weight = register_parameter("weight", torch::ones({dim})); }

namespace {
// Conversions only where the dtype changes: even a no-op .to() costs a
// dispatch, and decoding one token is mostly dispatches.
torch::Tensor in_dtype(const torch::Tensor& x, torch::Dtype dtype) { return x.scalar_type() == dtype ? x : x.to(dtype); }
}  // namespace

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return rms_norm(x, weight, eps); }

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  // One row (decoding one token): a matrix-vector product. OpenBLAS takes a
  // 1-row x W^T through its small-matrix GEMM, which walks W across rows;
  // gemv reads each row of W once, in order. The 2048 x 256 output layer took
  // 163 us as a GEMM and 28 us as a gemv (one thread, this machine).
  if (x.numel() != w.size(1)) return F::linear(x, w, b);
  std::vector<std::int64_t> sizes = x.sizes().vec();
  sizes.back() = w.size(0);
  torch::Tensor y = torch::mv(w, x.reshape({-1}));
  if (b.defined()) y = y + b;
  return y.view(sizes);
}

namespace {
torch::nn::Linear linear(std::int64_t in, std::int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}
}  // namespace

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim()) {
  q_proj = register_module("q_proj", linear(c.hidden_size, heads * head_dim, c.attention_bias));
  k_proj = register_module("k_proj", linear(c.hidden_size, kv_heads * head_dim, c.attention_bias));
  v_proj = register_module("v_proj", linear(c.hidden_size, kv_heads * head_dim, c.attention_bias));
  o_proj = register_module("o_proj", linear(heads * head_dim, c.hidden_size, false));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask, KVCache* cache, std::size_t layer) {
  const std::int64_t B = x.size(0), T = x.size(1);
  torch::Tensor q = project(q_proj, lora, "q_proj", x).view({B, T, heads, head_dim}).transpose(1, 2);     // [B,H,T,D]
  torch::Tensor k = project(k_proj, lora, "k_proj", x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // [B,K,T,D]
  torch::Tensor v = project(v_proj, lora, "v_proj", x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // [B,K,T,D]
  // The softmax scale goes on q, a T x D tensor, not on the T x S scores.
  q = rope(q, cos, sin, 1.0 / std::sqrt(static_cast<double>(head_dim)));
  k = rope(k, cos, sin, 1.0);
  if (cache) std::tie(k, v) = cache->append(layer, k, v);  // [B,K,S,D]
  // A plain causal mask ([T,S]) where the queries are at least half the keys
  // (training, a prefill without a cached prefix): the block-wise kernel, which
  // skips the masked keys and keeps no scores (causal_attention.cc). A few
  // queries after a long cached prefix have little to skip; there the
  // stacked matmul below was faster (attention_bench: 2.1 against 2.4 ms).
  if (mask.defined() && mask.dim() == 2 && k.size(2) <= 2 * T && fused_attention_supports(q, k, v)) {
    return project(o_proj, lora, "o_proj", fused_causal_attention(q, k, v).transpose(1, 2).reshape({B, T, heads * head_dim}));
  }
  // One new token per row (decoding): two BLAS calls per row and key/value
  // head, where batched matmul put each behind three tensor selects
  // (decode_attention.h).
  if (decode_attention_supports(q, k, v, mask)) {
    return project(o_proj, lora, "o_proj", decode_attention(q, k, v, mask).view({B, 1, heads * head_dim}));
  }
  // Grouped-query attention without repeating keys and values: the G = H/K
  // query heads that share a key/value head are stacked along T, so one
  // matmul per key/value head serves them all. (Repeating k and v copied
  // the whole KV cache at every decoding step: at batch 32 a step took 18x
  // as long as at batch 1.)
  const std::int64_t G = heads / kv_heads, S = k.size(2);
  q = q.reshape({B, kv_heads, G * T, head_dim});                                             // [B,K,G*T,D]
  torch::Tensor scores = in_dtype(torch::matmul(q, k.transpose(-2, -1)), torch::kFloat32);  // [B,K,G*T,S]
  if (mask.defined()) {
    // mask: [T,S] or [B,1,T,S], broadcast over the heads of each group.
    const std::int64_t MB = mask.dim() == 4 ? B : 1;
    scores = (scores.view({B, kv_heads, G, T, S}) + mask.view({MB, 1, 1, T, S})).view({B, kv_heads, G * T, S});
  }
  torch::Tensor att = in_dtype(torch::softmax(scores, -1), v.scalar_type());
  torch::Tensor y = torch::matmul(att, v)                    // [B,K,G*T,D]
                        .view({B, heads, T, head_dim})       // heads in order: kv head j serves j*G .. j*G+G-1
                        .transpose(1, 2)
                        .reshape({B, T, heads * head_dim});
  return project(o_proj, lora, "o_proj", y);
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, false));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size, false));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size, false));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return project(down_proj, lora, "down_proj", swiglu(project(gate_proj, lora, "gate_proj", x), project(up_proj, lora, "up_proj", x)));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(c));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", Mlp(c));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask, KVCache* cache, std::size_t layer) {
  torch::Tensor h = x + self_attn(input_layernorm(x), cos, sin, mask, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

LlamaBodyImpl::LlamaBodyImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c, bool initialise) : config(c) {
  config.validate();
  model = register_module("model", LlamaBody(c));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size, false));
  inv_freq = rope_inverse_frequencies(c);
  if (!initialise) return;
  // Hugging Face's initialisation: N(0, 0.02) for every matrix, zero biases.
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    if (p.key().find("norm") != std::string::npos) continue;
    if (p.value().dim() >= 2) p.value().normal_(0.0, 0.02);
    else p.value().zero_();
  }
}

namespace {

// A decoder layer that keeps only its input for the backward pass and runs
// again there (the reentrant form of activation checkpointing): backward
// recomputes the layer with gradients on and back-propagates through that
// copy, which accumulates into the layer's parameters directly; only the
// input's gradient goes back to the outer graph.
struct RecomputedLayer : torch::autograd::Function<RecomputedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& mask, DecoderLayerImpl* layer) {
    ctx->save_for_backward({x});
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    if (mask.defined()) ctx->saved_data["mask"] = mask;  // a one-token row has none
    ctx->saved_data["layer"] = reinterpret_cast<std::int64_t>(layer);
    return layer->forward(x, cos, sin, mask, nullptr, 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    {
      torch::AutoGradMode enable(true);
      const auto mask = ctx->saved_data.find("mask");
      torch::Tensor y = layer->forward(x, ctx->saved_data["cos"].toTensor(), ctx->saved_data["sin"].toTensor(),
                                       mask == ctx->saved_data.end() ? torch::Tensor() : mask->second.toTensor(), nullptr, 0);
      torch::autograd::backward({y}, {grad[0]});
    }
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor CausalLMImpl::hidden(const torch::Tensor& ids, const torch::Tensor& positions,
                                   const torch::Tensor& key_valid, KVCache* cache) {
  const std::int64_t B = ids.size(0), T = ids.size(1);
  const std::int64_t past = cache ? cache->length() : 0, S = past + T;
  TORCH_CHECK(!key_valid.defined() || (key_valid.size(0) == B && key_valid.size(1) == S),
              "key_valid must be [B, cache length + T], or undefined when every key is valid");
  if (cache && S > cache->capacity()) {
    throw InputError("sequence of " + std::to_string(S) + " tokens exceeds the KV cache's " +
                     std::to_string(cache->capacity()));
  }
  const torch::Dtype dtype = model->embed_tokens->weight.scalar_type();
  // Positions never exceed slots, so S bounds the table without a sync.
  auto [cos, sin] = rope_tables(inv_freq, positions, S, rope_cache_, dtype);  // [B,T,D] each
  // Query t sits at slot past + t and sees the valid keys at slots <= its own.
  // A finite floor, not -inf: a padding query that may see nothing gets a
  // harmless uniform row instead of NaN. No mask at all when one new token
  // sees every key (decoding without padding).
  auto opts = torch::TensorOptions().device(ids.device());
  torch::Tensor mask;
  if (key_valid.defined()) {
    torch::Tensor q_slot = torch::arange(past, S, opts.dtype(torch::kLong)).unsqueeze(1);  // [T,1]
    torch::Tensor k_slot = torch::arange(S, opts.dtype(torch::kLong)).unsqueeze(0);        // [1,S]
    torch::Tensor allowed = (k_slot <= q_slot).unsqueeze(0) & key_valid.unsqueeze(1);      // [B,T,S]
    mask = torch::zeros({B, 1, T, S}, opts.dtype(torch::kFloat32)).masked_fill_(allowed.logical_not().unsqueeze(1), -1e9f);
  } else if (T > 1) {
    mask = torch::full({T, S}, -1e9f, opts.dtype(torch::kFloat32)).triu_(past + 1);  // [T,S], broadcast over B and H
  }
  torch::Tensor h = model->embed_tokens(ids);
  const bool recomputed = recompute && is_training() && torch::GradMode::is_enabled() && !cache;
  // A frozen embedding (LoRA) gives an input without a graph; the layers'
  // adapters still need the backward pass to reach them.
  if (recomputed && !h.requires_grad()) h = h.detach().requires_grad_(true);
  for (std::size_t i = 0; i < model->layers->size(); ++i) {
    auto* layer = model->layers[i]->as<DecoderLayer>();
    h = recomputed ? RecomputedLayer::apply(h, cos, sin, mask, layer) : layer->forward(h, cos, sin, mask, cache, i);
  }
  if (cache) cache->advance(T);
  return model->norm(h);
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& h) {
  return dense(h, lm_head ? lm_head->weight : model->embed_tokens->weight);
}

torch::Tensor CausalLMImpl::forward(const torch::Tensor& ids, const torch::Tensor& positions,
                                    const torch::Tensor& key_valid, KVCache* cache) {
  return logits(hidden(ids, positions, key_valid, cache));
}

torch::Tensor CausalLMImpl::hidden(const torch::Tensor& ids) {
  const std::int64_t B = ids.size(0), T = ids.size(1);
  auto opts = torch::TensorOptions().device(ids.device());
  torch::Tensor positions = torch::arange(T, opts.dtype(torch::kLong)).unsqueeze(0).expand({B, T});
  return hidden(ids, positions, torch::Tensor(), nullptr);
}

torch::Tensor CausalLMImpl::forward(const torch::Tensor& ids) { return logits(hidden(ids)); }

}  // namespace steper::model
