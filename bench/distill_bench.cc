// Distillation training: tokens/s of a small student on step-wise samples
// from the world's gold chains, and the cost of the difficulty-aware weights
// against one plain loss (target: under 2% of step time), measured in turns
// in the same run. Usage: distill_bench [STEPS [DIM [LAYERS]]]
#include <cstdio>
#include <cstdlib>

#include "steper/distill.h"
#include "tiny_world.h"

using namespace steper;

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
  std::map<distill::Weighting, double> ms, tps;
  const distill::Weighting order[] = {distill::Weighting::none, distill::Weighting::difficulty, distill::Weighting::none,
                                      distill::Weighting::difficulty};
  int run = 0;
  for (distill::Weighting wt : order) {
    distill::TrainOptions o;
    o.train.steps = steps;
    o.train.batch_size = 8;
    o.train.save_every = 0;
    o.eval_every = 0;
    o.weighting = wt;
    double sum_ms = 0, last_tps = 0;
    int counted = 0;
    distill::train(dir / "s.jsonl", w.model, dir / ("out" + std::to_string(run++)), o, [&](const distill::DistillProgress& p) {
      if (p.train.step > 3) {  // past warm-up of the allocator
        sum_ms += p.train.ms_per_step;
        ++counted;
      }
      last_tps = p.train.tokens_per_second;
      return true;
    });
    ms[wt] += sum_ms / counted / 2;  // mean of the two turns
    tps[wt] += last_tps / 2;
  }
  std::printf("student %d x %d layers, batch 8, %d steps per turn, two turns each\n", dim, layers, steps);
  std::printf("one loss (none):      %.1f ms/step, %.0f target tokens/s\n", ms[distill::Weighting::none], tps[distill::Weighting::none]);
  std::printf("difficulty weights:   %.1f ms/step, %.0f target tokens/s\n", ms[distill::Weighting::difficulty],
              tps[distill::Weighting::difficulty]);
  std::printf("weighting overhead:   %+.2f%% of step time (target < 2%%)\n",
              100 * (ms[distill::Weighting::difficulty] / ms[distill::Weighting::none] - 1));
  return 0;
}
