#include <gtest/gtest.h>

#include <filesystem>

#include "steper/error.h"
#include "steper/model.h"
#include "test_util.h"

namespace steper::model {
namespace {

ModelConfig small() {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

LoraConfig all_targets(int rank) {
  LoraConfig l;
  l.rank = rank;
  l.alpha = 8;
  l.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return l;
}

TEST(Lora, MergedWeightsGiveTheUnmergedLogits) {
  torch::manual_seed(3);
  CausalLM m(small());
  m->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::randint(0, 50, {3, 11}, torch::kLong);
  const torch::Tensor base = m->forward(ids);
  add_lora(m, all_targets(4), 5);
  EXPECT_TRUE(torch::equal(m->forward(ids), base)) << "B starts at zero: the adapters change nothing yet";
  for (auto& [name, t] : lora_tensors(m)) {
    if (name.find("lora_B") != std::string::npos) t.normal_(0, 0.2);
  }
  const torch::Tensor adapted = m->forward(ids);
  EXPECT_GT((adapted - base).abs().max().item<double>(), 1e-2) << "the adapters should matter";
  merge_lora(m);
  EXPECT_FALSE(has_lora(m));
  EXPECT_TRUE(torch::allclose(m->forward(ids), adapted, 1e-5, 1e-5)) << (m->forward(ids) - adapted).abs().max().item<double>();
}

TEST(Lora, AdaptersHavePeftNamesAndOnlyTheTargets) {
  CausalLM m(small());
  LoraConfig l;
  l.rank = 2;
  l.targets = {"q_proj", "down_proj"};
  add_lora(m, l);
  auto t = lora_tensors(m);
  ASSERT_EQ(t.size(), 2u * 2u * 2u);  // 2 layers x 2 targets x (A, B)
  EXPECT_EQ(t[0].first, "model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(t[0].second.sizes(), (std::vector<std::int64_t>{2, 32}));
  EXPECT_EQ(t[3].first, "model.layers.0.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(t[3].second.sizes(), (std::vector<std::int64_t>{32, 2}));
  for (auto& p : m->parameters()) EXPECT_FALSE(p.requires_grad());

  CausalLM other(small());
  l.targets = {"qkv"};
  try {
    add_lora(other, l);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown LoRA target 'qkv'"), std::string::npos);
  }
}

// A LoRA run of 8 steps into `dir`, stopped after `stop_at`; returns the
// saved model's tensors.
std::map<std::string, torch::Tensor> lora_run(const std::string& dir, std::int64_t stop_at) {
  torch::manual_seed(1);
  CausalLM m(small());
  add_lora(m, all_targets(4), 7);
  std::vector<int> stream;
  for (int i = 0; i < 2000; ++i) stream.push_back((i * 7 + i / 13) % 50);
  PackedTokens data(stream, 16);
  TrainConfig t;
  t.steps = 8;
  t.batch_size = 4;
  t.lr = 1e-2;
  t.warmup_steps = 2;
  t.save_every = 3;
  train_loop(m, t, dir, "", "lora",
             [&](std::int64_t step, int) { return language_model_step(m, data, step, t.batch_size, 0); },
             [&](const TrainProgress& p) { return p.step < stop_at; });
  std::map<std::string, torch::Tensor> out;
  for (auto& p : load_model(dir).model->named_parameters()) out[p.key()] = p.value().clone();
  return out;
}

TEST(Lora, TrainsTheAdaptersOnlyMergesAtTheEndAndResumesExactly) {
  testing::TempDir dir;
  torch::manual_seed(1);
  CausalLM base(small());
  const auto straight = lora_run(dir / "a", 1000);
  EXPECT_FALSE(std::filesystem::exists(dir / "a/adapter_model.safetensors"));
  // Frozen tensors are the base's bit for bit; the targets moved.
  auto b = base->named_parameters();
  EXPECT_TRUE(torch::equal(straight.at("model.embed_tokens.weight"), b["model.embed_tokens.weight"]));
  EXPECT_TRUE(torch::equal(straight.at("model.layers.1.input_layernorm.weight"), b["model.layers.1.input_layernorm.weight"]));
  EXPECT_FALSE(torch::equal(straight.at("model.layers.0.self_attn.q_proj.weight"), b["model.layers.0.self_attn.q_proj.weight"]));

  lora_run(dir / "b", 4);  // stopped: base weights plus the adapters so far
  EXPECT_TRUE(std::filesystem::exists(dir / "b/adapter_model.safetensors"));
  const auto resumed = lora_run(dir / "b", 1000);
  for (const auto& [name, t] : straight) {
    EXPECT_TRUE(torch::allclose(resumed.at(name), t, 1e-6, 1e-7)) << name;
  }
}

}  // namespace
}  // namespace steper::model
