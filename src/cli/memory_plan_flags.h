// --plan and its flags, shared by `steper train` and `steper pretrain`: the
// memory per rank a run would take (train::plan_memory), printed instead of
// training. The run's own flags (--dtype, --batch, --recompute, --lora-rank)
// feed the plan as they would feed the run.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "steper/memory_plan.h"
#include "steper/train.h"

namespace steper::cli {

struct PlanFlags {
  bool plan = false, json = false;
  int world_size = 0;             // 0: WORLD_SIZE, else 1
  double device_memory_gb = 80;   // an 80 GB GPU
};

void add_plan_flags(CLI::App* cmd, PlanFlags& flags);

// What a run with these settings would plan: its dtype, batch and
// recomputation, `max_tokens` per sequence, steper's fused kernels when it
// runs float32 on the CPU, the ranks of --world-size (else the launcher's
// WORLD_SIZE) and --shard-optimizer. LoRA is the caller's to add.
train::PlanOptions plan_options(const train::TrainConfig& config, const std::string& device, int max_tokens,
                                const PlanFlags& flags);

// Prints the plan of `config` under `options`: a table, or with --json one
// object {"weights_gb", "grads_gb", "optimizer_gb", "activations_gb", "total_gb", "fits", ...}.
void print_memory_plan(const model::ModelConfig& config, const train::PlanOptions& options, const PlanFlags& flags,
                       const std::string& source);

// A run (not --plan): throws InputError "--NAME is required" for each of
// `required` left empty, and refuses --shard-optimizer in one process.
void check_run_flags(const train::TrainConfig& config, const std::vector<std::pair<std::string, const char*>>& required);

}  // namespace steper::cli
