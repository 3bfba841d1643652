// steper/model.h — a Llama-architecture transformer in LibTorch, and its
// checkpoints in Hugging Face layout.
//
// Checkpoint folders hold config.json (Hugging Face's Llama fields),
// model.safetensors (or shards listed in model.safetensors.index.json) with
// Hugging Face tensor names, and the tokenizer; so a model trained here loads
// in other tools and the other way round. The safetensors reader and writer
// are our own: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw data.
//
// Shapes in comments: B batch, T new tokens, S keys (cached + new),
// C hidden size, H attention heads, K key/value heads, D head size,
// F MLP size, V vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "steper/error.h"
#include "steper/text.h"

namespace steper::model {

enum class DType { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

// "F32", "F16", "BF16", ...; throws InputError for other names.
DType parse_dtype(const std::string& name);
std::string dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// One tensor inside a mapped file: valid while the file object lives.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const std::byte* data;
  std::size_t bytes;
  std::int64_t numel() const;
  // The values as float32, converting F16 and BF16. REQUIRES: a float dtype.
  std::vector<float> to_floats() const;
};

// A safetensors file, memory-mapped read-only and validated on open: the
// header length fits the file, the header is a JSON object of well-formed
// entries, each tensor's shape times its dtype size equals its byte range,
// the ranges lie inside the data and cover it without gaps or overlaps.
// Throws InputError "PATH: ..." saying what is wrong.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in data order
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorData {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const void* data;  // little-endian values, numel * dtype_size bytes
};

// Writes a safetensors file the way Hugging Face's library does (header
// padded with spaces to 8 bytes, tensors in the given order). Written to
// PATH.partial and renamed, so a crash never leaves a torn checkpoint.
// Throws InputError for duplicate names, RuntimeError for I/O failures.
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A checkpoint folder's weights: model.safetensors, or the shards that
// model.safetensors.index.json maps each tensor name to.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  const TensorView* find(const std::string& name) const;
  // Throws InputError naming the tensor and the folder when it is absent.
  const TensorView& get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// IEEE half and bfloat16 conversions (round to nearest even).
float f16_to_f32(std::uint16_t h);
float bf16_to_f32(std::uint16_t b);
std::uint16_t f32_to_f16(float f);
std::uint16_t f32_to_bf16(float f);

// ---------------------------------------------------------------- config

// What a model is: Hugging Face's LlamaConfig fields, same names in config.json.
struct ModelConfig {
  int vocab_size = 8000;
  int hidden_size = 256;              // C
  int intermediate_size = 688;        // F (SwiGLU)
  int num_hidden_layers = 4;
  int num_attention_heads = 4;        // H
  int num_key_value_heads = 4;        // K; < H is grouped-query attention. REQUIRES: H % K == 0
  int max_position_embeddings = 2048;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  // Llama-3.1's RoPE frequency scaling ("rope_type": "llama3"); off when factor <= 0.
  double rope_scaling_factor = 0;
  double rope_low_freq_factor = 1;
  double rope_high_freq_factor = 4;
  int rope_original_max_position = 8192;
  bool tie_word_embeddings = false;   // lm_head shares embed_tokens' weight
  bool attention_bias = false;        // biases on q/k/v (Qwen2)
  int bos_token_id = 1;
  int eos_token_id = 2;
  std::string model_type = "llama";   // "llama" | "qwen2"

  int head_dim() const { return hidden_size / num_attention_heads; }  // D
  // Throws InputError naming the field that makes no sense.
  void validate() const;
  std::int64_t parameter_count() const;
};

ModelConfig read_model_config(const std::string& config_json);
void write_model_config(const ModelConfig& config, const std::string& config_json, const std::string& torch_dtype);

// ---------------------------------------------------------------- runtime

// "cpu", "cuda", "cuda:N". Throws InputError when this LibTorch has no CUDA.
torch::Device parse_device(const std::string& name);
// "float32" | "bfloat16" | "float16".
torch::Dtype parse_dtype_name(const std::string& name);
std::string torch_dtype_name(torch::Dtype dtype);
// A warning when LibTorch runs on the reference BLAS (25x slower matmuls
// than OpenBLAS); empty when all is well.
std::string blas_warning();

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

 private:
  std::vector<torch::Tensor> k_, v_;  // per layer [B,K,capacity,D]
  std::int64_t length_ = 0, capacity_;
};

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [..., C] -> [..., C]
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& c);
  // x [B,T,C]; cos, sin [B,T,D]; mask [B,1,T,S] additive (0 or -1e9), float32.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, std::size_t layer);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  std::int64_t heads, kv_heads, head_dim;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
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
  explicit CausalLMImpl(const ModelConfig& c);
  // ids [B,T] int64; positions [B,T] int64; key_valid [B,S] bool, S =
  // cache length + T (T without a cache), false for padding. -> logits [B,T,V].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& positions, const torch::Tensor& key_valid,
                        KVCache* cache = nullptr);
  // Unpadded sequences from position 0, no cache: training and scoring.
  torch::Tensor forward(const torch::Tensor& ids);
  // The final hidden states [B,T,C], before the LM head.
  torch::Tensor hidden(const torch::Tensor& ids, const torch::Tensor& positions, const torch::Tensor& key_valid,
                       KVCache* cache);
  torch::Tensor logits(const torch::Tensor& hidden);  // [B,T,C] -> [B,T,V]

  ModelConfig config;
  LlamaBody model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied to model.embed_tokens
  torch::Tensor inv_freq;              // [D/2] rotary frequencies (a buffer, not saved)
};
TORCH_MODULE(CausalLM);

// ---------------------------------------------------------------- I/O

struct LoadedModel {
  ModelConfig config;
  CausalLM model{nullptr};
  std::unique_ptr<text::Tokenizer> tokenizer;  // null when the folder has none
};

// Loads DIR/config.json, the weights (single or sharded) and the tokenizer,
// onto `device` in `dtype`. Every parameter must be present with its shape;
// a tensor the model does not have is an error (a different architecture).
LoadedModel load_model(const std::string& dir, torch::Device device = torch::kCPU, torch::Dtype dtype = torch::kFloat32);

// Writes DIR/config.json and DIR/model.safetensors (in `dtype`), and copies
// the tokenizer file `tokenizer_file` (tokenizer.model or tokenizer.json)
// into DIR unless it is empty. Tied models omit lm_head.weight.
void save_model(CausalLM& model, const std::string& dir, const std::string& tokenizer_file,
                torch::Dtype dtype = torch::kFloat32);

}  // namespace steper::model
