// steper/model.h — a Llama-architecture transformer in LibTorch, and its
// checkpoints in Hugging Face layout.
//
// Checkpoint folders hold config.json (Hugging Face's Llama fields),
// model.safetensors (or shards listed in model.safetensors.index.json) with
// Hugging Face tensor names, and the tokenizer; so a model trained here loads
// in other tools and the other way round. The config and the files are in
// steper/model_config.h, which needs no torch.
//
// Shapes in comments: B batch, T new tokens, S keys (cached + new),
// C hidden size, H attention heads, K key/value heads, D head size,
// F MLP size, V vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "steper/error.h"
#include "steper/model_config.h"
#include "steper/text.h"

namespace steper::model {

// ---------------------------------------------------------------- runtime

// "cpu", "cuda", "cuda:N". Throws InputError when this LibTorch has no CUDA.
torch::Device parse_device(const std::string& name);
// "float32" | "bfloat16" | "float16".
torch::Dtype parse_dtype_name(const std::string& name);
std::string torch_dtype_name(torch::Dtype dtype);
// The safetensors dtype of a float32, bfloat16 or float16 tensor.
DType file_dtype_of(torch::Dtype dtype);
// Keeps freed tensor memory in the process instead of returning it to the
// OS after every step: glibc otherwise unmaps each large block on free, and
// the next step pays page faults and zeroing for all of it again (~15% of a
// CPU training step here). Call once at start-up.
void tune_allocator();

// A warning when LibTorch runs on the reference BLAS (25x slower matmuls
// than OpenBLAS); empty when all is well.
std::string blas_warning();

// While it lives, LibTorch's intra-op pool and OpenBLAS (when it is the BLAS
// loaded) use `threads` threads in every thread started after it; restores
// both when it goes. For independent jobs run side by side, one thread each:
// on 2 cores a small model's training gains at most a few percent from a
// second thread, while two jobs at once finish 1.7x to 2x sooner
// (bench/distill_bench.cc).
class CpuThreads {
 public:
  explicit CpuThreads(int threads);
  ~CpuThreads();
  CpuThreads(const CpuThreads&) = delete;
  CpuThreads& operator=(const CpuThreads&) = delete;

 private:
  int torch_ = 0, blas_ = 0;
};

// ---------------------------------------------------------------- modules

// Keys and values of every layer for incremental decoding, preallocated for
// `capacity` tokens. The model writes each step's keys at [length, length+T)
// and advance() moves length on once all layers have.
class KVCache {
 public:
  KVCache(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, torch::Device device, torch::Dtype dtype);
  std::int64_t length() const { return length_; }
  std::int64_t capacity() const { return capacity_; }
  // k, v: [B,K,T,D]. Returns the layer's keys and values so far, [B,K,length+T,D].
  std::pair<torch::Tensor, torch::Tensor> append(std::size_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(std::int64_t tokens);
  // Keeps only the rows in `index` [B'] (finished sequences leave the batch).
  void select_rows(const torch::Tensor& index);
  // Rows [begin, begin + n) and slots [slot, capacity) as an empty cache
  // sharing this one's memory: prompts are prefilled a few rows at a time
  // through such views, each starting at the slot that right-aligns it.
  KVCache window(std::int64_t begin, std::int64_t n, std::int64_t slot = 0);
  // The keys and values written so far, [B,K,length,D].
  torch::Tensor keys(std::size_t layer) const { return k_[layer].narrow(2, 0, length_); }
  torch::Tensor values(std::size_t layer) const { return v_[layer].narrow(2, 0, length_); }
  std::size_t layers() const { return k_.size(); }

 private:
  KVCache() = default;
  std::vector<torch::Tensor> k_, v_;  // per layer [B,K,capacity,D]
  std::int64_t length_ = 0, capacity_ = 0;
};

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [..., C] -> [..., C]
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// A low-rank adapter on one projection (LoRA): y = W x + scale * B (A x),
// A [rank, in], B [out, rank]. Kept outside the module's registered
// parameters, so checkpoints and Hugging Face names stay the base model's.
struct LoraAdapter {
  torch::Tensor a, b;
  double scale = 0;
};

// x W^T + b over the last dimension of x, as torch::nn::functional::linear
// (b may be undefined).
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {});

// The projection `l` named `name`, through its adapter when it has one.
torch::Tensor project(torch::nn::Linear& l, const std::map<std::string, LoraAdapter>& lora, const char* name,
                      const torch::Tensor& x);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& c);
  // x [B,T,C]; cos, signed sin [B,T,D]; mask additive float32 (0 or -1e9),
  // [B,1,T,S] or [T,S], or undefined when every query sees every key.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, std::size_t layer);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  std::int64_t heads, kv_heads, head_dim;
  std::map<std::string, LoraAdapter> lora;  // by projection name; empty without LoRA
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::map<std::string, LoraAdapter> lora;
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, std::size_t layer);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

