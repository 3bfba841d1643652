// Distillation training: tokens/s of a small student on step-wise samples
// from the world's gold chains; the cost of the difficulty-aware weights
// against one plain loss (target: under 2% of step time) and batches in
// length groups against batches padded whole, measured in turns in the
// same run; and `steper train` as one process against two Gloo ranks
// of one thread each on the same global batch (started as torchrun starts
// them); and four students trained one at a time on LibTorch's default
// threads against two at a time on one thread each, as `steper demo` trains
// its students (parallel_jobs). Usage: distill_bench [STEPS [DIM [LAYERS]]]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>
#include <utility>

#include "process.h"
#include "steper/distill.h"
#include "steper/model.h"
#include "tiny_world.h"

using namespace steper;

namespace {

struct Timing {
  double ms_per_step = 0, tokens_per_second = 0;
};

// Mean ms/step past the first 3 steps, and the run's tokens/s, from the
// metrics rank 0 wrote.
Timing read_timing(const std::string& metrics) {
  data::JsonRecords r(metrics);
  data::json j;
  Timing t;
  int counted = 0;
  while (r.next(j)) {
    if (j["step"].get<int>() > 3) {
      t.ms_per_step += j["ms_per_step"].get<double>();
      ++counted;
    }
    t.tokens_per_second = j["tokens_per_second"].get<double>();
  }
  t.ms_per_step /= std::max(1, counted);
  return t;
}

// `steper train` with `ranks` processes of `batch` samples each.
Timing train_processes(const testing::TempDir& dir, const testing::TinyWorld& w, const std::string& name, int ranks, int batch, int steps,
                       const std::vector<std::string>& env) {
  const std::string port = std::to_string(testing::free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string> e = env;
    if (ranks > 1) {
      for (const std::string& v : {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(ranks), std::string("MASTER_ADDR=127.0.0.1"),
                                   "MASTER_PORT=" + port}) {
        e.push_back(v);
      }
    }
    pids.push_back(testing::spawn({STEPER_BIN, "--quiet", "train", "--data", dir / "s.jsonl", "--init", w.model, "--out", dir / name,
                                   "--weighting", "difficulty", "--steps", std::to_string(steps), "--batch", std::to_string(batch),
                                   "--eval-every", "0", "--save-every", "0"},
                                  e, dir / (name + std::to_string(r) + ".log")));
  }
  for (int r = 0; r < ranks; ++r) {
    if (testing::wait_exit(pids[static_cast<std::size_t>(r)]) != 0) {
      std::fprintf(stderr, "%s rank %d failed:\n%s\n", name.c_str(), r, testing::read_file(dir / (name + std::to_string(r) + ".log")).c_str());
      std::exit(1);
    }
  }
  return read_timing(dir / (name + "/metrics.jsonl"));
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  const int dim = argc > 2 ? std::atoi(argv[2]) : 256;
  const int layers = argc > 3 ? std::atoi(argv[3]) : 4;
  model::tune_allocator();
  testing::TempDir dir;
  std::fprintf(stderr, "building the tiny world and model...\n");
  testing::TinyWorld w = testing::make_tiny_world(dir.path(), 20, dim, layers);
  distill::StepwiseOptions so;
  so.keep = "all";
  distill::build_stepwise(w.dir + "/world/gold_traces.jsonl", w.train, w.corpus, dir / "s.jsonl", so);
  // `steps` steps of batch 8 in this process, into `out`.
  auto train_here = [&](const std::string& out, distill::Weighting wt, bool grouped) {
    distill::TrainOptions o;
    o.train.steps = steps;
    o.train.batch_size = 8;
    o.train.save_every = 0;
    o.eval_every = 0;
    o.weighting = wt;
    o.group_by_length = grouped;
    distill::train(dir / "s.jsonl", w.model, out, o, nullptr);
  };
  // One turn, timed as the processes below.
  int run = 0;
  auto turn = [&](distill::Weighting wt, bool grouped) {
    const std::string out = dir / ("out" + std::to_string(run++));
    train_here(out, wt, grouped);
    return read_timing(out + "/metrics.jsonl");
  };
  // Each case twice, in turns, so that drift of the machine falls on both.
  std::map<std::pair<distill::Weighting, bool>, Timing> mean;
  const std::pair<distill::Weighting, bool> cases[] = {{distill::Weighting::none, true}, {distill::Weighting::difficulty, true},
                                                       {distill::Weighting::difficulty, false}};
  for (int repeat = 0; repeat < 2; ++repeat) {
    for (const auto& c : cases) {
      const Timing t = turn(c.first, c.second);
      mean[c].ms_per_step += t.ms_per_step / 2;
      mean[c].tokens_per_second += t.tokens_per_second / 2;
    }
  }
  const Timing none = mean[cases[0]], difficulty = mean[cases[1]], whole = mean[cases[2]];
  std::printf("student %d x %d layers, batch 8, %d steps per turn, two turns each\n", dim, layers, steps);
  std::printf("one loss (none):      %.1f ms/step, %.0f target tokens/s\n", none.ms_per_step, none.tokens_per_second);
  std::printf("difficulty weights:   %.1f ms/step, %.0f target tokens/s\n", difficulty.ms_per_step, difficulty.tokens_per_second);
  std::printf("weighting overhead:   %+.2f%% of step time (target < 2%%)\n", 100 * (difficulty.ms_per_step / none.ms_per_step - 1));
  std::printf("batches padded whole: %.1f ms/step; in length groups %.2fx faster\n", whole.ms_per_step,
              whole.ms_per_step / difficulty.ms_per_step);

  // Data parallel: the same global batch of 16 and the same samples per step.
  const std::vector<std::string> one_thread{"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"};
  Timing def = train_processes(dir, w, "dp-one-default", 1, 16, steps, {});
  Timing one = train_processes(dir, w, "dp-one-1thread", 1, 16, steps, one_thread);
  Timing two = train_processes(dir, w, "dp-two-1thread", 2, 8, steps, one_thread);
  std::printf("\nsteper train, global batch 16, %d steps (difficulty weights):\n", steps);
  std::printf("1 process, default threads:  %7.1f ms/step  %6.0f target tokens/s\n", def.ms_per_step, def.tokens_per_second);
  std::printf("1 process, 1 thread:         %7.1f ms/step  %6.0f target tokens/s\n", one.ms_per_step, one.tokens_per_second);
  std::printf("2 Gloo ranks x 1 thread:     %7.1f ms/step  %6.0f target tokens/s\n", two.ms_per_step, two.tokens_per_second);
  std::printf("2 ranks / 1 process (default threads): %.2fx;  / 1 process (1 thread): %.2fx\n",
              def.ms_per_step / two.ms_per_step, one.ms_per_step / two.ms_per_step);

  // Four students of `steps` steps each: one at a time, or two at a time on
  // one thread each; in turns, twice each.
  auto four_students = [&](bool side_by_side) {
    std::vector<std::string> outs;
    for (int i = 0; i < 4; ++i) outs.push_back(dir / ("student" + std::to_string(run++)));
    auto student = [&](const std::string& out) { train_here(out, distill::Weighting::difficulty, true); };
    const auto t0 = std::chrono::steady_clock::now();
    if (!side_by_side) {
      for (const auto& out : outs) student(out);
    } else {
      model::CpuThreads threads(1);
      std::thread a([&] { student(outs[0]), student(outs[2]); }), b([&] { student(outs[1]), student(outs[3]); });
      a.join();
      b.join();
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double apart = 0, side = 0;
  for (int repeat = 0; repeat < 2; ++repeat) {
    apart += four_students(false) / 2;
    side += four_students(true) / 2;
  }
  std::printf("\nfour students of %d steps (difficulty weights, batch 8), two turns each:\n", steps);
  std::printf("one at a time, default threads:   %6.1f s\n", apart);
  std::printf("two at a time, one thread each:   %6.1f s  (%.2fx sooner)\n", side, apart / side);
  return 0;
}
