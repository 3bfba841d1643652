// Data-parallel training as users start it: `steper train` processes with
// RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (what `torchrun
// --no-python` sets), talking over c10d Gloo on loopback. Two ranks with
// batch B must take the steps one process takes with batch 2B.
#include <gtest/gtest.h>

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

  const std::string port = std::to_string(testing::free_port());
  std::vector<pid_t> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(testing::spawn(train_args(dir / "s.jsonl", w.model, dir / "two", 3),
                          {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port,
                           "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"},
                          dir / ("rank" + std::to_string(r) + ".log")));
  }
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(testing::wait_exit(ranks[static_cast<std::size_t>(r)]), 0) << testing::read_file(dir / ("rank" + std::to_string(r) + ".log"));
  }
  ASSERT_EQ(testing::wait_exit(testing::spawn(train_args(dir / "s.jsonl", w.model, dir / "one", 6), {}, dir / "one.log")), 0)
      << testing::read_file(dir / "one.log");

  // The logged losses are those of the global batch, per stage too.
  for (const char* field : {"loss", "loss_init", "loss_expand", "loss_aggregate", "weight_aggregate"}) {
    auto two = testing::metrics_column(dir / "two/metrics.jsonl", field), one = testing::metrics_column(dir / "one/metrics.jsonl", field);
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
  EXPECT_NE(testing::read_file(dir / "rank1.log").find("rank 1 of 2"), std::string::npos);
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
