#include <gtest/gtest.h>

#include <filesystem>

#include "small_model.h"
#include "steper/error.h"
#include "steper/model.h"
#include "test_util.h"

namespace steper::model {
namespace {


LoraConfig all_targets(int rank) {
  LoraConfig l;
  l.rank = rank;
  l.alpha = 8;
  l.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return l;
}

TEST(Lora, MergedWeightsGiveTheUnmergedLogits) {
  torch::manual_seed(3);
  CausalLM m(testing::small_model_config());
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
  CausalLM m(testing::small_model_config());
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

  CausalLM other(testing::small_model_config());
  l.targets = {"qkv"};
  try {
    add_lora(other, l);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown LoRA target 'qkv'"), std::string::npos);
  }
}

}  // namespace
}  // namespace steper::model
