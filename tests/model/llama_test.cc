#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <regex>
#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/model.h"
#include "test_util.h"

namespace steper::model {
namespace {

ModelConfig tiny(bool tied = false, int kv_heads = 2) {
  ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.tie_word_embeddings = tied;
  return c;
}

// Three sequences of different lengths, left-padded to the longest.
struct Batch {
  torch::Tensor ids, positions, valid;  // [B,L]
};
Batch left_padded(const std::vector<std::vector<std::int64_t>>& seqs) {
  std::int64_t L = 0;
  for (const auto& s : seqs) L = std::max<std::int64_t>(L, static_cast<std::int64_t>(s.size()));
  const auto B = static_cast<std::int64_t>(seqs.size());
  Batch b{torch::zeros({B, L}, torch::kLong), torch::zeros({B, L}, torch::kLong), torch::zeros({B, L}, torch::kBool)};
  for (std::int64_t i = 0; i < B; ++i) {
    const auto& s = seqs[static_cast<std::size_t>(i)];
    std::int64_t pad = L - static_cast<std::int64_t>(s.size());
    for (std::size_t t = 0; t < s.size(); ++t) {
      b.ids[i][pad + static_cast<std::int64_t>(t)] = s[t];
      b.positions[i][pad + static_cast<std::int64_t>(t)] = static_cast<std::int64_t>(t);
      b.valid[i][pad + static_cast<std::int64_t>(t)] = true;
    }
  }
  return b;
}

const std::vector<std::vector<std::int64_t>> kSeqs = {
    {5, 9, 11, 3, 7, 8, 2, 1, 40, 41}, {17, 4, 33, 12, 9, 59}, {1, 2, 3, 4, 5, 6, 7, 8}};

TEST(Llama, KVCacheDecodingMatchesFullForwardWithMixedLengths) {
  torch::manual_seed(0);
  CausalLM m(tiny());
  m->eval();
  torch::NoGradGuard no_grad;
  Batch b = left_padded(kSeqs);
  const std::int64_t L = b.ids.size(1), prefill = 4;
  torch::Tensor full = m->forward(b.ids, b.positions, b.valid);  // [B,L,V]

  KVCache cache(m->config, 3, L, torch::kCPU, torch::kFloat32);
  std::vector<torch::Tensor> pieces;
  pieces.push_back(m->forward(b.ids.narrow(1, 0, prefill), b.positions.narrow(1, 0, prefill),
                              b.valid.narrow(1, 0, prefill), &cache));
  for (std::int64_t t = prefill; t < L; ++t) {
    pieces.push_back(m->forward(b.ids.narrow(1, t, 1), b.positions.narrow(1, t, 1), b.valid.narrow(1, 0, t + 1), &cache));
  }
  torch::Tensor incremental = torch::cat(pieces, 1);
  torch::Tensor diff = (incremental - full).abs().masked_select(b.valid.unsqueeze(-1));
  EXPECT_LT(diff.max().item<float>(), 1e-5f);
  EXPECT_EQ(cache.length(), L);
}

// Decoding one sequence takes the matrix-vector path of every projection.
TEST(Llama, KVCacheDecodingOfOneSequenceMatchesFullForward) {
  torch::manual_seed(1);
  CausalLM m(tiny(/*tied=*/true));
  m->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor(kSeqs[0]).unsqueeze(0);  // [1,L]
  const std::int64_t L = ids.size(1);
  torch::Tensor full = m->forward(ids);
  KVCache cache(m->config, 1, L, torch::kCPU, torch::kFloat32);
  for (std::int64_t t = 0; t < L; ++t) {
    torch::Tensor step = m->forward(ids.narrow(1, t, 1), torch::full({1, 1}, t, torch::kLong), {}, &cache);
    EXPECT_LT((step[0][0] - full[0][t]).abs().max().item<float>(), 1e-5f) << "position " << t;
  }
}

TEST(Llama, DenseMatchesLinearForOneRowAndMany) {
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({7, 5}, torch::requires_grad()), b = torch::randn({7}, torch::requires_grad());
  for (auto shape : {std::vector<std::int64_t>{1, 1, 5}, std::vector<std::int64_t>{5}, std::vector<std::int64_t>{3, 2, 5}}) {
    torch::Tensor x = torch::randn(shape);
    for (bool bias : {false, true}) {
      torch::Tensor bb = bias ? b : torch::Tensor();
      torch::Tensor want = torch::nn::functional::linear(x, w, bb), got = dense(x, w, bb);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6));
      // Gradients reach the weight through either path (LoRA and training use it).
      auto gw = torch::autograd::grad({want.sum()}, {w})[0], gd = torch::autograd::grad({got.sum()}, {w})[0];
      EXPECT_TRUE(torch::allclose(gd, gw, 1e-5, 1e-6));
    }
  }
}

