#include <cstdio>
#include <map>

#include "commands.h"
#include "progress.h"
#include "steper/data.h"

namespace steper::cli {
namespace {

struct WorldArgs {
  data::WorldOptions options;
  std::string out;
};

void run_world(const WorldArgs& a) {
  Progress timer("world", "questions", false);
  data::World w = data::generate_world(a.options);
  data::write_world(w, a.out);
  std::map<std::string, std::size_t> splits, types;
  for (const auto& q : w.questions) {
    ++splits[q.split];
    ++types[q.question.type];
  }
  std::printf("wrote a world of %zu passages and %zu questions to %s in %.1f s (seed %llu)\n", w.corpus.size(),
              w.questions.size(), a.out.c_str(), timer.seconds(), static_cast<unsigned long long>(a.options.seed));
  for (const char* s : {"train", "distill", "dev", "test"}) std::printf("  %-8s %6zu questions  %s/%s.jsonl\n", s, splits[s], a.out.c_str(), s);
  for (const auto& [type, n] : types) std::printf("  %-20s %6zu\n", type.c_str(), n);
  if (w.questions.size() < a.options.questions) {
    warn("the world had room for only " + std::to_string(w.questions.size()) + " distinct questions of the " +
         std::to_string(a.options.questions) + " asked for");
  }
}

}  // namespace

void add_world_command(CLI::App& app, const Global&) {
  auto args = std::make_shared<WorldArgs>();
  CLI::App* cmd = app.add_subcommand(
      "world",
      "Write a synthetic multi-hop world for offline experiments: corpus.jsonl (one passage per\n"
      "entity), train/distill/dev/test.jsonl questions (2WikiMultiHopQA's types plus 3- and 4-hop\n"
      "chains) and gold_traces.jsonl (one reasoning sentence per hop). Deterministic per seed.");
  cmd->add_option("--seed", args->options.seed, "Random seed");
  cmd->add_option("--questions", args->options.questions, "Questions over all splits (40/30/15/15%)")->check(positive());
  cmd->add_option("--entities", args->options.entities,
                  "Knowledge-base size, as the question count it would be made for (0: --questions);\n"
                  "smaller: several questions per entity over a smaller corpus");
  cmd->add_option("--out", args->out, "Output folder")->required();
  cmd->callback([args] { run_world(*args); });
}

}  // namespace steper::cli
