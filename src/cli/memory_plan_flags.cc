#include "memory_plan_flags.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"

namespace steper::cli {

void add_plan_flags(CLI::App* cmd, PlanFlags& f) {
  cmd->add_flag("--plan", f.plan,
                "Print the memory per rank this run would take (weights, gradients, optimizer state, activations)\n"
                "and whether it fits --device-memory, then exit: needs the architecture only, no data or weights");
  cmd->add_flag("--json", f.json, "With --plan: one JSON object");
  cmd->add_option("--world-size", f.world_size, "With --plan: data-parallel ranks")
      ->check(CLI::PositiveNumber)
      ->default_str("WORLD_SIZE, else 1");
  cmd->add_option("--device-memory", f.device_memory_gb, "With --plan: memory per device, GB (1e9 bytes)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void check_run_flags(const train::TrainConfig& c, const std::vector<std::pair<std::string, const char*>>& required) {
  for (const auto& [value, name] : required) {
    if (value.empty()) throw InputError(std::string("--") + name + " is required (all but --plan need it)");
  }
  if (c.shard_optimizer && train::distributed_env().world_size == 1) {
    throw InputError("--shard-optimizer splits the optimizer over data-parallel ranks, and WORLD_SIZE is 1\n"
                     "  hint: start one process per rank, e.g. torchrun --nproc-per-node 2 --no-python steper train ...");
  }
}

train::PlanOptions plan_options(const train::TrainConfig& c, const std::string& device, int max_tokens, const PlanFlags& f) {
  train::PlanOptions o;
  o.dtype = model::file_dtype_of(c.dtype);
  o.batch = c.batch_size;
  o.max_tokens = max_tokens;
  o.recompute = c.recompute;
  o.fused_kernels = device == "cpu" && c.dtype == torch::kFloat32;
  o.world_size = f.world_size > 0 ? f.world_size : train::distributed_env().world_size;
  o.shard_optimizer = c.shard_optimizer;
  return o;
}

void print_memory_plan(const model::ModelConfig& config, const train::PlanOptions& o, const PlanFlags& f, const std::string& source) {
  const train::MemoryPlan p = train::plan_memory(config, o);
  const bool fits = p.total_gb <= f.device_memory_gb;
  if (f.json) {
    nlohmann::json j{{"weights_gb", p.weights_gb}, {"grads_gb", p.grads_gb}, {"optimizer_gb", p.optimizer_gb},
                     {"activations_gb", p.activations_gb}, {"total_gb", p.total_gb}, {"fits", fits},
                     {"device_memory_gb", f.device_memory_gb}, {"parameters", p.parameters}, {"trained_parameters", p.trained},
                     {"dtype", model::dtype_name(o.dtype)}, {"batch", o.batch}, {"max_tokens", o.max_tokens},
                     {"world_size", o.world_size}, {"shard_optimizer", o.shard_optimizer}, {"recompute", o.recompute},
                     {"lora_rank", o.lora_rank}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("memory per rank for %s: %.2fB parameters, %.3gB trained; %s, %d x %d tokens, %d rank%s%s%s%s\n", source.c_str(),
              p.parameters / 1e9, p.trained / 1e9, model::dtype_name(o.dtype).c_str(), o.batch, o.max_tokens, o.world_size,
              o.world_size == 1 ? "" : "s", o.shard_optimizer ? ", sharded optimizer" : "", o.recompute ? ", recompute" : "",
              o.lora_rank > 0 ? (", LoRA rank " + std::to_string(o.lora_rank)).c_str() : "");
  std::printf("  weights      %9.2f GB\n  gradients    %9.2f GB\n  optimizer    %9.2f GB\n  activations  %9.2f GB\n"
              "  total        %9.2f GB: %s %.0f GB\n",
              p.weights_gb, p.grads_gb, p.optimizer_gb, p.activations_gb, p.total_gb, fits ? "fits" : "does NOT fit", f.device_memory_gb);
}

}  // namespace steper::cli
