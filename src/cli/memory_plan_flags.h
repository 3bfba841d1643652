// --plan and its flags, shared by `steper train` and `steper pretrain`: the
// memory per rank a run would take (train::plan_memory), printed instead of
// training. The run's own flags (--dtype, --batch, --recompute, --lora-rank)
// feed the plan as they would feed the run.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "steper/memory_plan.h"

namespace steper::cli {

struct PlanFlags {
  bool plan = false, json = false, shard_optimizer = false;
  int world_size = 0;             // 0: WORLD_SIZE, else 1
  double device_memory_gb = 80;   // an 80 GB GPU
};

void add_plan_flags(CLI::App* cmd, PlanFlags& flags);

// Prints the plan of `config` under `options` (world size and sharding
// taken from `flags`): a table, or with --json one object
// {"weights_gb", "grads_gb", "optimizer_gb", "activations_gb", "total_gb", "fits", ...}.
void print_memory_plan(const model::ModelConfig& config, train::PlanOptions options, const PlanFlags& flags,
                       const std::string& source);

// Throws InputError "--NAME is required" when `value` is empty: options that
// a run needs but a plan does not.
void require_for_run(const std::string& value, const char* name);

}  // namespace steper::cli
