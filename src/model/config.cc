#include <cmath>
#include <cstdint>
#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/model_config.h"

namespace steper::model {
namespace {

using json = nlohmann::json;

// Fields are read strictly: an integer field takes a JSON integer that fits
// (no 32.5, no 2^32+400 wrapping to 400), a real one a finite number.
[[noreturn]] void bad_field(const std::string& path, const char* name, const json& v, const std::string& why) {
  throw InputError(path + ": field '" + name + "': " + why + " (found " + v.dump() + ")");
}

void read_field(const json& j, const char* name, int& out, const std::string& path) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return;  // keep the default
  if (!it->is_number_integer()) bad_field(path, name, *it, "expected an integer");
  if (it->is_number_unsigned() ? it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT32_MAX)
                               : (it->get<std::int64_t>() > INT32_MAX || it->get<std::int64_t>() < INT32_MIN)) {
    bad_field(path, name, *it, "out of range");
  }
  out = it->get<int>();
}

void read_field(const json& j, const char* name, double& out, const std::string& path) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number()) bad_field(path, name, *it, "expected a number");
  out = it->get<double>();
  if (!std::isfinite(out)) bad_field(path, name, *it, "expected a finite number");
}

void read_field(const json& j, const char* name, bool& out, const std::string& path) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_boolean()) bad_field(path, name, *it, "expected true or false");
  out = it->get<bool>();
}

void read_field(const json& j, const char* name, std::string& out, const std::string& path) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_string()) bad_field(path, name, *it, "expected a string");
  out = it->get<std::string>();
}

void require_field(const json& j, const char* name, const std::string& path) {
  if (!j.contains(name) || j[name].is_null()) {
    throw InputError(path + ": field '" + std::string(name) + "' is missing; a Llama-architecture config.json needs it");
  }
}

}  // namespace

std::vector<int> read_token_ids(const json& j, const char* name, const std::string& path) {
  std::vector<int> ids;
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return ids;
  json list = it->is_array() ? *it : json::array({*it});
  for (const auto& v : list) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX) {
      bad_field(path, name, *it, "expected a token id or a list of them");
    }
    ids.push_back(v.get<int>());
  }
  return ids;
}

namespace {

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
  need(vocab_size <= (1 << 24) && hidden_size <= (1 << 17) && intermediate_size <= (1 << 20) && num_hidden_layers <= 4096,
       "a size is beyond any model steper can hold (vocab_size <= 2^24, hidden_size <= 2^17, "
       "intermediate_size <= 2^20, num_hidden_layers <= 4096)");
  for (int id : eos_token_ids) need(id >= 0 && id < vocab_size, "eos_token_id " + std::to_string(id) + " is outside the vocabulary");
  need(rms_norm_eps > 0 && rope_theta > 0, "rms_norm_eps and rope_theta must be positive");
}

std::int64_t ModelConfig::parameter_count() const {
  std::int64_t C = hidden_size, F = intermediate_size, D = head_dim(), H = num_attention_heads, K = num_key_value_heads;
  std::int64_t attn = C * H * D + 2 * C * K * D + H * D * C + (attention_bias ? H * D + 2 * K * D : 0);
  std::int64_t layer = attn + 3 * C * F + 2 * C;
  return vocab_size * C * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + C;
}

ModelConfig read_model_config(const std::string& path) {
  if (!io::is_file(path)) throw InputError(path + ": cannot open (a model folder needs config.json)");
  const json j = io::read_json(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  ModelConfig c;
  read_field(j, "model_type", c.model_type, path);
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "mistral") {
    throw InputError(path + ": model_type '" + c.model_type + "' is not a Llama-architecture model");
  }
  if (c.model_type == "qwen2") c.attention_bias = true;  // Qwen2's q/k/v carry biases; its config does not say so
  for (const char* f : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"}) {
    require_field(j, f, path);
  }
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
  // Absent or null: the model has none (Qwen2.5 sets no BOS).
  c.bos_token_id = -1;
  read_field(j, "bos_token_id", c.bos_token_id, path);
  // An int, or a list (Llama-3.1-Instruct: end of text, end of message, end
  // of turn): generation stops on any of them.
  c.eos_token_ids = read_token_ids(j, "eos_token_id", path);
  c.eos_token_id = c.eos_token_ids.empty() ? -1 : c.eos_token_ids.front();
  // Only metadata for steper (padding is masked, never read): an id outside
  // the vocabulary is dropped rather than refused.
  read_field(j, "pad_token_id", c.pad_token_id, path);
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) c.pad_token_id = -1;
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) bad_field(path, "rope_scaling", *rs, "expected an object or null");
    std::string type = rs->value("rope_type", rs->value("type", ""));
    if (type != "llama3" && type != "default") {
      throw InputError(path + ": field 'rope_scaling': type '" + type + "' is not supported (steper implements llama3 and default)");
    }
  }
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object() && rs->value("rope_type", rs->value("type", "")) == "llama3") {
    for (const char* f : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!rs->contains(f)) throw InputError(path + ": field 'rope_scaling." + std::string(f) + "' is missing; llama3 scaling needs it");
    }
    read_field(*rs, "factor", c.rope_scaling_factor, path);
    read_field(*rs, "low_freq_factor", c.rope_low_freq_factor, path);
    read_field(*rs, "high_freq_factor", c.rope_high_freq_factor, path);
    read_field(*rs, "original_max_position_embeddings", c.rope_original_max_position, path);
    if (c.rope_scaling_factor <= 0 || c.rope_low_freq_factor <= 0 || c.rope_high_freq_factor <= c.rope_low_freq_factor ||
        c.rope_original_max_position <= 0) {
      throw InputError(path + ": field 'rope_scaling': factor, low_freq_factor and original_max_position_embeddings must be "
                       "positive and high_freq_factor above low_freq_factor");
    }
  }
  if (j.value("use_sliding_window", false)) {
    throw InputError(path + ": field 'use_sliding_window': sliding-window attention is not supported");
  }
  try {
    c.validate();  // before anything divides by a head count
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
  if (auto head = j.find("head_dim"); head != j.end() && !head->is_null()) {
    int d = 0;
    read_field(j, "head_dim", d, path);
    if (d != c.head_dim()) {
      throw InputError(path + ": field 'head_dim': " + head->dump() + " differs from hidden_size / num_attention_heads; not supported");
    }
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
         {"bos_token_id", c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr)},
         {"eos_token_id", c.eos_token_ids.size() > 1 ? json(c.eos_token_ids) : c.eos_token_id >= 0 ? json(c.eos_token_id) : json(nullptr)},
         {"pad_token_id", c.pad_token_id >= 0 ? json(c.pad_token_id) : json(nullptr)},
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
