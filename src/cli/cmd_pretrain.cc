// steper pretrain: a Llama-architecture model from scratch, next-token
// language modelling over a JSONL of texts.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/data.h"
#include "steper/model.h"

namespace steper::cli {
namespace {

struct PretrainArgs {
  std::string data, tokenizer, out, field = "text", device = "cpu";
  model::ModelConfig model;
  model::TrainConfig train;
  int seq_len = 256;
  double epochs = 0;
  int threads = 0;
  bool overwrite = false;
};

// Every text as BOS + tokens + EOS, concatenated.
std::vector<int> tokenize_texts(const std::string& path, const std::string& field, const text::Tokenizer& tok, bool quiet) {
  TextReader texts(path, field);
  Progress progress("tokenize", "texts", !quiet);
  std::vector<int> stream;
  std::string text;
  while (texts.next(text)) {
    if (tok.bos_id() >= 0) stream.push_back(tok.bos_id());
    for (int id : tok.encode(text)) stream.push_back(id);
    if (tok.eos_id() >= 0) stream.push_back(tok.eos_id());
    progress.update(texts.count(), texts.fraction());
  }
  progress.finish(texts.count());
  return stream;
}

void run_pretrain(PretrainArgs& a, const Global& g) {
  if (std::string w = model::blas_warning(); !w.empty()) warn(w);
  if (a.threads > 0) torch::set_num_threads(a.threads);
  const torch::Device device = model::parse_device(a.device);
  auto tok = text::load_tokenizer(a.tokenizer);
  model::ModelConfig& mc = a.model;
  mc.vocab_size = tok->vocab_size();
  mc.bos_token_id = tok->bos_id();
  mc.eos_token_id = tok->eos_id();
  if (mc.num_key_value_heads == 0) mc.num_key_value_heads = mc.num_attention_heads;
  if (mc.intermediate_size == 0) mc.intermediate_size = (mc.hidden_size * 8 / 3 + 31) / 32 * 32;  // Llama's ~8/3
  mc.max_position_embeddings = std::max(mc.max_position_embeddings, a.seq_len);
  mc.validate();

  model::PackedTokens data(tokenize_texts(a.data, a.field, *tok, g.quiet), a.seq_len);
  model::TrainConfig& tc = a.train;
  const std::int64_t rows_per_step = static_cast<std::int64_t>(tc.batch_size) * tc.grad_accum * model::distributed_env().world_size;
  if (a.epochs > 0) tc.steps = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(a.epochs * static_cast<double>(data.rows()) / static_cast<double>(rows_per_step))));
  auto parallel = join_data_parallel();
  const int world = parallel ? parallel->world_size() : 1, rank = parallel ? parallel->rank() : 0;
  if (a.overwrite && rank == 0) std::filesystem::remove_all(a.out);
  if (parallel) parallel->sum(0);  // the others wait until rank 0 has cleared --out

  torch::manual_seed(tc.seed);
  model::CausalLM net(mc);
  net->to(device);
  // What makes two runs the same run: resume only into one of those.
  const std::string run_key = std::to_string(std::filesystem::file_size(a.data)) + ":" + a.data + ":" +
                              std::to_string(mc.parameter_count()) + ":" + std::to_string(mc.vocab_size) + ":" +
                              std::to_string(a.seq_len) + ":" + std::to_string(tc.steps) + ":" + std::to_string(tc.batch_size) +
                              ":" + std::to_string(tc.grad_accum) + ":" + std::to_string(tc.lr) + ":" + std::to_string(tc.seed) +
                              (world > 1 ? ":world" + std::to_string(world) : "");
  std::fprintf(stderr,
               "pretrain: %.2fM parameters (dim %d, %d layers, %d heads, %d kv heads, ffn %d, vocab %d), %s\n"
               "          %lld tokens in %lld rows of %d; %lld steps x %d x %d rows (%.2f epochs); lr %.1e, warm-up %lld\n",
               static_cast<double>(mc.parameter_count()) / 1e6, mc.hidden_size, mc.num_hidden_layers, mc.num_attention_heads,
               mc.num_key_value_heads, mc.intermediate_size, mc.vocab_size, device.str().c_str(),
               static_cast<long long>(data.tokens()), static_cast<long long>(data.rows()), a.seq_len,
               static_cast<long long>(tc.steps), tc.batch_size, tc.grad_accum,
               static_cast<double>(tc.steps * rows_per_step) / static_cast<double>(data.rows()), tc.lr,
               static_cast<long long>(tc.warmup_steps));

