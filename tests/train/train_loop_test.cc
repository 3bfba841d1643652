#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <set>
#include <thread>

#include "small_model.h"
#include "steper/train.h"
#include "test_util.h"

namespace steper::train {
namespace {

using model::ModelConfig;
using model::load_model;



model::LoraConfig every_projection(int rank) {
  model::LoraConfig l;
  l.rank = rank;
  l.alpha = 8;
  l.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return l;
}

PackedTokens corpus() {
  std::vector<int> stream;
  for (int i = 0; i < 2000; ++i) stream.push_back((i * 7 + i / 13) % 50);
  return PackedTokens(stream, 16);
}

TrainConfig config() {
  TrainConfig t;
  t.steps = 12;
  t.batch_size = 4;
  t.grad_accum = 2;
  t.lr = 5e-3;
  t.warmup_steps = 3;
  t.save_every = 4;
  t.seed = 9;
  return t;
}

// The small model trained on the corpus into `dir`, from its checkpoint there if any.
TrainResult train_into(const std::string& dir, const std::function<bool(const TrainProgress&)>& on_progress,
                       const std::string& key = "k", const TrainConfig& t = config()) {
  torch::manual_seed(1);
  CausalLM m(testing::small_model_config());
  m->to(t.dtype);
  PackedTokens data = corpus();
  return train_loop(m, t, dir, "", key,
                    [&](std::int64_t step, int k) { return language_model_step(m, data, step * t.grad_accum + k, t.batch_size, t.seed); },
                    on_progress);
}

// Losses of a run into `dir`, stopping (with a checkpoint) after `stop_at` steps.
std::vector<double> run(const std::string& dir, std::int64_t stop_at, const std::string& key = "k",
                        const TrainConfig& t = config()) {
  std::vector<double> losses;
  train_into(dir, [&](const TrainProgress& p) {
    losses.push_back(p.loss);
    return p.step < stop_at;
  }, key, t);
  return losses;
}

TrainConfig bf16() {
  TrainConfig t = config();
  t.dtype = torch::kBFloat16;
  return t;
}

TEST(TrainLoop, ResumeReproducesTheUninterruptedRunExactly) {
  testing::TempDir dir;
  std::vector<double> straight = run(dir / "a", 1000);
  ASSERT_EQ(straight.size(), 12u);
  EXPECT_LT(straight.back(), straight.front());  // it learns
  std::vector<double> first = run(dir / "b", 5);  // stops after step 5 (between checkpoints)
  ASSERT_EQ(first.size(), 5u);
  std::vector<double> rest = run(dir / "b", 1000);  // resumes from the step-5 checkpoint
  ASSERT_EQ(rest.size(), 7u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(first[i], straight[i]) << i;
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(rest[i], straight[5 + i]) << "step " << 6 + i;
  // A finished run resumed does nothing more; the checkpoint is a model folder.
  EXPECT_TRUE(run(dir / "b", 1000).empty());
  EXPECT_EQ(load_model(dir / "b").config.hidden_size, 32);
}

// The model folder is what gets shipped: training state sits in
// trainer_state/. A checkpoint of the earlier layout (state beside the
// model) resumes exactly, and its next save moves the state into place.
TEST(TrainLoop, TrainingStateLivesApartAndTheEarlierLayoutResumes) {
  testing::TempDir dir;
  std::vector<double> straight = run(dir / "a", 1000);
  run(dir / "b", 5);
  namespace fs = std::filesystem;
  const fs::path b = dir / "b";
  EXPECT_TRUE(fs::exists(b / "trainer_state/trainer_state.json"));
  EXPECT_TRUE(fs::exists(b / "trainer_state/optimizer.torchscript"));
  EXPECT_FALSE(fs::exists(b / "optimizer.pt"));
  EXPECT_FALSE(fs::exists(b / "trainer_state.json"));
  EXPECT_EQ(saved_step(b), 5);
  // As steper wrote it before: the same files beside the model.
  fs::rename(b / "trainer_state/trainer_state.json", b / "trainer_state.json");
  fs::rename(b / "trainer_state/optimizer.torchscript", b / "optimizer.pt");
  fs::remove_all(b / "trainer_state");
  EXPECT_EQ(saved_step(b), 5);
  std::vector<double> rest = run(b, 1000);
  ASSERT_EQ(rest.size(), 7u);
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(rest[i], straight[5 + i]) << "step " << 6 + i;
  EXPECT_FALSE(fs::exists(b / "optimizer.pt"));
  EXPECT_FALSE(fs::exists(b / "trainer_state.json"));
  EXPECT_EQ(saved_step(b), 12);
}

// A crash at any file operation of a checkpoint save leaves the old
// checkpoint or the new one: each resume ends with the uninterrupted run's
// weights, byte for byte. (Before saves were atomic, a kill between the new
// weights and the old trainer_state.json resumed from a mix and diverged.)
TEST(TrainLoop, ACrashAtAnyPointOfASaveResumesExactly) {
  testing::TempDir dir;
  run(dir / "straight", 1000);
  const std::string want = testing::read_file(dir / "straight/model.safetensors");
  struct Crash {};
  int operations = 0;
  for (int at = 0;; ++at) {
    const std::string out = dir / ("crash" + std::to_string(at));
    // The first save (step 4) completes; the second (step 8) dies at operation `at`.
    int saves = 0;
    bool crashed = false;
    set_checkpoint_fault_hook([&](int op) {
      if (op == 0) ++saves;
      if (saves == 2) operations = std::max(operations, op + 1);
      if (saves == 2 && op == at) throw Crash{};
    });
    try {
      run(out, 1000);
    } catch (const Crash&) {
      crashed = true;
    }
    set_checkpoint_fault_hook(nullptr);
    if (!crashed) break;  // `at` is past the save's last operation
    run(out, 1000);
    EXPECT_EQ(testing::read_file(out + "/model.safetensors"), want) << "crash at operation " << at;
    for (const auto& e : std::filesystem::directory_iterator(out)) {
      EXPECT_NE(e.path().filename().string().rfind(".checkpoint-", 0), 0u) << "left behind: " << e.path();
    }
  }
  EXPECT_GE(operations, 8);  // staging, the files, the commit, the moves
}

TEST(TrainLoop, AResumedRunCountsTheTrainingTimeOfTheRunsBefore) {
  testing::TempDir dir;
  std::vector<double> seconds;
  auto run_timed = [&](std::int64_t stop_at, int sleep_ms) {
    train_into(dir / "r", [&](const TrainProgress& p) {
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      seconds.push_back(p.seconds);
      return p.step < stop_at;
    });
  };
  run_timed(4, 100);  // checkpoint at step 4 after at least 0.3 s of training
  const double before = seconds.back();
  ASSERT_GE(before, 0.3);
  seconds.clear();
  run_timed(1000, 0);
  ASSERT_EQ(seconds.size(), 8u);
  EXPECT_GE(seconds.front(), before);  // not this process's first step alone
  EXPECT_TRUE(std::is_sorted(seconds.begin(), seconds.end()));
}

// A finished checkpoint run again (a pipeline stage that stopped after
// training but before recording it) reports the steps and time it took,
// not zero.
TEST(TrainLoop, AFinishedRunGivesItsStepsAndTimeAgain) {
  testing::TempDir dir;
  auto train = [&] {
    return train_into(dir / "f", [](const TrainProgress&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return true;
    });
  };
  const TrainResult first = train();
  EXPECT_EQ(first.steps, config().steps);
  ASSERT_GE(first.seconds, 0.2);
  const TrainResult again = train();
  EXPECT_EQ(again.steps, first.steps);
  EXPECT_NEAR(again.seconds, first.seconds, 1e-3);
}

TEST(TrainLoop, RefusesToResumeAnotherRun) {
  testing::TempDir dir;
  run(dir / "a", 2);
  EXPECT_THROW(run(dir / "a", 1000, "other settings"), InputError);
}

// bfloat16 weights and activations with float32 master weights: the run
// learns, saves a bfloat16 model with its masters in trainer_state/, and a
// resume takes exactly the steps of the uninterrupted run.
TEST(MixedPrecision, Bf16LearnsSavesBf16AndResumesExactly) {
  testing::TempDir dir;
  const std::vector<double> straight = run(dir / "a", 1000, "k", bf16());
  ASSERT_EQ(straight.size(), 12u);
  EXPECT_LT(straight.back(), straight.front());
  const std::vector<double> first = run(dir / "b", 5, "k", bf16());
  const std::vector<double> rest = run(dir / "b", 1000, "k", bf16());
  ASSERT_EQ(rest.size(), 7u);
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(rest[i], straight[5 + i]) << "step " << 6 + i;
  EXPECT_EQ(testing::read_file(dir / "b/model.safetensors"), testing::read_file(dir / "a/model.safetensors"));
  EXPECT_EQ(model::SafetensorsFile(dir / "a/model.safetensors").tensors()[0].dtype, model::DType::bf16);
  EXPECT_NE(testing::read_file(dir / "a/config.json").find("\"torch_dtype\": \"bfloat16\""), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "a/trainer_state/master_weights.torchscript"));
  // A float32 model is not what a bfloat16 run was set up for.
  torch::manual_seed(1);
  CausalLM m(testing::small_model_config());
  const PackedTokens data = corpus();
  EXPECT_THROW(train_loop(m, bf16(), dir / "c", "", "k",
                          [&](std::int64_t, int) { return language_model_step(m, data, 0, 4, 0); }, nullptr),
               InputError);
}

// Updates far below bfloat16's resolution add up in the float32 masters
// (rounded into the weights each step, they would vanish), and the saved
// weights are the masters rounded.
TEST(MixedPrecision, UpdatesBelowBf16ResolutionAddUpInTheMasters) {
  testing::TempDir dir;
  TrainConfig t = bf16();
  t.lr = 1e-5;
  t.warmup_steps = 0;
  t.weight_decay = 0;
  t.save_every = 0;
  run(dir / "m", 1000, "k", t);
  std::vector<torch::Tensor> masters;
  torch::load(masters, dir / "m/trainer_state/master_weights.torchscript");
  torch::manual_seed(1);
  CausalLM start(testing::small_model_config());
  start->to(torch::kBFloat16);
  auto saved = load_model(dir / "m", torch::kCPU, torch::kBFloat16).model->named_parameters();
  const torch::Tensor& w0 = start->named_parameters()["model.embed_tokens.weight"];
  ASSERT_EQ(masters[0].scalar_type(), torch::kFloat32);
  ASSERT_EQ(masters[0].sizes(), w0.sizes());
  // Each step moves a weight by about lr; 12 steps add up to ~1.2e-4, past
  // half a bfloat16 step (~6e-5 at these weights' ~0.02) only together.
  EXPECT_GT((masters[0] - w0.to(torch::kFloat32)).abs().max().item<double>(), 6e-5);
  EXPECT_TRUE(torch::equal(saved["model.embed_tokens.weight"], masters[0].to(torch::kBFloat16)));
}

// Recomputing the layers in the backward pass takes the steps of the run
// that keeps every activation.
TEST(Recompute, TakesTheStepsOfTheRunThatKeepsActivations) {
  testing::TempDir dir;
  const std::vector<double> straight = run(dir / "a", 1000);
  TrainConfig t = config();
  t.recompute = true;
  const std::vector<double> again = run(dir / "b", 1000, "k", t);
  ASSERT_EQ(again.size(), straight.size());
  for (std::size_t i = 0; i < again.size(); ++i) EXPECT_NEAR(again[i], straight[i], 1e-5 * std::abs(straight[i])) << i;
  auto a = load_model(dir / "a").model->named_parameters(), b = load_model(dir / "b").model->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::allclose(p.value(), b[p.key()], 1e-4, 1e-6)) << p.key();
}

TEST(TrainLoop, WarmupThenCosine) {
  TrainConfig t;
  t.lr = 1.0;
  t.min_lr_ratio = 0.1;
  t.warmup_steps = 10;
  t.steps = 110;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 9), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(t, 10), 1.0);
  EXPECT_NEAR(learning_rate(t, 60), 0.55, 1e-12);  // halfway down the cosine
  EXPECT_NEAR(learning_rate(t, 109), 0.1, 1e-3);
}

