// Data-parallel training as users start it: `steper train` processes with
// RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (what `torchrun
// --no-python` sets), talking over c10d Gloo on loopback. Two ranks with
// batch B must take the steps one process takes with batch 2B.
#include <gtest/gtest.h>

#include <thread>

#include "steper/distill.h"
#include "metrics_column.h"
#include "process.h"
#include "tiny_world.h"

namespace steper::distill {
namespace {

std::vector<std::string> train_args(const std::string& samples, const std::string& init, const std::string& out, int batch) {
  return {STEPER_BIN, "--quiet", "train", "--data", samples, "--init", init, "--out", out, "--weighting", "difficulty",
          "--steps", "6", "--batch", std::to_string(batch), "--lr", "2e-3", "--warmup", "2", "--weight-lr", "0.1",
          "--eval-every", "0", "--save-every", "0", "--holdout", "0"};
}

TEST(DataParallel, TwoGlooRanksTakeTheStepsOfOneProcessWithTheirBatchesTogether) {
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  StepwiseOptions so;
  so.keep = "all";
  build_stepwise(w.dir + "/world/gold_traces.jsonl", w.train, w.corpus, dir / "s.jsonl", so);

  // Two ranks, their optimizer state replicated ("two") or sharded.
  for (const std::string out : {"two", "sharded"}) {
    const std::string port = std::to_string(testing::free_port());
    std::vector<std::string> args = train_args(dir / "s.jsonl", w.model, dir / out, 3);
    if (out == "sharded") args.push_back("--shard-optimizer");
    std::vector<pid_t> ranks;
    for (int r = 0; r < 2; ++r) {
      ranks.push_back(testing::spawn(args,
                                     {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port,
                                      "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"},
                                     dir / (out + std::to_string(r) + ".log")));
    }
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(testing::wait_exit(ranks[static_cast<std::size_t>(r)]), 0) << testing::read_file(dir / (out + std::to_string(r) + ".log"));
    }
  }
  ASSERT_EQ(testing::wait_exit(testing::spawn(train_args(dir / "s.jsonl", w.model, dir / "one", 6), {}, dir / "one.log")), 0)
      << testing::read_file(dir / "one.log");

