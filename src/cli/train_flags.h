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
  cmd->add_option_function<std::string>(
         "--dtype", [&c](const std::string& v) { c.dtype = model::parse_dtype_name(v); },
         "Weights and activations: fp32, or bf16/fp16 in mixed precision (float32 master weights and AdamW\n"
         "state; fp16 with a dynamic loss scale); the model is saved in this dtype")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "float32", "bfloat16", "float16"}))
      ->default_str(model::torch_dtype_name(c.dtype));
  cmd->add_flag("--recompute", c.recompute,
                "Keep only each decoder layer's input and recompute the layer in the backward pass\n"
                "(activation memory of one layer plus an input per layer, for about a third more time)");
  cmd->add_flag("--shard-optimizer", c.shard_optimizer,
                "With data parallelism: each rank keeps 1/N of the float32 master weights, AdamW moments and\n"
                "averaged gradients (ZeRO stage 2; the same steps as without). A resume needs the same world size");
}

}  // namespace steper::cli