  std::filesystem::create_directories(a.out);
  std::ofstream log;
  if (rank == 0) log.open(a.out + "/train_log.jsonl", std::ios::app);
  Progress progress("train", "steps", !g.quiet && rank == 0);
  StopOnInterrupt interrupt;
  const std::int64_t done = model::train_loop(
      net, tc, a.out, text::find_tokenizer_file(a.tokenizer), run_key,
      // Rank r takes micro-batch r of each group of `world`: together the
      // ranks cover what one process with a world-times-larger batch would.
      [&](std::int64_t step, int k) {
        return model::language_model_step(net, data, (step * tc.grad_accum + k) * world + rank, tc.batch_size, tc.seed);
      },
      [&](const model::TrainProgress& p) {
        log << data::json{{"step", p.step}, {"loss", p.loss}, {"lr", p.lr}, {"grad_norm", p.grad_norm},
                          {"tokens_per_second", p.tokens_per_second}}.dump()
            << "\n" << std::flush;
        char extra[160];
        std::snprintf(extra, sizeof extra, "loss %.4f  lr %.2e  |g| %.2f  %.0f ms/step  %s tok/s", p.loss, p.lr, p.grad_norm,
                      p.ms_per_step, human_count(p.tokens_per_second).c_str());
        progress.update(static_cast<std::uint64_t>(p.step), static_cast<double>(p.step) / static_cast<double>(p.steps), extra);
        return !StopOnInterrupt::stop_requested();
      },
      nullptr, parallel.get()).steps;
  if (done < tc.steps) {
    progress.abandon();
    throw Interrupted("interrupted at step " + std::to_string(done) + " of " + std::to_string(tc.steps) +
                      "; checkpoint saved in " + a.out + "; rerun the same command to resume");
  }
  progress.finish(static_cast<std::uint64_t>(done));
  if (rank != 0) return;
  std::printf("trained %s: %lld steps, checkpoint in %s\n", a.out.c_str(), static_cast<long long>(done), a.out.c_str());
}

}  // namespace

void add_pretrain_command(CLI::App& app, const Global& global) {
  auto a = std::make_shared<PretrainArgs>();
  a->model.intermediate_size = 0;   // auto
  a->model.num_key_value_heads = 0; // = heads
  CLI::App* cmd = app.add_subcommand(
      "pretrain",
      "Train a Llama-architecture model from scratch on a JSONL of texts (next-token prediction over\n"
      "packed sequences). Writes config.json + model.safetensors + the tokenizer to --out, every\n"
      "--save-every steps; Ctrl-C saves and stops, and rerunning the same command resumes exactly.\n"
      "Data parallel: one process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (as\n"
      "torchrun --no-python starts them); --batch is per rank.");
  cmd->add_option("--data", a->data, "JSONL of texts (a corpus.jsonl works)")->required();
  cmd->add_option("--field", a->field, "Field holding each text");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer folder or file (steper tokenizer train makes one)")->required();
  cmd->add_option("--out", a->out, "Model folder")->required();
  cmd->add_option("--dim", a->model.hidden_size, "Hidden size")->check(CLI::PositiveNumber);
  cmd->add_option("--layers", a->model.num_hidden_layers, "Decoder layers")->check(CLI::PositiveNumber);
  cmd->add_option("--heads", a->model.num_attention_heads, "Attention heads")->check(CLI::PositiveNumber);
  cmd->add_option("--kv-heads", a->model.num_key_value_heads, "Key/value heads (default: = heads; fewer is GQA)");
  cmd->add_option("--ffn", a->model.intermediate_size, "MLP size (default: 8/3 x dim, rounded up to 32)");
  cmd->add_option("--rope-theta", a->model.rope_theta, "RoPE base");
  cmd->add_flag("--tie", a->model.tie_word_embeddings, "Tie the output layer to the embeddings");
  cmd->add_option("--seq-len", a->seq_len, "Tokens per training row")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--steps", a->train.steps, "Optimizer steps")->check(CLI::PositiveNumber);
  cmd->add_option("--epochs", a->epochs, "Passes over the data (overrides --steps)");
  cmd->add_option("--batch", a->train.batch_size, "Rows per micro-batch")->check(CLI::PositiveNumber);
  cmd->add_option("--accum", a->train.grad_accum, "Micro-batches per step")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", a->train.lr, "Peak learning rate");
  cmd->add_option("--min-lr-ratio", a->train.min_lr_ratio, "Final learning rate as a share of the peak");
  cmd->add_option("--warmup", a->train.warmup_steps, "Warm-up steps");
  cmd->add_option("--weight-decay", a->train.weight_decay, "AdamW weight decay (matrices only)");
  cmd->add_option("--clip", a->train.grad_clip, "Gradient-norm clip (0: off)");
  cmd->add_option("--save-every", a->train.save_every, "Steps between checkpoints (0: only at the end)");
  cmd->add_option("--seed", a->train.seed, "Seed of initialisation and data order");
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N");
  cmd->add_option("--threads", a->threads, "LibTorch intra-op threads (0: LibTorch's default)");
  cmd->add_flag("--overwrite", a->overwrite, "Start over even if --out holds a checkpoint");
  cmd->callback([a, &global] { run_pretrain(*a, global); });
}

}  // namespace steper::cli