// Hugging Face's LlamaModel: its parameter names are the checkpoint's less
// the "model." prefix that CausalLM adds.
struct LlamaBodyImpl : torch::nn::Module {
  explicit LlamaBodyImpl(const ModelConfig& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBody);

struct CausalLMImpl : torch::nn::Module {
  // `initialise` false skips Hugging Face's N(0, 0.02) start, for a model
  // whose weights are about to be loaded.
  explicit CausalLMImpl(const ModelConfig& c, bool initialise = true);
  // ids [B,T] int64; positions [B,T] int64, each below its slot (cache length
  // + t); key_valid [B,S] bool, S = cache length + T, false for padding, or
  // undefined when no key is padding (skips the mask). -> logits [B,T,V].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& positions, const torch::Tensor& key_valid,
                        KVCache* cache = nullptr);
  // Unpadded sequences from position 0, no cache: training and scoring.
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor hidden(const torch::Tensor& ids);
  // The final hidden states [B,T,C], before the LM head.
  torch::Tensor hidden(const torch::Tensor& ids, const torch::Tensor& positions, const torch::Tensor& key_valid,
                       KVCache* cache);
  torch::Tensor logits(const torch::Tensor& hidden);  // [B,T,C] -> [B,T,V]

  ModelConfig config;
  LlamaBody model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied to model.embed_tokens
  // [D/2] rotary frequencies, float32 on the CPU whatever the model's dtype
  // and device (a plain member, not a buffer, so that to(bf16) leaves it
  // alone: Hugging Face and vLLM keep them in float32 too).
  torch::Tensor inv_freq;
  // Activation recomputation (--recompute): in training, each decoder layer
  // keeps only its input for the backward pass and runs again there, so
  // activation memory is one layer's plus an input per layer.
  bool recompute = false;

 private:
  std::pair<torch::Tensor, torch::Tensor> rope_cache_;  // cos, signed sin [P,D] for positions < P
};
TORCH_MODULE(CausalLM);

// ---------------------------------------------------------------- LoRA

struct LoraConfig {
  int rank = 0;        // 0: no LoRA. Default: 0
  double alpha = 16;   // the update is scaled by alpha / rank. Default: 16
  // Projections that get adapters: q_proj k_proj v_proj o_proj gate_proj
  // up_proj down_proj. Default: the four attention projections.
  std::vector<std::string> targets{"q_proj", "k_proj", "v_proj", "o_proj"};
};

// Freezes every weight of the model and gives each target projection of
// every layer an adapter (A small random, B zero, so the model computes
// what it did before). Throws InputError naming an unknown target.
void add_lora(CausalLM& model, const LoraConfig& config, std::uint64_t seed = 0);
bool has_lora(CausalLM& model);
// The adapters' tensors, with PEFT's names ("model.layers.0.self_attn.q_proj.lora_A.weight").
std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(CausalLM& model);
// Folds each adapter into its weight (W += scale * B A), removes the
// adapters and makes the weights trainable again.
void merge_lora(CausalLM& model);

