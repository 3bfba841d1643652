// steper/model_config.h — what a model is and how it is stored, free of
// LibTorch: Hugging Face's config.json fields, safetensors files and
// checkpoint folders. Reading a config or a checkpoint's tensors needs no
// tensor library, so the files that only do that compile without torch's
// headers; steper/model.h adds the model itself.
//
// The safetensors reader and writer are our own: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the raw data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "steper/error.h"

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
  int bos_token_id = 1;               // -1: none
  int eos_token_id = 2;               // the first of eos_token_ids; -1: none
  int pad_token_id = -1;              // -1: none (save_model takes the tokenizer's)
  // Every id that ends a generation: config.json's eos_token_id (an int or
  // a list) and generation_config.json's.
  std::vector<int> eos_token_ids;
  std::string model_type = "llama";   // "llama" | "qwen2"

  int head_dim() const { return hidden_size / num_attention_heads; }  // D
  // Throws InputError naming the field that makes no sense.
  void validate() const;
  std::int64_t parameter_count() const;
};

// Reads config.json as Hugging Face writes it for Llama 3.x, Qwen2/2.5 and
// Mistral. Throws InputError naming the field: a missing size, a value of
// the wrong type or range, an unsupported rope_scaling type.
ModelConfig read_model_config(const std::string& config_json);
// An int or a list of ints under `name` (empty when absent or null), as
// eos_token_id comes; throws InputError naming the field otherwise.
std::vector<int> read_token_ids(const nlohmann::json& j, const char* name, const std::string& path);
void write_model_config(const ModelConfig& config, const std::string& config_json, const std::string& torch_dtype);

}  // namespace steper::model