TEST(Llama, PaddingDoesNotChangeAnyRowsLogits) {
  torch::manual_seed(1);
  CausalLM m(tiny(/*tied=*/true, /*kv_heads=*/1));
  torch::NoGradGuard no_grad;
  Batch b = left_padded(kSeqs);
  torch::Tensor batched = m->forward(b.ids, b.positions, b.valid);
  for (std::size_t i = 0; i < kSeqs.size(); ++i) {
    torch::Tensor alone = m->forward(torch::tensor(kSeqs[i]).unsqueeze(0));  // [1,n,V]
    const std::int64_t n = static_cast<std::int64_t>(kSeqs[i].size()), L = b.ids.size(1);
    torch::Tensor row = batched[static_cast<std::int64_t>(i)].narrow(0, L - n, n);
    EXPECT_LT((row - alone[0]).abs().max().item<float>(), 1e-5f) << "row " << i;
  }
}

TEST(Llama, SaveThenLoadGivesIdenticalLogits) {
  testing::TempDir dir;
  for (bool tied : {false, true}) {
    torch::manual_seed(2);
    CausalLM m(tiny(tied));
    torch::NoGradGuard no_grad;
    torch::Tensor ids = torch::tensor(kSeqs[0]).unsqueeze(0);
    torch::Tensor before = m->forward(ids);
    save_model(m, dir / "m", "");
    LoadedModel loaded = load_model(dir / "m");
    EXPECT_EQ(loaded.config.tie_word_embeddings, tied);
    EXPECT_EQ(loaded.tokenizer, nullptr);
    EXPECT_TRUE(torch::equal(loaded.model->forward(ids), before));
    SafetensorsFile f(dir / "m/model.safetensors");
    EXPECT_EQ(f.find("lm_head.weight") != nullptr, !tied);
    EXPECT_NE(f.find("model.layers.1.self_attn.k_proj.weight"), nullptr);  // Hugging Face names
  }
  // bfloat16 on disk: close, not equal.
  torch::manual_seed(3);
  CausalLM m(tiny());
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor(kSeqs[1]).unsqueeze(0);
  save_model(m, dir / "bf16", "", torch::kBFloat16);
  EXPECT_EQ(SafetensorsFile(dir / "bf16/model.safetensors").tensors()[0].dtype, DType::bf16);
  EXPECT_LT((load_model(dir / "bf16").model->forward(ids) - m->forward(ids)).abs().max().item<float>(), 0.05f);
}

// Past the shard limit the weights are written as Hugging Face shards them
// (model-0000i-of-0000N.safetensors and an index), and load back exactly; a
// save in the other layout removes the stale entry file.
TEST(Llama, LargeModelsAreShardedWithAnIndexAndLoadBack) {
  testing::TempDir dir;
  torch::manual_seed(4);
  CausalLM m(tiny());
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor(kSeqs[0]).unsqueeze(0);
  const std::string out = dir / "m";
  save_model(m, out, "");  // one file first: the sharded save must remove it
  save_model(m, out, "", torch::kFloat32, 20000);
  namespace fs = std::filesystem;
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  const nlohmann::json index = nlohmann::json::parse(testing::read_file(out + "/model.safetensors.index.json"));
  std::set<std::string> shards;
  std::uint64_t bytes = 0;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  for (const auto& f : shards) {
    SafetensorsFile s(out + "/" + f);
    for (const auto& t : s.tensors()) bytes += t.bytes;
    EXPECT_LE(fs::file_size(out + "/" + f), 20000u + 4096u) << f;  // the limit, plus a header
  }
  ASSERT_GE(shards.size(), 2u);
  EXPECT_EQ(*shards.rbegin(), "model-0000" + std::to_string(shards.size()) + "-of-0000" + std::to_string(shards.size()) + ".safetensors");
  EXPECT_EQ(index["metadata"]["total_size"].get<std::uint64_t>(), bytes);
  EXPECT_EQ(index["weight_map"].size(), m->named_parameters().size());
  EXPECT_TRUE(torch::equal(load_model(out).model->forward(ids), m->forward(ids)));
  save_model(m, out, "");
  EXPECT_FALSE(fs::exists(out + "/model.safetensors.index.json"));
  EXPECT_TRUE(torch::equal(load_model(out).model->forward(ids), m->forward(ids)));
}

// Recomputing each layer in the backward pass gives the gradients of the
// plain backward pass, also when only LoRA adapters train (a frozen
// embedding: the recomputed layers' input has no graph of its own).
TEST(Llama, RecomputedLayersGiveTheSameGradients) {
  for (bool lora : {false, true}) {
    torch::manual_seed(5);
    CausalLM m(tiny());
    if (lora) {
      LoraConfig l;
      l.rank = 2;
      l.targets = {"q_proj", "v_proj", "up_proj"};
      add_lora(m, l, 3);
      torch::NoGradGuard no_grad;
      for (auto& [name, t] : lora_tensors(m)) t.normal_(0, 0.1);  // B is zero at the start
    }
    std::vector<torch::Tensor> trained;
    for (const auto& p : m->parameters()) if (p.requires_grad()) trained.push_back(p);
    for (auto& [name, t] : lora_tensors(m)) trained.push_back(t);
    torch::Tensor ids = torch::tensor(kSeqs[0]).unsqueeze(0);
    auto grads = [&](bool recompute) {
      m->recompute = recompute;
      m->train();
      for (auto& t : trained) t.mutable_grad() = torch::Tensor();
      m->forward(ids).pow(2).mean().backward();
      std::vector<torch::Tensor> g;
      for (auto& t : trained) g.push_back(t.grad().clone());
      return g;
    };
    const auto plain = grads(false), again = grads(true);
    ASSERT_EQ(plain.size(), trained.size());
    for (std::size_t i = 0; i < plain.size(); ++i) {
      EXPECT_TRUE(torch::allclose(plain[i], again[i], 1e-5, 1e-7)) << (lora ? "LoRA " : "") << "tensor " << i;
    }
    EXPECT_GT(plain.back().abs().max().item<double>(), 0.0);
  }
}