TEST(PackedTokens, RowsCoverEachEpochOnceInASeededOrder) {
  std::vector<int> stream(2000);
  for (int i = 0; i < 2000; ++i) stream[static_cast<std::size_t>(i)] = i;  // a row's first token names it
  PackedTokens data(stream, 16);  // rows of 17: 117 rows
  EXPECT_EQ(data.rows(), 117);
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    std::set<std::int64_t> firsts;
    std::vector<std::int64_t> order;
    for (std::int64_t i = 0; i < 117; ++i) {
      std::int64_t first = data.batch(epoch * 117 + i, 1, 3)[0][0].item<std::int64_t>();
      EXPECT_EQ(first % 17, 0);
      firsts.insert(first);
      order.push_back(first);
    }
    EXPECT_EQ(firsts.size(), 117u);  // every row once per epoch
    EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));
  }
  EXPECT_TRUE(torch::equal(data.batch(5, 4, 3), data.batch(5, 4, 3)));
  EXPECT_FALSE(torch::equal(data.batch(5, 4, 3), data.batch(5, 4, 4)));  // another seed, another order
  EXPECT_THROW(PackedTokens({1, 2, 3}, 16), InputError);
}

// A LoRA run of 8 steps into `dir`, stopped after `stop_at`; returns the
// saved model's tensors.
std::map<std::string, torch::Tensor> lora_run(const std::string& dir, std::int64_t stop_at) {
  torch::manual_seed(1);
  CausalLM m(testing::small_model_config());
  model::add_lora(m, every_projection(4), 7);
  const PackedTokens data = corpus();
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
  CausalLM base(testing::small_model_config());
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
}  // namespace steper::train
