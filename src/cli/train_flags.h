// The optimisation flags of train::TrainConfig, shared by `steper pretrain`
// and `steper train`. Their defaults are the struct's as the command sets it
// up (--help shows them), so each default is written once, in the library.
#pragma once

#include <CLI/CLI.hpp>

#include "commands.h"
#include "steper/train.h"

namespace steper::cli {

inline void add_train_config_flags(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--steps", c.steps, "Optimizer steps")->check(positive());
  cmd->add_option("--batch", c.batch_size, "Rows (samples) per micro-batch; with data parallelism, per rank")->check(positive());
  cmd->add_option("--accum", c.grad_accum, "Micro-batches per step")->check(positive());
  cmd->add_option("--lr", c.lr, "Peak learning rate (linear warm-up, then cosine)")->check(positive());
  cmd->add_option("--min-lr-ratio", c.min_lr_ratio, "Final learning rate as a share of the peak")->check(in_range(0.0, 1.0));
  cmd->add_option("--warmup", c.warmup_steps, "Warm-up steps");
  cmd->add_option("--weight-decay", c.weight_decay, "AdamW weight decay (matrices only)");
  cmd->add_option("--clip", c.grad_clip, "Gradient-norm clip (0: off)");
  cmd->add_option("--save-every", c.save_every, "Steps between checkpoints (0: only at the end)");
  cmd->add_option("--seed", c.seed, "Seed of initialisation and data order");
}

}  // namespace steper::cli
