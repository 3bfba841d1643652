// Checkpoints in the exact config.json shapes Hugging Face writes for
// Llama-3.1-Instruct and Qwen2.5-Instruct, at toy sizes, against the
// independent PyTorch forward pass (llama_ref.py); and config.json's bad
// values refused by name.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/model.h"
#include "test_util.h"

namespace steper::model {
namespace {

using nlohmann::json;

// Llama-3.1-8B-Instruct's config.json, every field, at toy sizes.
json llama31_config() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": [2, 5, 7], "head_dim": 8, "hidden_act": "silu", "hidden_size": 32,
    "initializer_range": 0.02, "intermediate_size": 64, "max_position_embeddings": 131072, "mlp_bias": false,
    "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 61})");
}

// Qwen2.5-Instruct's: q/k/v biases (implied by model_type), tied embeddings,
// sliding window off, no rope scaling.
json qwen25_config() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 3, "eos_token_id": 4,
    "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
    "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": null,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 61})");
}

// Random weights of the config's shape, saved by steper, with the config
// file then replaced by the Hugging Face one.
void write_checkpoint(const std::string& dir, const json& hf) {
  testing::TempDir scratch;
  testing::write_file(scratch / "config.json", hf.dump(2));
  ModelConfig c = read_model_config(scratch / "config.json");
  torch::manual_seed(11);
  CausalLM m(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->named_parameters()) {
      if (p.key().find("bias") != std::string::npos) p.value().normal_(0, 0.5);  // biases start at zero: make them count
    }
  }
  save_model(m, dir, "");
  testing::write_file(dir + "/config.json", hf.dump(2));
}

torch::Tensor reference_logits(const std::string& model_dir, const torch::Tensor& ids, const std::string& work) {
  {
    std::ofstream out(work + "/ids.txt");
    for (std::int64_t t = 0; t < ids.size(1); ++t) out << ids[0][t].item<std::int64_t>() << (t + 1 < ids.size(1) ? " " : "\n");
  }
  std::string cmd = "/usr/bin/python3 " + std::string(STEPER_TESTS_DIR) + "/model/llama_ref.py " + model_dir + " " +
                    work + "/ids.txt " + work + "/ref.bin";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::string raw = testing::read_file(work + "/ref.bin");
  return torch::from_blob(raw.data(), {1, ids.size(1), 61}, torch::kFloat32).clone();
}

class HfShapes : public ::testing::TestWithParam<const char*> {};

TEST_P(HfShapes, LoadsAndMatchesTheReferenceForwardPass) {
  const bool qwen = std::string(GetParam()) == "qwen2.5";
  testing::TempDir dir;
  write_checkpoint(dir / "m", qwen ? qwen25_config() : llama31_config());
  LoadedModel m = load_model(dir / "m");
  if (qwen) {
    EXPECT_TRUE(m.config.attention_bias);
    EXPECT_TRUE(m.config.tie_word_embeddings);
    EXPECT_EQ(m.config.eos_token_ids, std::vector<int>({4}));
  } else {
    EXPECT_EQ(m.config.eos_token_ids, std::vector<int>({2, 5, 7}));
    EXPECT_EQ(m.config.rope_scaling_factor, 8);
    EXPECT_EQ(m.config.num_key_value_heads, 2);
  }
  torch::Tensor ids = torch::tensor(std::vector<std::int64_t>{9, 17, 3, 33, 12, 40, 41, 8, 19, 27, 30, 2}).unsqueeze(0);
  torch::NoGradGuard no_grad;
  torch::Tensor ours = m.model->forward(ids);
  torch::Tensor ref = reference_logits(dir / "m", ids, dir.path());
  EXPECT_LT((ours - ref).abs().max().item<float>(), 1e-4f);
}
INSTANTIATE_TEST_SUITE_P(Checkpoint, HfShapes, ::testing::Values("llama3.1", "qwen2.5"));

