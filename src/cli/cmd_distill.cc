// steper stepwise (traces -> stage samples) and steper train (distillation).
#include <cmath>
#include <cstdio>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/io.h"
#include "steper/distill.h"
#include "memory_plan_flags.h"
#include "train_flags.h"

namespace steper::cli {

void add_stepwise_command(CLI::App& app, const Global&) {
  struct Args {
    std::string traces, questions, corpus, out, mode = "steper", prompts, chat_template, protocol = "steper";
    distill::StepwiseOptions o;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "stepwise",
      "Cut teacher traces into training samples. --mode steper: per correct trace one init sample\n"
      "(question + first passages -> first step), one expand sample per middle step (passages so far ->\n"
      "chain so far) and one aggregate sample (all passages -> whole chain and answer); vanilla: the\n"
      "aggregate sample alone (vanilla KD); answer: all passages -> the gold answer.\n"
      "The prompts are cut with the settings of the run that made the traces (steper run records them in\n"
      "each trace: max passages, answer marker, prompt templates, index), so they equal, byte for byte,\n"
      "what the run sent; passage texts come from the run's index unless --corpus is given.");
  cmd->add_option("--traces", a->traces, "Teacher traces JSONL (steper run)")->required();
  cmd->add_option("--questions", a->questions, "Questions JSONL with the gold answers")->required();
  cmd->add_option("--corpus", a->corpus,
                  "Corpus JSONL the index was built from, for passage texts (default: read from the index the traces\n"
                  "record; needed for traces without a run record, such as `steper world`'s gold traces)");
  cmd->add_option("--mode", a->mode, "steper, vanilla or answer");
  cmd->add_option("--out", a->out, "Samples JSONL")->required();
  cmd->add_option("--keep", a->o.keep, "Traces that teach: em, acc (gold contained in the prediction) or all")
      ->check(CLI::IsMember({"em", "acc", "all"}));
  cmd->add_flag("--last-step-only", a->o.last_step_only, "Earlier steps in the prompt, the loss on the last step only");
  // Recorded in the traces: given, each must agree with the record.
  CLI::Option* max_passages = cmd->add_option("--max-passages", a->o.max_passages,
                                              "Passages kept in a prompt (default: the run's; refused when it differs)")
                                  ->check(positive());
  CLI::Option* marker = cmd->add_option("--marker", a->o.marker, "The text that announces the answer (default: the run's)");
  CLI::Option* prompts = cmd->add_option("--prompts", a->prompts, "Prompt templates folder (default: the run's)");
  cmd->add_option("--chat-template", a->chat_template,
                  "Render the samples' prompts through the STUDENT's chat template, as `steper run --chat` will\n"
                  "ask it: its model folder, its tokenizer_config.json, or a Jinja file");
  cmd->add_option("--system", a->o.format.system, "With --chat-template: a system message (give run the same one)");
  CLI::Option* protocol = cmd->add_option("--protocol", a->protocol,
                                          "The run's --protocol: steper, or ircot (passages cut to 350 words) (default: the run's)")
                              ->check(CLI::IsMember({"steper", "ircot"}));
  cmd->callback([a, max_passages, marker, prompts, protocol] {
    a->o.stated_max_passages = max_passages->count() > 0;
    a->o.stated_marker = marker->count() > 0;
    a->o.stated_templates = prompts->count() > 0 || protocol->count() > 0;
    a->o.mode = distill::parse_mode(a->mode);
    if (!a->prompts.empty()) a->o.templates = reason::load_templates(a->prompts);
    if (a->protocol == "ircot") a->o.templates.max_passage_words = 350;
    if (!a->chat_template.empty()) a->o.format.chat = std::make_shared<text::ChatTemplate>(text::load_chat_template(a->chat_template));
    if (!a->o.format.system.empty() && !a->o.format.chat) throw InputError("--system needs --chat-template");
    io::OutputLock lock(a->out);
    auto st = distill::build_stepwise(a->traces, a->questions, a->corpus, a->out, a->o);
    std::printf("%s: %llu traces, %llu kept, %llu dropped as wrong, %llu errors, %llu without a question\n", a->out.c_str(),
                static_cast<unsigned long long>(st.traces), static_cast<unsigned long long>(st.kept),
                static_cast<unsigned long long>(st.wrong), static_cast<unsigned long long>(st.errors),
                static_cast<unsigned long long>(st.no_question));
    for (const auto& [stage, n] : st.samples) {
      std::printf("  %-10s %8llu samples, %6.0f characters on average\n", stage.c_str(), static_cast<unsigned long long>(n),
                  st.mean_chars[stage]);
    }
  });
}

void add_train_command(CLI::App& app, const Global& global) {
  struct Args {
    std::string data, init, out, weighting = distill::weighting_name(distill::TrainOptions().weighting);
    distill::TrainOptions o;
    bool overwrite = false;
    PlanFlags plan;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Fine-tune a student on step-wise samples: loss on target tokens, one mean loss per stage,\n"
      "combined with difficulty-aware weights (sum_j L_j / (2 sigma_j^2) + log sigma_j, sigma learned),\n"
      "the floor variant (weights proportional to 1 / max(sigma_j^2, floor), summing to 1: easy stages\n"
      "first, then the focus moves to the harder ones as their losses fall), uniform weights, or none\n"
      "(one loss: vanilla KD). Writes a Hugging Face model folder (training state in OUT/trainer_state/)\n"
      "and OUT/metrics.jsonl (per-stage losses and weights); Ctrl-C saves, rerunning resumes exactly.\n"
      "Data parallel: one process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set, e.g.\n"
      "  torchrun --no_python --nproc_per_node 2 --redirects 2 --tee 2 steper train ...\n"
      "(Debian's torchrun wants underscores, and --redirects/--tee on Python 3.11); --batch is per rank.");
  cmd->add_option("--data", a->data, "Samples JSONL (steper stepwise) (required)");
  cmd->add_option("--init", a->init, "Student model folder to start from")->required();
  cmd->add_option("--out", a->out, "Output model folder (required)");
  cmd->add_option("--weighting", a->weighting,
                 "Stage weights: difficulty (the paper's), floor (sigma^2 floored), uniform, or none (one loss over all tokens)")
      ->check(CLI::IsMember(distill::weighting_names()))
      ->capture_default_str();
  cmd->add_option("--sigma-floor", a->o.sigma_floor, "floor weighting: the floor on sigma^2, a per-token loss")
      ->check(positive());
  cmd->add_option("--weight-lr", a->o.weight_lr, "Learning rate of the stage log-variances");
  cmd->add_option("--lora-rank", a->o.lora.rank, "Train LoRA adapters of this rank instead of all weights (0: off);\n"
                  "they are merged into the weights when training ends")->check(non_negative());
  cmd->add_option("--lora-alpha", a->o.lora.alpha, "LoRA scale numerator (the update is scaled by alpha / rank)");
  cmd->add_option("--lora-targets", a->o.lora.targets, "Projections with adapters (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)")
      ->delimiter(',');
  add_train_config_flags(cmd, a->o.train);
  cmd->add_option("--epochs", a->o.epochs, "Passes over the samples (overrides --steps)");
  cmd->add_option("--max-tokens", a->o.max_tokens, "Drop samples longer than this (0: the model's context)");
  cmd->add_option("--holdout", a->o.holdout, "Share of questions held out for evaluation");
  cmd->add_option("--eval-every", a->o.eval_every, "Steps between held-out evaluations (0: never)");
  cmd->add_option("--device", a->o.device, "cpu, cuda (with ranks: each its cuda:LOCAL_RANK) or cuda:N");
  cmd->add_flag("--overwrite", a->overwrite, "Start over even if --out holds a checkpoint");
  add_plan_flags(cmd, a->plan);
  cmd->callback([a, &global] {
    if (a->plan.plan) {
      const model::ModelConfig config = model::read_model_config(a->init + "/config.json");
      train::PlanOptions p = plan_options(a->o.train, a->o.device, a->o.max_tokens > 0 ? a->o.max_tokens : config.max_position_embeddings, a->plan);
      p.lora_rank = a->o.lora.rank;
      p.lora_targets = a->o.lora.targets;
      print_memory_plan(config, p, a->plan, a->init + "/config.json");
      return;
    }
    check_run_flags(a->o.train, {{a->data, "data"}, {a->out, "out"}});
    if (std::string w = lm::local_backend_warning(); !w.empty()) warn(w);
    a->o.weighting = distill::parse_weighting(a->weighting);
    auto parallel = join_data_parallel(a->o.device);
    a->o.parallel = parallel.get();
    const bool writer = !parallel || parallel->rank() == 0;
    std::unique_ptr<io::OutputLock> lock = writer ? std::make_unique<io::OutputLock>(a->out) : nullptr;
    if (a->overwrite && writer) std::filesystem::remove_all(a->out);
    if (parallel) parallel->barrier();  // the others wait until rank 0 has cleared --out
    if (const std::int64_t from = train::saved_step(a->out); from > 0 && writer && !global.quiet) {
      std::fprintf(stderr, "distill: resuming from step %lld (the checkpoint in %s)\n", static_cast<long long>(from), a->out.c_str());
    }
    Progress progress("train", "steps", !global.quiet && writer);
    StopOnInterrupt interrupt;
    auto report = distill::train(a->data, a->init, a->out, a->o, [&](const distill::DistillProgress& d) {
      char extra[200];
      auto f = [](double x) { return std::isnan(x) ? std::string("-") : std::to_string(x).substr(0, 5); };
      std::snprintf(extra, sizeof extra, "loss %.4f  init %s expand %s aggr %s  w %.2f/%.2f/%.2f%s", d.train.loss,
                    f(d.stage_loss[0]).c_str(), f(d.stage_loss[1]).c_str(), f(d.stage_loss[2]).c_str(), d.stage_weight[0],
                    d.stage_weight[1], d.stage_weight[2], d.eval_loss >= 0 ? ("  eval " + f(d.eval_loss)).c_str() : "");
      progress.update(static_cast<std::uint64_t>(d.train.step), static_cast<double>(d.train.step) / static_cast<double>(d.train.steps), extra);
      return !StopOnInterrupt::stop_requested();
    });
    if (report.steps < report.total_steps) {
      progress.abandon();
      throw Interrupted("interrupted at step " + std::to_string(report.steps) + "; checkpoint saved in " + a->out +
                        "; rerun the same command to resume");
    }
    progress.finish(static_cast<std::uint64_t>(report.steps));
    if (!writer) return;
    std::printf("trained %s: %lld steps on %llu samples (%llu held out, %llu dropped as longer than the context) in %.0f s\n",
                a->out.c_str(), static_cast<long long>(report.steps), static_cast<unsigned long long>(report.samples),
                static_cast<unsigned long long>(report.held_out), static_cast<unsigned long long>(report.dropped), report.seconds);
  });
}

}  // namespace steper::cli