  // The logged losses are those of the global batch, per stage too.
  for (const char* field : {"loss", "loss_init", "loss_expand", "loss_aggregate", "weight_aggregate"}) {
    auto one = testing::metrics_column(dir / "one/metrics.jsonl", field);
    EXPECT_EQ(testing::metrics_column(dir / "sharded/metrics.jsonl", field).size(), 6u) << field;  // compared in detail below
    auto two = testing::metrics_column(dir / "two/metrics.jsonl", field);
    ASSERT_EQ(two.size(), 6u) << field;
    ASSERT_EQ(one.size(), 6u) << field;
    for (std::size_t i = 0; i < 6; ++i) {
      if (std::isnan(one[i])) {
        EXPECT_TRUE(std::isnan(two[i])) << field << " step " << i + 1;
      } else {
        EXPECT_NEAR(two[i], one[i], 1e-4 * std::max(1.0, std::abs(one[i]))) << field << " step " << i + 1;
      }
    }
  }
  // The same weights, and the same stage log-variances.
  auto a = model::load_model(dir / "two"), b = model::load_model(dir / "one");
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  double moved = 0;
  auto init = model::load_model(w.model).model->named_parameters();
  for (const auto& p : pb) {
    EXPECT_TRUE(torch::allclose(pa[p.key()], p.value(), 1e-4, 1e-5)) << p.key();
    moved = std::max(moved, (p.value() - init[p.key()]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3);  // training did change the weights: the comparison is not of two copies of the start
  std::vector<torch::Tensor> ea, eb;
  torch::load(ea, dir / "two/trainer_state/extra_params.torchscript");
  torch::load(eb, dir / "one/trainer_state/extra_params.torchscript");
  EXPECT_TRUE(torch::allclose(ea[0], eb[0], 1e-4, 1e-6)) << ea[0] << eb[0];
  EXPECT_GT(eb[0].abs().max().item<double>(), 0.0);
  // Only rank 0 wrote; rank 1 said which rank it was.
  EXPECT_NE(testing::read_file(dir / "two1.log").find("rank 1 of 2"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "sharded/trainer_state/optimizer_shard-1-of-2.torchscript"));
}

// Two ranks as two threads of this process (each its own c10d group member
// over loopback), so a run can be stopped at a chosen step and resumed.
void train_two_ranks(const std::string& samples, const std::string& init, const std::string& out, TrainOptions o,
                     std::int64_t stop_after = 0) {
  const int port = testing::free_port();
  std::exception_ptr failed[2];
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        train::DistributedEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_port = port;
        train::DataParallel parallel(env, 60);
        TrainOptions mine = o;
        mine.parallel = &parallel;
        train(samples, init, out, mine, [&](const DistillProgress& p) { return stop_after == 0 || p.train.step < stop_after; });
      } catch (...) {
        failed[r] = std::current_exception();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (auto& f : failed) {
    if (f) std::rethrow_exception(f);
  }
}

std::map<std::string, torch::Tensor> weights(const std::string& dir) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model::load_model(dir).model->named_parameters()) out[p.key()] = p.value();
  return out;
}

// ZeRO stage 2: each rank keeps half of the optimizer state, and the run
// takes the steps of the replicated one: weights, per-stage losses and stage
// log-variances; stopped at step 3 and resumed, it takes them again exactly.
TEST(DataParallel, ShardedOptimizerTakesTheStepsOfTheReplicatedRunAndResumesExactly) {
  torch::set_num_threads(1);
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  StepwiseOptions so;
  so.keep = "all";
  build_stepwise(w.dir + "/world/gold_traces.jsonl", w.train, w.corpus, dir / "s.jsonl", so);
  TrainOptions o;
  o.train.steps = 6;
  o.train.batch_size = 3;
  o.train.lr = 2e-3;
  o.train.warmup_steps = 2;
  o.train.save_every = 0;
  o.train.weight_decay = 0.5;  // fine-tuning's default is 0: decay on, to check it follows the shards' groups
  o.weighting = Weighting::difficulty;
  o.weight_lr = 0.1;
  o.eval_every = 0;
  o.holdout = 0;
  train_two_ranks(dir / "s.jsonl", w.model, dir / "replicated", o);
  o.train.shard_optimizer = true;
  train_two_ranks(dir / "s.jsonl", w.model, dir / "sharded", o);
  train_two_ranks(dir / "s.jsonl", w.model, dir / "resumed", o, 3);
  ASSERT_EQ(testing::metrics_column(dir / "resumed/metrics.jsonl", "loss").size(), 3u);
  train_two_ranks(dir / "s.jsonl", w.model, dir / "resumed", o);

  for (const char* field : {"loss", "loss_init", "loss_expand", "loss_aggregate", "weight_aggregate", "grad_norm"}) {
    auto rep = testing::metrics_column(dir / "replicated/metrics.jsonl", field);
    auto sh = testing::metrics_column(dir / "sharded/metrics.jsonl", field);
    auto re = testing::metrics_column(dir / "resumed/metrics.jsonl", field);
    ASSERT_EQ(rep.size(), 6u) << field;
    ASSERT_EQ(sh.size(), 6u) << field;
    ASSERT_EQ(re.size(), 6u) << field;
    for (std::size_t i = 0; i < 6; ++i) {
      if (std::isnan(rep[i])) {
        EXPECT_TRUE(std::isnan(sh[i]) && std::isnan(re[i])) << field << " step " << i + 1;
        continue;
      }
      EXPECT_NEAR(sh[i], rep[i], 1e-4 * std::max(1.0, std::abs(rep[i]))) << field << " step " << i + 1;
      EXPECT_EQ(re[i], sh[i]) << field << " step " << i + 1;
    }
  }
  auto rep = weights(dir / "replicated"), sh = weights(dir / "sharded"), re = weights(dir / "resumed"), init = weights(w.model);
  double moved = 0;
  for (const auto& [name, t] : rep) {
    EXPECT_TRUE(torch::allclose(sh[name], t, 1e-4, 1e-5)) << name;
    EXPECT_TRUE(torch::equal(re[name], sh[name])) << name;
    moved = std::max(moved, (t - init[name]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3);  // the runs trained: not three copies of the start
  std::vector<torch::Tensor> er, es;
  torch::load(er, dir / "replicated/trainer_state/extra_params.torchscript");
  torch::load(es, dir / "sharded/trainer_state/extra_params.torchscript");
  EXPECT_TRUE(torch::allclose(es[0], er[0], 1e-4, 1e-6)) << es[0] << er[0];
  EXPECT_GT(er[0].abs().max().item<double>(), 0.0);

  // Each rank saved its half: masters and both moments of about half the values.
  std::int64_t trained = 0;
  for (const auto& [name, t] : rep) trained += t.numel();
  trained += er[0].numel();
  for (int r = 0; r < 2; ++r) {
    std::vector<torch::Tensor> shard;
    torch::load(shard, dir / ("sharded/trainer_state/optimizer_shard-" + std::to_string(r) + "-of-2.torchscript"));
    ASSERT_EQ(shard.size(), 4u);
    EXPECT_EQ(shard[1].numel(), (trained + 1) / 2);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "sharded/trainer_state/optimizer.torchscript"));

  // Mixed precision: the float32 masters are sharded too, and every rank's
  // bfloat16 model is their rounding. (Not compared with a replicated bf16
  // run: LibTorch's bfloat16 CPU kernels are not bitwise repeatable from run
  // to run under load, which moved even step 1's loss by 0.1%.)
  o.train.dtype = torch::kBFloat16;
  train_two_ranks(dir / "s.jsonl", w.model, dir / "sharded-bf16", o);
  ASSERT_EQ(testing::metrics_column(dir / "sharded-bf16/metrics.jsonl", "loss").size(), 6u);
  std::vector<torch::Tensor> masters;
  for (int r = 0; r < 2; ++r) {
    std::vector<torch::Tensor> shard;
    torch::load(shard, dir / ("sharded-bf16/trainer_state/optimizer_shard-" + std::to_string(r) + "-of-2.torchscript"));
    masters.push_back(shard[0]);
  }
  // A model's weights flat in the stepped order: the matrices, then the vectors.
  auto stepped_order = [](const std::string& model_dir) {
    std::vector<torch::Tensor> matrices, vectors;
    for (const auto& p : model::load_model(model_dir, torch::kCPU, torch::kFloat32).model->named_parameters()) {
      (p.value().dim() >= 2 ? matrices : vectors).push_back(p.value().reshape(-1));
    }
    matrices.insert(matrices.end(), vectors.begin(), vectors.end());
    return torch::cat(matrices);
  };
  const torch::Tensor saved = stepped_order(dir / "sharded-bf16"), flat = torch::cat(masters).narrow(0, 0, saved.numel());
  EXPECT_TRUE(torch::equal(flat.to(torch::kBFloat16).to(torch::kFloat32), saved));
  EXPECT_FALSE(torch::equal(flat, saved));  // the masters keep what bfloat16 rounds away
  EXPECT_GT((saved - stepped_order(w.model)).abs().max().item<double>(), 1e-3);  // and it trained
  o.train.dtype = torch::kFloat32;

  // A sharded checkpoint does not resume as a replicated run.
  TrainOptions replicated = o;
  replicated.train.shard_optimizer = false;
  try {
    train_two_ranks(dir / "s.jsonl", w.model, dir / "resumed", replicated);
    ADD_FAILURE() << "a sharded checkpoint resumed without sharding";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("sharded over 2 ranks"), std::string::npos) << e.what();
  }
}

TEST(DataParallel, MalformedLauncherVariablesAreNamed) {
  setenv("WORLD_SIZE", "2", 1);
  setenv("RANK", "2", 1);
  try {
    train::distributed_env();
    ADD_FAILURE() << "RANK 2 of 2 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos) << e.what();
  }
  setenv("RANK", "one", 1);
  EXPECT_THROW(train::distributed_env(), InputError);
  setenv("RANK", "1", 1);
  setenv("MASTER_PORT", "70000", 1);
  EXPECT_THROW(train::distributed_env(), InputError);
  unsetenv("MASTER_PORT");
  EXPECT_EQ(train::distributed_env().rank, 1);
  unsetenv("WORLD_SIZE");
  unsetenv("RANK");
  EXPECT_EQ(train::distributed_env().world_size, 1);
  setenv("LOCAL_RANK", "-1", 1);
  EXPECT_THROW(train::distributed_env(), InputError);
  unsetenv("LOCAL_RANK");
}

// One GPU per rank: a bare "cuda" is the rank's own, cuda:LOCAL_RANK (on
// this CPU-only LibTorch, the refusal names it); an explicit device stays.
TEST(DataParallel, EachRankTakesTheGpuOfItsLocalRank) {
  setenv("LOCAL_RANK", "3", 1);
  EXPECT_EQ(train::rank_device("cpu"), torch::Device(torch::kCPU));
  if (torch::cuda::is_available() && torch::cuda::device_count() > 3) {
    EXPECT_EQ(train::rank_device("cuda"), torch::Device("cuda:3"));
  } else {
    try {
      train::rank_device("cuda");
      ADD_FAILURE() << "cuda accepted without a fourth GPU";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("cuda:3"), std::string::npos) << e.what();
    }
  }
  unsetenv("LOCAL_RANK");
}

}  // namespace
}  // namespace steper::distill
