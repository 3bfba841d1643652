#include <unistd.h>

#include <cstdio>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "steper/io.h"
#include "steper/model.h"

namespace steper::cli {
namespace {

struct GenerateArgs {
  std::string model, device = "cpu", dtype = "float32";
  std::vector<std::string> prompts, prompt_files;
  bool json = false;
  model::GenerateOptions options;
};

// A prompt file is read whole, so it is bounded: no prompt a model can take
// comes near this.
constexpr std::size_t kMaxPromptFileBytes = 64u << 20;

std::string read_prompt_file(const std::string& path) {
  if (path == "-") {
    std::string text;
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
      text.append(buf, n);
      if (text.size() > kMaxPromptFileBytes) throw InputError("standard input: more than 64 MiB; no model's context holds that");
    }
    return text;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot read the prompt file: no such file");
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a folder, not a prompt file");
  if (static_cast<std::size_t>(st.st_size) > kMaxPromptFileBytes) throw InputError(path + ": more than 64 MiB; no model's context holds that");
  return io::read_file(path);
}

void run_generate(GenerateArgs a, const Global& g) {
  for (const auto& f : a.prompt_files) a.prompts.push_back(read_prompt_file(f));
  // Neither flag: the prompt comes on standard input (a pipe or a file, not a terminal).
  if (a.prompts.empty()) {
    if (::isatty(0)) throw InputError("no prompt: give --prompt TEXT, --prompt-file FILE, or pipe it in");
    a.prompts.push_back(read_prompt_file("-"));
  }
  if (std::string w = model::blas_warning(); !w.empty()) warn(w);
  model::LoadedModel m = model::load_model(a.model, model::parse_device(a.device), model::parse_dtype_name(a.dtype));
  if (!m.tokenizer) throw InputError(a.model + " has no tokenizer.json or tokenizer.model");
  model::GenerateStats stats;
  auto out = model::generate(m.model, *m.tokenizer, a.prompts, a.options, &stats);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (a.json) {
      const nlohmann::json line{{"index", i},
                                {"prompt", a.prompts[i]},
                                {"text", out[i].text},
                                {"finish", out[i].finish},
                                {"prompt_tokens", out[i].prompt_tokens},
                                {"completion_tokens", out[i].tokens.size()}};
      std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      continue;
    }
    if (out.size() > 1) std::printf("--- %zu (%s)\n", i + 1, out[i].finish.c_str());
    std::printf("%s\n", out[i].text.c_str());
  }
  if (g.quiet) return;
  std::fprintf(stderr, "%lld prompt + %lld new tokens in %.2f s: %.0f new tokens/s\n",
               static_cast<long long>(stats.prompt_tokens), static_cast<long long>(stats.new_tokens), stats.seconds,
               static_cast<double>(stats.new_tokens) / std::max(1e-9, stats.seconds));
}

}  // namespace

void add_generate_command(CLI::App& app, const Global& global) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Complete one or more prompts with a model folder (greedy unless --temperature > 0): --prompt TEXT,\n"
      "--prompt-file FILE, or standard input. Prints the completions (--json: one JSON line each) on\n"
      "stdout and the token counts and speed on stderr.");
  cmd->add_option("--model", a->model, "Model folder (config.json, model.safetensors, tokenizer)")->required();
  cmd->add_option("--prompt", a->prompts, "Prompt text; repeat for a batch");
  cmd->add_option("--prompt-file", a->prompt_files,
                  "A file whose whole text is one prompt ('-': standard input); repeatable. With neither\n"
                  "--prompt nor --prompt-file the prompt is read from standard input");
  cmd->add_flag("--json", a->json,
                "One JSON line per prompt on stdout: index, prompt, text, finish (eos, stop, length),\n"
                "prompt_tokens, completion_tokens");
  cmd->add_option("--max-new-tokens", a->options.max_new_tokens, "Tokens to generate at most")->check(positive());
  cmd->add_option("--temperature", a->options.temperature, "Sampling temperature (0: greedy)")->check(non_negative());
  cmd->add_option("--top-p", a->options.top_p, "Nucleus sampling mass")->check(over_and_at_most(0, 1));
  cmd->add_option("--seed", a->options.seed, "Sampling seed");
  cmd->add_option("--stop", a->options.stop, "Stop string (the text ends before it); repeatable");
  cmd->add_option("--batch", a->options.batch_size, "Prompts decoded together")->check(positive());
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N");
  cmd->add_option("--dtype", a->dtype, "float32, bfloat16 or float16");
  cmd->callback([a, &global] { run_generate(*a, global); });
}

}  // namespace steper::cli