// ---------------------------------------------------------------- generation

// Keys and values of recently prefilled prompts, so that a prompt starting
// with the tokens of one seen before prefills only what follows: each step
// of a multi-step strategy re-reads the passages the step before read, and
// a chat turn the turns before it. Holds at most `max_tokens` tokens; the
// least recently used prompts go first. Reuse is exact: the keys and values
// of a prefix do not depend on what follows it.
class PrefixCache {
 public:
  explicit PrefixCache(std::int64_t max_tokens = 65536);
  // The longest stored prefix of `ids`, at most `limit` tokens: its length,
  // and per layer its keys and values [1,K,length,D] (views; valid until the
  // next insert). Length 0 when nothing matches.
  std::int64_t match(const std::vector<int>& ids, std::int64_t limit, std::vector<torch::Tensor>* keys,
                     std::vector<torch::Tensor>* values);
  // Stores a prompt's keys and values [1,K,ids.size(),D] per layer (copied).
  // A stored prompt that is a prefix of `ids` is replaced by it.
  void insert(const std::vector<int>& ids, const std::vector<torch::Tensor>& keys, const std::vector<torch::Tensor>& values);
  std::int64_t tokens() const { return tokens_; }
  std::int64_t max_tokens() const { return max_tokens_; }

 private:
  struct Entry {
    std::vector<int> ids;
    std::vector<torch::Tensor> keys, values;
    std::uint64_t used = 0;
  };
  std::vector<Entry> entries_;
  std::int64_t max_tokens_, tokens_ = 0;
  std::uint64_t clock_ = 0;
};

struct GenerateOptions {
  int max_new_tokens = 64;          // Default: 64
  double temperature = 0.0;         // 0: greedy. Default: 0
  double top_p = 1.0;               // nucleus sampling mass, in (0, 1]. Default: 1
  std::uint64_t seed = 0;           // sampling seed; same seed, same text. Default: 0
  std::vector<std::string> stop;    // the text ends before the first of these. Default: none
  bool stop_at_eos = true;          // Default: true
  // Prepend BOS: -1 as the tokenizer's one rule says (Tokenizer::add_bos),
  // 0 never (a chat template wrote it), 1 always.
  int add_bos = -1;
  // Prompts decoded at once; more run in successive batches. Default: 32
  int batch_size = 32;
  // Sees each prompt's completion so far (index into the prompts, decoded
  // text before any stop cut) after every new token: for streaming. Default: none
  std::function<void(std::size_t prompt, const std::string& text)> on_text;
  // Reuses and stores prompts' keys and values across calls. Default: none
  PrefixCache* prefix_cache = nullptr;
};

struct Generation {
  std::string text;         // the completion, cut before any stop string
  std::vector<int> tokens;  // completion tokens (up to and including the one that stopped it)
  std::string finish;       // "stop" | "eos" | "length"
  int prompt_tokens = 0;
};

struct GenerateStats {
  std::int64_t prompt_tokens = 0, new_tokens = 0;
  std::int64_t reused_tokens = 0;  // prompt tokens whose keys and values came from the prefix cache
  std::int64_t decode_steps = 0;   // forward passes of one new token per row
  double seconds = 0, prefill_seconds = 0;  // all of it, and the prompts' forward passes within it
  GenerateStats& operator+=(const GenerateStats& o);
};

// Completes many prompts of different lengths together: left-padded batches,
// one prefill, then one token per step from the KV cache; finished rows leave
// the batch. Throws InputError naming the prompt when one does not fit the
// model's context (max_position_embeddings); completions that would run past
// it stop with finish "length".
std::vector<Generation> generate(CausalLM& model, const text::Tokenizer& tokenizer, const std::vector<std::string>& prompts,
                                 const GenerateOptions& options, GenerateStats* stats = nullptr);
