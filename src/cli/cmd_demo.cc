// steper demo: the whole StepER experiment on the synthetic world (or on
// your data, with --config), resumable, ending with the comparison table.
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/error.h"
#include "steper/io.h"
#include "steper/pipeline.h"

namespace steper::cli {
namespace {

struct DemoArgs {
  std::string preset = "tiny", out, config;
  std::uint64_t seed = 1;
  bool seed_given = false, print_config = false;
  std::vector<std::string> summarize;
};

void run_demo(const DemoArgs& a, const Global& g) {
  if (!a.summarize.empty()) {
    std::printf("%s", pipeline::seeds_table(a.summarize).c_str());
    return;
  }
  pipeline::ExperimentConfig c = pipeline::preset(a.preset);
  if (!a.config.empty()) {
    c = pipeline::config_from_json(io::read_json(a.config), c, a.config);
  }
  if (a.seed_given) c.seed = a.seed;
  if (a.print_config) {
    std::printf("%s\n", pipeline::to_json(c).dump(2).c_str());
    return;
  }
  const std::string out = a.out.empty() ? "demo/" + c.name + "-seed" + std::to_string(c.seed) : a.out;
  io::OutputLock lock(out);
  if (std::string w = lm::local_backend_warning(); !w.empty()) warn(w);

  std::unique_ptr<Progress> bar;
  std::string bar_stage;
  StopOnInterrupt interrupt;
  pipeline::Hooks hooks;
  hooks.log = [&](const std::string& line) {
    if (bar) bar->finish(0);
    bar.reset();
    bar_stage.clear();
    if (!g.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  hooks.progress = [&](const pipeline::Event& e) {
    if (!bar || e.stage != bar_stage) {
      if (bar) bar->finish(0);
      bar = std::make_unique<Progress>(e.stage, "", !g.quiet);
      bar_stage = e.stage;
    }
    bar->update(0, e.fraction, e.detail);
    return !StopOnInterrupt::stop_requested();
  };
  pipeline::ExperimentResult r;
  try {
    r = pipeline::run_experiment(c, out, hooks);
  } catch (const pipeline::Stopped& e) {
    if (bar) bar->abandon();
    throw Interrupted(e.what());
  }
  if (bar) bar->finish(0);
  std::printf("\n%s\nreport: %s (index.html: the traces and plots in a browser; metrics.md, metrics.json, *.svg)\n", r.table.c_str(), r.report_dir.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app, const Global& global) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Run the whole StepER experiment and print the comparison table: make a synthetic world, index it,\n"
      "train a tokenizer, pretrain a teacher and a smaller student, teach both to read (single-hop\n"
      "questions over retrieved passages), fine-tune the teacher on gold reasoning chains, run it over\n"
      "the distill split, cut its correct traces into step-wise, vanilla-KD and answer-only data, train\n"
      "five students from the same start for the same number of epochs (answer-only SFT, vanilla KD,\n"
      "StepER uniform, StepER difficulty-aware, StepER with the sigma^2 floor), run every model over dev\n"
      "and test, and write a report (config, logs, metrics.md/json with paired bootstrap intervals, SVG\n"
      "plots) under --out/report. The students, and the runs over dev and test, go two at a time on one\n"
      "CPU thread each (parallel_jobs in the config; 1: one at a time on all threads).\n"
      "Every stage is resumable: rerun the same command after Ctrl-C or a crash and it goes on; change\n"
      "the config and only what depends on the change reruns. --config FILE (JSON, any subset of the\n"
      "fields --print-config shows) adjusts a preset or points the pipeline at your own corpus,\n"
      "question splits and models.");
  cmd->add_option("--preset", a->preset, "tiny (8 to 10 minutes on 2 cores), small (about 40), micro (a smoke test)")
      ->check(CLI::IsMember(pipeline::preset_names()));
  cmd->add_option("--seed", a->seed, "Seed of the world, initialisation and data order (default: 1)")
      ->each([a](const std::string&) { a->seed_given = true; });
  cmd->add_option("--out", a->out, "Experiment folder (default: demo/PRESET-seedS)");
  cmd->add_option("--config", a->config, "JSON config overriding the preset's fields");
  cmd->add_flag("--print-config", a->print_config, "Print the resolved config as JSON and exit");
  cmd->add_option("--summarize", a->summarize,
                  "Finished experiment folders of one config run with different seeds: print each method's\n"
                  "mean ± standard deviation, the test Acc of every seed, the paired differences with their 95%\n"
                  "bootstrap intervals, StepER's share of the teacher's Acc and the stage weights' focus over\n"
                  "training (Markdown), and exit")
      ->excludes("--print-config");
  cmd->callback([a, &global] { run_demo(*a, global); });
}

}  // namespace steper::cli
