// The optimizer side of a training step behind one interface, so that the
// loop is the same whether every rank keeps the whole optimizer state
// (replicated) or 1/N of it (sharded, ZeRO stage 2). Internal to train/.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "steper/train.h"

namespace steper::train {

// What is stepped, in this order: the model's decayed matrices, its
// undecayed vectors and LoRA factors (these two scheduled and clipped), then
// the extra parameters (ExtraParams: their own learning rate, no decay, not
// clipped).
struct SteppedTensors {
  std::vector<torch::Tensor> tensors;
  std::size_t decay = 0;      // tensors [0, decay) take weight decay
  std::size_t trainable = 0;  // tensors [0, trainable) are the model's
  double extra_lr = 0;
};

class StepOptimizer {
 public:
  virtual ~StepOptimizer() = default;
  // Before a step's backward passes.
  virtual void zero_grad() = 0;
  // After them: the gradients divided by the loss scale, averaged over the
  // ranks, and the model's clipped to a global norm of `max_norm` (infinity:
  // never). Returns their norm before clipping; 0 when nothing clips and
  // `want_norm` is false.
  virtual double finish_gradients(double scale, double max_norm, bool want_norm) = 0;
  // One AdamW step, the model's groups at `lr`; the model then holds the
  // new weights, rounded to its dtype.
  virtual void step(double lr) = 0;
  // Before the first step: every rank starts from the same weights.
  virtual void synchronise() = 0;
  // Writes the optimizer's files into `state_dir`, announcing each first.
  // Sharded, every rank writes its own; replicated, only the writer.
  virtual void save(const std::string& state_dir, const std::function<void()>& before_file) = 0;
  virtual void load(const std::string& state_dir) = 0;
  virtual bool sharded() const = 0;
  // What trainer_state.json records, so that a resume under another
  // layout is refused before it reads a file: "replicated" or "sharded/N".
  virtual std::string layout() const = 0;
};

// AdamW over float32 tensors on every rank (the model's own when float32,
// master copies under mixed precision); gradients all-reduced.
std::unique_ptr<StepOptimizer> replicated_adamw(const SteppedTensors& stepped, const TrainConfig& config, DataParallel* parallel);

// ZeRO stage 2: the stepped tensors form one flat float32 vector, split in
// N equal shards; rank r keeps shard r of the master weights, of both AdamW
// moments and of the averaged gradients. Gradients are reduce-scattered,
// the updated shards all-gathered into every rank's model. The arithmetic
// is AdamW's, element for element, so the steps are the replicated run's.
// Only with a data-parallel group: one process has nothing to shard.
std::unique_ptr<StepOptimizer> sharded_adamw(const SteppedTensors& stepped, const TrainConfig& config, DataParallel& parallel);

}  // namespace steper::train
