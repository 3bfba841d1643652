#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/model.h"

namespace steper::model {
namespace {

using json = nlohmann::json;

template <class T>
void read_field(const json& j, const char* name, T& out, const std::string& path) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return;  // keep the default
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    throw InputError(path + ": field '" + name + "' has the wrong type: " + it->dump());
  }
}

}  // namespace

void ModelConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw InputError("model config: " + what);
  };
  need(vocab_size > 0, "vocab_size must be positive");
  need(hidden_size > 0 && num_attention_heads > 0, "hidden_size and num_attention_heads must be positive");
  need(hidden_size % num_attention_heads == 0, "hidden_size (" + std::to_string(hidden_size) +
                                                   ") must divide by num_attention_heads (" +
                                                   std::to_string(num_attention_heads) + ")");
  need(head_dim() % 2 == 0, "the head size hidden_size / num_attention_heads must be even for rotary embeddings");
  need(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
       "num_attention_heads (" + std::to_string(num_attention_heads) + ") must divide by num_key_value_heads (" +
           std::to_string(num_key_value_heads) + ")");
  need(intermediate_size > 0 && num_hidden_layers > 0, "intermediate_size and num_hidden_layers must be positive");
  need(max_position_embeddings > 0, "max_position_embeddings must be positive");
  need(rms_norm_eps > 0 && rope_theta > 0, "rms_norm_eps and rope_theta must be positive");
}

std::int64_t ModelConfig::parameter_count() const {
  std::int64_t C = hidden_size, F = intermediate_size, D = head_dim(), H = num_attention_heads, K = num_key_value_heads;
  std::int64_t attn = C * H * D + 2 * C * K * D + H * D * C + (attention_bias ? H * D + 2 * K * D : 0);
  std::int64_t layer = attn + 3 * C * F + 2 * C;
  return vocab_size * C * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + C;
}

ModelConfig read_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open (a model folder needs config.json)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(path + ": not valid JSON: " + e.what());
  }
  ModelConfig c;
  read_field(j, "model_type", c.model_type, path);
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "mistral") {
    throw InputError(path + ": model_type '" + c.model_type + "' is not a Llama-architecture model");
  }
  if (c.model_type == "qwen2") c.attention_bias = true;
  read_field(j, "vocab_size", c.vocab_size, path);
  read_field(j, "hidden_size", c.hidden_size, path);
  read_field(j, "intermediate_size", c.intermediate_size, path);
  read_field(j, "num_hidden_layers", c.num_hidden_layers, path);
  read_field(j, "num_attention_heads", c.num_attention_heads, path);
  c.num_key_value_heads = c.num_attention_heads;
  read_field(j, "num_key_value_heads", c.num_key_value_heads, path);
  read_field(j, "max_position_embeddings", c.max_position_embeddings, path);
  read_field(j, "rms_norm_eps", c.rms_norm_eps, path);
  read_field(j, "rope_theta", c.rope_theta, path);
  read_field(j, "tie_word_embeddings", c.tie_word_embeddings, path);
  read_field(j, "attention_bias", c.attention_bias, path);
  read_field(j, "bos_token_id", c.bos_token_id, path);
  read_field(j, "eos_token_id", c.eos_token_id, path);
  if (auto head = j.find("head_dim"); head != j.end() && head->is_number() && head->get<int>() != c.head_dim()) {
    throw InputError(path + ": head_dim " + head->dump() + " differs from hidden_size / num_attention_heads; not supported");
  }
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object()) {
    std::string type = rs->value("rope_type", rs->value("type", ""));
    if (type != "llama3") throw InputError(path + ": rope_scaling type '" + type + "' is not supported (only llama3)");
    read_field(*rs, "factor", c.rope_scaling_factor, path);
    read_field(*rs, "low_freq_factor", c.rope_low_freq_factor, path);
    read_field(*rs, "high_freq_factor", c.rope_high_freq_factor, path);
    read_field(*rs, "original_max_position_embeddings", c.rope_original_max_position, path);
  }
  try {
    c.validate();
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
  return c;
}

void write_model_config(const ModelConfig& c, const std::string& path, const std::string& torch_dtype) {
  json j{{"architectures", {c.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
         {"model_type", c.model_type},
         {"vocab_size", c.vocab_size},
         {"hidden_size", c.hidden_size},
         {"intermediate_size", c.intermediate_size},
         {"num_hidden_layers", c.num_hidden_layers},
         {"num_attention_heads", c.num_attention_heads},
         {"num_key_value_heads", c.num_key_value_heads},
         {"head_dim", c.head_dim()},
         {"max_position_embeddings", c.max_position_embeddings},
         {"rms_norm_eps", c.rms_norm_eps},
         {"rope_theta", c.rope_theta},
         {"rope_scaling", nullptr},
         {"tie_word_embeddings", c.tie_word_embeddings},
         {"attention_bias", c.attention_bias},
         {"attention_dropout", 0.0},
         {"mlp_bias", false},
         {"hidden_act", "silu"},
         {"initializer_range", 0.02},
         {"bos_token_id", c.bos_token_id},
         {"eos_token_id", c.eos_token_id},
         {"torch_dtype", torch_dtype},
         {"use_cache", true}};
  if (c.rope_scaling_factor > 0) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling_factor},
                         {"low_freq_factor", c.rope_low_freq_factor},
                         {"high_freq_factor", c.rope_high_freq_factor},
                         {"original_max_position_embeddings", c.rope_original_max_position}};
  }
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw RuntimeError(path + ": cannot write");
}

}  // namespace steper::model