// Characters as tokens, for generating from the random models above.
class DigitTokenizer final : public text::Tokenizer {
 public:
  std::vector<int> encode(const std::string& s) const override {
    std::vector<int> ids;
    for (unsigned char c : s) ids.push_back(10 + c % 50);
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override { return std::string(ids.size(), 'x'); }
  int vocab_size() const override { return 61; }
  int bos_id() const override { return -1; }
  int eos_id() const override { return -1; }
  bool add_bos() const override { return false; }
  std::string kind() const override { return "test"; }
};

TEST(Checkpoint, GenerationStopsOnAnyEndOfSequenceIdTheFolderLists) {
  testing::TempDir dir;
  write_checkpoint(dir / "m", llama31_config());
  LoadedModel m = load_model(dir / "m");
  DigitTokenizer tok;
  GenerateOptions o;
  o.max_new_tokens = 6;
  o.stop_at_eos = false;
  std::vector<Generation> free_run = generate(m.model, tok, {"abc"}, o);
  ASSERT_EQ(free_run[0].tokens.size(), 6u);
  // The third greedy token becomes an end-of-sequence id in generation_config.json.
  const int third = free_run[0].tokens[2];
  testing::write_file(dir / "m/generation_config.json",
                      json{{"eos_token_id", json::array({59, third})}, {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.9}}.dump());
  LoadedModel again = load_model(dir / "m");
  EXPECT_NE(std::find(again.config.eos_token_ids.begin(), again.config.eos_token_ids.end(), third), again.config.eos_token_ids.end());
  EXPECT_DOUBLE_EQ(again.generation.temperature, 0.6);
  EXPECT_DOUBLE_EQ(again.generation.top_p, 0.9);
  o.stop_at_eos = true;
  std::vector<Generation> stopped = generate(again.model, tok, {"abc"}, o);
  EXPECT_EQ(stopped[0].finish, "eos");
  EXPECT_LE(stopped[0].tokens.size(), 3u);
}

TEST(Checkpoint, RotaryFrequenciesStayFloat32InABfloat16Model) {
  ModelConfig c = read_model_config([] {
    static testing::TempDir d;
    testing::write_file(d / "config.json", llama31_config().dump());
    return d / "config.json";
  }());
  CausalLM f32(c), bf16(c);
  bf16->to(torch::kBFloat16);
  EXPECT_EQ(bf16->inv_freq.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(bf16->inv_freq, f32->inv_freq));
  // In bf16 the angle at position 2048 would be off by more than 0.5 rad.
  torch::Tensor angle = 2048 * f32->inv_freq, rounded = 2048 * f32->inv_freq.to(torch::kBFloat16).to(torch::kFloat32);
  EXPECT_GT((angle - rounded).abs().max().item<float>(), 0.5f);
}

TEST(Checkpoint, LoadsStraightIntoTheAskedDtype) {
  testing::TempDir dir;
  write_checkpoint(dir / "m", qwen25_config());
  LoadedModel m = load_model(dir / "m", torch::kCPU, torch::kBFloat16);
  for (const auto& p : m.model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(torch::get_default_dtype(), caffe2::TypeMeta::Make<float>());  // restored after loading
}

// Each bad config.json value: an InputError naming the field.
TEST(Checkpoint, BadConfigValuesAreRefusedNamingTheField) {
  struct Case {
    const char* field;
    json value;
    const char* expect;
  };
  const Case cases[] = {
      {"rope_scaling", json::parse(R"({"rope_type": "yarn", "factor": 4.0})"), "'yarn' is not supported"},
      {"num_attention_heads", 0, "num_attention_heads"},
      {"vocab_size", 4294967696ULL, "vocab_size"},
      {"hidden_size", 32.5, "hidden_size"},
      {"eos_token_id", json::array({2, "x"}), "eos_token_id"},
      {"rms_norm_eps", "tiny", "rms_norm_eps"},
      {"tie_word_embeddings", "yes", "tie_word_embeddings"},
      {"use_sliding_window", true, "use_sliding_window"},
  };
  testing::TempDir dir;
  for (const auto& c : cases) {
    json j = llama31_config();
    j[c.field] = c.value;
    testing::write_file(dir / "config.json", j.dump());
    try {
      read_model_config(dir / "config.json");
      ADD_FAILURE() << c.field << " = " << c.value.dump() << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
  }
  json j = llama31_config();
  j.erase("hidden_size");
  testing::write_file(dir / "config.json", j.dump());
  try {
    read_model_config(dir / "config.json");
    ADD_FAILURE() << "a config without hidden_size was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'hidden_size' is missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace steper::model