TEST(Llama, CheckpointThatDoesNotFitTheConfigIsRefused) {
  testing::TempDir dir;
  torch::manual_seed(4);
  CausalLM m(tiny());
  save_model(m, dir / "m", "");
  // config says 3 layers: layer 2's tensors are missing
  std::string cfg = testing::read_file(dir / "m/config.json");
  testing::write_file(dir / "m/config.json", std::regex_replace(cfg, std::regex("\"num_hidden_layers\": 2"), "\"num_hidden_layers\": 3"));
  try {
    load_model(dir / "m");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("lacks tensor 'model.layers.2."), std::string::npos) << e.what();
  }
  testing::write_file(dir / "m/config.json", std::regex_replace(cfg, std::regex("\"intermediate_size\": 64"), "\"intermediate_size\": 48"));
  try {
    load_model(dir / "m");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [64, 32], config.json implies [48, 32]"), std::string::npos) << e.what();
  }
  testing::write_file(dir / "m/config.json", std::regex_replace(cfg, std::regex("\"num_key_value_heads\": 2"), "\"num_key_value_heads\": 3"));
  EXPECT_THROW(load_model(dir / "m"), InputError);  // 4 heads do not divide into 3 groups
  EXPECT_THROW(load_model(dir / "nothing"), InputError);
}

TEST(Llama, OverfitsATinyText) {
  torch::manual_seed(5);
  CausalLM m(tiny());
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  torch::Tensor seq = torch::tensor(kSeqs[0]).unsqueeze(0).repeat({2, 1});
  float loss_value = 0;
  for (int step = 0; step < 150; ++step) {
    torch::Tensor logits = m->forward(seq.narrow(1, 0, 9));
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, 61}), seq.narrow(1, 1, 9).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_value = loss.item<float>();
  }
  EXPECT_LT(loss_value, 0.05f);
}

TEST(Llama, Llama3RopeScalingKeepsHighAndDividesLowFrequencies) {
  ModelConfig c = tiny();
  c.hidden_size = 256;  // D = 64: a spread of wavelengths
  c.rope_theta = 500000;
  c.rope_scaling_factor = 8;
  c.rope_original_max_position = 64;
  ModelConfig plain = c;
  plain.rope_scaling_factor = 0;
  torch::Tensor a = CausalLM(plain)->inv_freq, b = CausalLM(c)->inv_freq;
  EXPECT_FLOAT_EQ(b[0].item<float>(), a[0].item<float>());          // wavelength 2pi: kept
  EXPECT_FLOAT_EQ(b[31].item<float>(), a[31].item<float>() / 8.0f);  // longest: divided by the factor
}

// The same weights through an independent PyTorch implementation of the
// Hugging Face Llama forward pass (tests/model/llama_ref.py).
TEST(Llama, MatchesAnIndependentPyTorchImplementation) {
  testing::TempDir dir;
  torch::manual_seed(6);
  ModelConfig c = tiny(false, 2);
  c.rope_scaling_factor = 4;
  c.rope_original_max_position = 8;
  CausalLM m(c);
  save_model(m, dir / "m", "");
  Batch b = left_padded(kSeqs);
  {
    std::ofstream ids(dir / "ids.txt");
    for (std::int64_t i = 0; i < b.ids.size(0); ++i) {
      for (std::int64_t t = 0; t < b.ids.size(1); ++t) ids << b.ids[i][t].item<std::int64_t>() << (t + 1 < b.ids.size(1) ? " " : "\n");
    }
  }
  std::string cmd = "/usr/bin/python3 " + std::string(STEPER_TESTS_DIR) + "/model/llama_ref.py " + (dir / "m") + " " +
                    (dir / "ids.txt") + " " + (dir / "ref.bin");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::string raw = testing::read_file(dir / "ref.bin");
  torch::NoGradGuard no_grad;
  torch::Tensor ours = m->forward(b.ids, b.positions, b.valid);
  ASSERT_EQ(raw.size(), static_cast<std::size_t>(ours.numel()) * 4);
  torch::Tensor ref = torch::from_blob(raw.data(), ours.sizes(), torch::kFloat32).clone();
  torch::Tensor diff = (ours - ref).abs().masked_select(b.valid.unsqueeze(-1));
  EXPECT_LT(diff.max().item<float>(), 1e-4f);
}

}  // namespace
}  // namespace steper::model
