// steper pretrain: a Llama-architecture model from scratch, next-token
// language modelling over a JSONL of texts.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/io.h"
#include "steper/data.h"
#include "steper/model.h"
#include "steper/train.h"
#include "memory_plan_flags.h"
#include "train_flags.h"

namespace steper::cli {
namespace {

struct PretrainArgs {
  std::string data, tokenizer, out, field = "text";
  train::PretrainOptions options;
  int threads = 0;
  bool overwrite = false;
  PlanFlags plan;
};

void run_pretrain(PretrainArgs& a, const Global& g) {
  if (std::string w = model::blas_warning(); !w.empty()) warn(w);
  if (a.threads > 0) torch::set_num_threads(a.threads);
  train::PretrainOptions& o = a.options;
  auto tok = text::load_tokenizer(a.tokenizer);
  if (a.plan.plan) {
    print_memory_plan(train::pretrain_config(o, *tok), plan_options(o.train, o.device, o.seq_len, a.plan), a.plan,
                      "the architecture of these flags");
    return;
  }
  check_run_flags(a.options.train, {{a.data, "data"}, {a.out, "out"}});
  model::parse_device(o.device);              // refuse a bad device before the tokenizing,
  train::pretrain_config(o, *tok);            // and a bad architecture
  std::vector<int> packed;
  {
    TextReader texts(a.data, a.field);
    Progress progress("tokenize", "texts", !g.quiet);
    packed = train::pack_texts(*tok, [&](const auto& f) {
      std::string text;
      while (texts.next(text)) {
        f(text);
        progress.update(texts.count(), texts.fraction());
      }
    });
    progress.finish(texts.count());
  }
  auto parallel = join_data_parallel(o.device);
  o.parallel = parallel.get();
  const int rank = parallel ? parallel->rank() : 0;
  std::unique_ptr<io::OutputLock> lock = rank == 0 ? std::make_unique<io::OutputLock>(a.out) : nullptr;
  if (a.overwrite && rank == 0) std::filesystem::remove_all(a.out);
  if (parallel) parallel->barrier();  // the others wait until rank 0 has cleared --out
  // The data's canonical path: the same run named by another path is the same run.
  o.run_key = std::to_string(std::filesystem::file_size(a.data)) + ":" + std::filesystem::weakly_canonical(a.data).string();

  Progress progress("train", "steps", !g.quiet && rank == 0);
  StopOnInterrupt interrupt;
  const train::TrainConfig& tc = o.train;
  const train::PretrainReport r = train::pretrain(
      packed, text::find_tokenizer_file(a.tokenizer), a.out, o,
      [&](const train::PretrainReport& plan) {
        if (g.quiet || rank != 0) return;
        const model::ModelConfig& mc = plan.config;
        const std::int64_t rows_per_step = static_cast<std::int64_t>(tc.batch_size) * tc.grad_accum * (parallel ? parallel->world_size() : 1);
        std::fprintf(stderr,
                     "pretrain: %.2fM parameters (dim %d, %d layers, %d heads, %d kv heads, ffn %d, vocab %d), %s\n"
                     "          %lld tokens in %lld rows of %d; %lld steps x %d x %d rows (%.2f epochs); lr %.1e, warm-up %lld\n",
                     static_cast<double>(mc.parameter_count()) / 1e6, mc.hidden_size, mc.num_hidden_layers, mc.num_attention_heads,
                     mc.num_key_value_heads, mc.intermediate_size, mc.vocab_size, o.device.c_str(),
                     static_cast<long long>(plan.tokens), static_cast<long long>(plan.rows), o.seq_len,
                     static_cast<long long>(plan.steps), tc.batch_size, tc.grad_accum,
                     static_cast<double>(plan.steps * rows_per_step) / static_cast<double>(plan.rows), tc.lr,
                     static_cast<long long>(tc.warmup_steps));
        if (const std::int64_t from = train::saved_step(a.out); from > 0) {
          std::fprintf(stderr, "pretrain: resuming from step %lld of %lld (the checkpoint in %s)\n", static_cast<long long>(from),
                       static_cast<long long>(plan.steps), a.out.c_str());
        }
      },
      [&](const train::TrainProgress& p) {
        char extra[160];
        std::snprintf(extra, sizeof extra, "loss %.4f  lr %.2e  |g| %.2f  %.0f ms/step  %s tok/s", p.loss, p.lr, p.grad_norm,
                      p.ms_per_step, human_count(p.tokens_per_second).c_str());
        progress.update(static_cast<std::uint64_t>(p.step), static_cast<double>(p.step) / static_cast<double>(p.steps), extra);
        return !StopOnInterrupt::stop_requested();
      });
  const std::int64_t done = r.result.steps;
  if (done < r.steps) {
    progress.abandon();
    throw Interrupted("interrupted at step " + std::to_string(done) + " of " + std::to_string(r.steps) +
                      "; checkpoint saved in " + a.out + "; rerun the same command to resume");
  }
  progress.finish(static_cast<std::uint64_t>(done));
  if (rank != 0) return;
  std::printf("trained %s: %lld steps, checkpoint in %s\n", a.out.c_str(), static_cast<long long>(done), a.out.c_str());
}

}  // namespace

void add_pretrain_command(CLI::App& app, const Global& global) {
  auto a = std::make_shared<PretrainArgs>();
  a->options.model.intermediate_size = 0;   // auto
  a->options.model.num_key_value_heads = 0; // = heads
  CLI::App* cmd = app.add_subcommand(
      "pretrain",
      "Train a Llama-architecture model from scratch on a JSONL of texts (next-token prediction over\n"
      "packed sequences). Writes a Hugging Face model folder to --out (training state in\n"
      "OUT/trainer_state/) every --save-every steps; Ctrl-C saves and stops, and rerunning the same\n"
      "command resumes exactly. Data parallel: one process per rank with RANK, WORLD_SIZE, MASTER_ADDR,\n"
      "MASTER_PORT set, e.g.\n"
      "  torchrun --no_python --nproc_per_node 2 --redirects 2 --tee 2 steper pretrain ...\n"
      "(Debian's torchrun wants underscores, and --redirects/--tee on Python 3.11); --batch is per rank.");
  cmd->add_option("--data", a->data, "JSONL of texts (a corpus.jsonl works) (required)");
  cmd->add_option("--field", a->field, "Field holding each text");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer folder or file (steper tokenizer train makes one)")->required();
  cmd->add_option("--out", a->out, "Model folder (required)");
  cmd->add_option("--dim", a->options.model.hidden_size, "Hidden size")->check(positive());
  cmd->add_option("--layers", a->options.model.num_hidden_layers, "Decoder layers")->check(positive());
  cmd->add_option("--heads", a->options.model.num_attention_heads, "Attention heads")->check(positive());
  cmd->add_option("--kv-heads", a->options.model.num_key_value_heads, "Key/value heads (default: = heads; fewer is GQA)");
  cmd->add_option("--ffn", a->options.model.intermediate_size, "MLP size (default: 8/3 x dim, rounded up to 32)");
  cmd->add_option("--rope-theta", a->options.model.rope_theta, "RoPE base");
  cmd->add_flag("--tie", a->options.model.tie_word_embeddings, "Tie the output layer to the embeddings");
  cmd->add_option("--seq-len", a->options.seq_len, "Tokens per training row")->check(in_range(2, 1 << 20));
  add_train_config_flags(cmd, a->options.train);
  cmd->add_option("--epochs", a->options.epochs, "Passes over the data (overrides --steps)");
  cmd->add_option("--device", a->options.device, "cpu, cuda (with ranks: each its cuda:LOCAL_RANK) or cuda:N");
  cmd->add_option("--threads", a->threads, "LibTorch intra-op threads (0: LibTorch's default)");
  cmd->add_flag("--overwrite", a->overwrite, "Start over even if --out holds a checkpoint");
  add_plan_flags(cmd, a->plan);
  cmd->callback([a, &global] { run_pretrain(*a, global); });
}

}  // namespace steper::cli
