#include <cstdio>

#include "commands.h"
#include "steper/model.h"

namespace steper::cli {
namespace {

struct GenerateArgs {
  std::string model, device = "cpu", dtype = "float32";
  std::vector<std::string> prompts;
  model::GenerateOptions options;
};

void run_generate(const GenerateArgs& a) {
  if (std::string w = model::blas_warning(); !w.empty()) warn(w);
  model::LoadedModel m = model::load_model(a.model, model::parse_device(a.device), model::parse_dtype_name(a.dtype));
  if (!m.tokenizer) throw InputError(a.model + " has no tokenizer.json or tokenizer.model");
  model::GenerateStats stats;
  auto out = model::generate(m.model, *m.tokenizer, a.prompts, a.options, &stats);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out.size() > 1) std::printf("--- %zu (%s)\n", i + 1, out[i].finish.c_str());
    std::printf("%s\n", out[i].text.c_str());
  }
  std::fprintf(stderr, "%lld prompt + %lld new tokens in %.2f s: %.0f new tokens/s\n",
               static_cast<long long>(stats.prompt_tokens), static_cast<long long>(stats.new_tokens), stats.seconds,
               static_cast<double>(stats.new_tokens) / std::max(1e-9, stats.seconds));
}

}  // namespace

void add_generate_command(CLI::App& app, const Global&) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Complete one or more prompts with a model folder (greedy unless --temperature > 0).");
  cmd->add_option("--model", a->model, "Model folder (config.json, model.safetensors, tokenizer)")->required();
  cmd->add_option("--prompt", a->prompts, "Prompt text; repeat for a batch")->required();
  cmd->add_option("--max-new-tokens", a->options.max_new_tokens, "Tokens to generate at most")->check(positive());
  cmd->add_option("--temperature", a->options.temperature, "Sampling temperature (0: greedy)")->check(non_negative());
  cmd->add_option("--top-p", a->options.top_p, "Nucleus sampling mass")->check(over_and_at_most(0, 1));
  cmd->add_option("--seed", a->options.seed, "Sampling seed");
  cmd->add_option("--stop", a->options.stop, "Stop string (the text ends before it); repeatable");
  cmd->add_option("--batch", a->options.batch_size, "Prompts decoded together")->check(positive());
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N");
  cmd->add_option("--dtype", a->dtype, "float32, bfloat16 or float16");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace steper::cli
