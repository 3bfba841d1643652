#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "steper/data.h"

namespace steper::cli {
namespace {

struct ConvertArgs {
  std::string format, input, out, dataset, aliases;
  bool skip_bad = false;
};

void run_convert(const ConvertArgs& a, const Global& g) {
  data::ConvertOptions options;
  options.skip_bad = a.skip_bad;
  options.dataset = a.dataset;
  options.aliases_path = a.aliases;
  Progress progress("convert", "questions", !g.quiet);
  options.progress = [&](std::uint64_t done, std::uint64_t bytes, std::uint64_t total) {
    progress.update(done, total ? static_cast<double>(bytes) / static_cast<double>(total) : -1.0);
  };
  data::ConvertStats s = data::convert(data::parse_format(a.format), a.input, a.out, options);
  progress.finish(s.questions);
  std::printf("wrote %llu questions to %s\n", static_cast<unsigned long long>(s.questions), s.questions_path.c_str());
  std::printf("wrote %llu passages to %s (%llu paragraphs pooled)\n", static_cast<unsigned long long>(s.passages),
              s.corpus_path.c_str(), static_cast<unsigned long long>(s.paragraphs_seen));
  if (s.skipped) {
    warn("skipped " + std::to_string(s.skipped) + " malformed record(s); the first: " + s.first_error);
  }
}

}  // namespace

void add_convert_command(CLI::App& app, const Global& global) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a multi-hop QA benchmark file into steper's questions.jsonl + corpus.jsonl.\n"
      "The paragraphs of all questions are pooled into one corpus; a paragraph shared by\n"
      "several questions (same title and text) appears once.");
  cmd->add_option("--format", args->format,
                  "Input format: ircot (IRCoT's processed JSONL), hotpotqa, 2wiki or musique (raw releases)")
      ->required()
      ->check(CLI::IsMember({"ircot", "hotpotqa", "2wiki", "musique"}));
  cmd->add_option("input", args->input, "Benchmark file (JSON array or JSON Lines)")->required();
  cmd->add_option("--out", args->out, "Output folder; gets questions.jsonl and corpus.jsonl")->required();
  cmd->add_option("--dataset", args->dataset,
                  "Dataset name for the \"dataset\" field and passage ids (default: guessed from the file name)");
  cmd->add_option("--aliases", args->aliases, "2wiki only: the release's id_aliases.json, to add answer aliases");
  cmd->add_flag("--skip-bad", args->skip_bad, "Skip malformed records (counted and reported) instead of stopping");
  cmd->callback([args, &global] { run_convert(*args, global); });
}

}  // namespace steper::cli