// A text prompt's ids: BOS first as `add_bos` says (GenerateOptions::add_bos:
// -1 the tokenizer's rule, 0 never, 1 always), then the text's.
std::vector<int> encode_prompt(const text::Tokenizer& tokenizer, const std::string& prompt, int add_bos);
// The same for prompts given as token ids, used as they are (add_bos does
// not apply). Throws InputError naming a prompt with an id outside the vocabulary.
std::vector<Generation> generate_tokens(CausalLM& model, const text::Tokenizer& tokenizer, const std::vector<std::vector<int>>& prompts,
                                        const GenerateOptions& options, GenerateStats* stats = nullptr);

// Each token's log-probability given the tokens before it, under the
// model's own distribution (no temperature), and the top_k most likely
// tokens at each place, most likely first. Position t-1 of each tensor is
// about ids[t]: the first token has no context and no score.
struct SequenceScores {
  torch::Tensor logprobs;      // [T-1] float32, on the CPU
  torch::Tensor top_logprobs;  // [T-1,k] float32
  torch::Tensor top_ids;       // [T-1,k] int64
};
// One forward pass over `ids` (as they are: no BOS is added). Throws
// InputError when the sequence is empty, longer than the context, or holds
// an id outside the vocabulary.
SequenceScores score_sequence(CausalLM& model, const std::vector<int>& ids, int top_k);

// ---------------------------------------------------------------- I/O

// generation_config.json's sampling defaults (its end-of-sequence ids join
// ModelConfig::eos_token_ids). Negative: the file does not say.
struct GenerationDefaults {
  double temperature = -1;  // 0 when the file has do_sample false
  double top_p = -1;
};

struct LoadedModel {
  ModelConfig config;
  GenerationDefaults generation;
  CausalLM model{nullptr};
  std::unique_ptr<text::Tokenizer> tokenizer;  // null when the folder has none
};

// Loads DIR/config.json, generation_config.json when present, the weights
// (single or sharded) and the tokenizer, onto `device` in `dtype`. Every
// parameter must be present with its shape; a tensor the model does not have
// is an error (a different architecture). The model is built in `dtype` and
// each parameter replaced by its loaded tensor, so memory holds the model
// once in `dtype` (plus one tensor in flight), never an fp32 copy beside it.
LoadedModel load_model(const std::string& dir, torch::Device device = torch::kCPU, torch::Dtype dtype = torch::kFloat32);

// DIR's weights into `model`'s parameters, each in its own dtype, on
// `device`: the parameters keep their identity (an optimizer's references
// hold), their old values are freed one by one. The same checks as load_model.
void load_weights(CausalLM& model, const std::string& dir, torch::Device device);

// Hugging Face's shard limit (save_pretrained's max_shard_size, "5GB").
constexpr std::uint64_t kMaxShardBytes = 5'000'000'000ULL;

// Writes DIR/config.json and the weights in `dtype`, DIR/model.safetensors or,
// past `max_shard_bytes`, shards with model.safetensors.index.json as
// Hugging Face writes them; copies
// the tokenizer file `tokenizer_file` (tokenizer.model or tokenizer.json)
// into DIR unless it is empty, and completes the Hugging Face folder
// (write_hf_files). config.json's pad_token_id is the tokenizer's when the
// config has none. Tied models omit lm_head.weight.
void save_model(CausalLM& model, const std::string& dir, const std::string& tokenizer_file,
                torch::Dtype dtype = torch::kFloat32, std::uint64_t max_shard_bytes = kMaxShardBytes);

// generation_config.json, tokenizer_config.json (bos, eos, unk, pad,
// add_bos_token, and the chat template when known) and
// special_tokens_map.json in DIR: copied from the folder of
// `tokenizer_file` where it has them (a real model's own), else written
// from `tokenizer` (loaded from that file) and `config`. Only the first
// without a tokenizer.
void write_hf_files(const std::string& dir, const ModelConfig& config, const std::string& tokenizer_file,
                    const text::Tokenizer* tokenizer);

}  // namespace steper::model
