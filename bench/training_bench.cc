// Training at scale, measured on this CPU:
//   training_bench memory [CASE]  (CASE: only the cases whose name has it)
//                             the memory plan (train::plan_memory) against
//                             the measured peak memory of real training steps,
//                             for three model sizes under fp32, bf16,
//                             recomputation and LoRA (target: within 20%),
//                             and two ranks with the optimizer state
//                             replicated or sharded;
//                             and recomputation's activation memory and step
//                             time against the plain run's at 2k tokens
//                             (targets: at least 3x less memory, at most 40%
//                             more time).
//   training_bench precision [STEPS]
//                             bf16 mixed precision against fp32: the same
//                             ~7M model pretrained STEPS steps (default 500)
//                             from the same start on the same data; the mean
//                             loss of the last 50 steps (target: within 2%).
// Each memory case runs in a child process of its own per rank (peak RSS only grows),
// which measures its peak RSS less its RSS before building the model, with
// large allocations mmapped so that freed memory leaves RSS at once.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "steper/data.h"
#include "steper/memory_plan.h"
#include "steper/text.h"
#include "steper/train.h"
#include "test_util.h"

using namespace steper;

namespace {

// VmRSS or VmHWM of this process, bytes.
double proc_status_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + std::strlen(field) + 1) * 1024.0;
  }
  return 0;
}

struct Case {
  std::string name;
  int dim, layers, heads, kv_heads, vocab, tokens;
  torch::Dtype dtype;
  bool recompute;
  int lora_rank;
  int world = 1;       // ranks, each a process of its own on loopback Gloo
  bool shard = false;  // --shard-optimizer
};

model::ModelConfig config_of(const Case& c) {
  model::ModelConfig m;
  m.vocab_size = c.vocab;
  m.hidden_size = c.dim;
  m.intermediate_size = (c.dim * 8 / 3 + 31) / 32 * 32;
  m.num_hidden_layers = c.layers;
  m.num_attention_heads = c.heads;
  m.num_key_value_heads = c.kv_heads;
  m.max_position_embeddings = c.tokens;
  return m;
}

train::PlanOptions plan_options(const Case& c) {
  train::PlanOptions p;
  p.dtype = model::file_dtype_of(c.dtype);
  p.batch = 1;
  p.max_tokens = c.tokens;
  p.recompute = c.recompute;
  p.lora_rank = c.lora_rank;
  p.fused_kernels = c.dtype == torch::kFloat32;  // this CPU
  p.world_size = c.world;
  p.shard_optimizer = c.shard;
  return p;
}

struct Measured {
  double peak_gb = 0, activations_gb = 0, ms_per_step = 0;
};

// In the child: 3 training steps of next-token prediction on random tokens;
// the peak comes in a step after the first (the optimizer's state exists).
Measured measure(const Case& c, const std::string& dir, bool for_memory) {
  // For memory (not for time: the page faults slow a step down ~3x), every allocation of 64 KiB and more gets pages of its own, returned when
  // freed: RSS then follows the live tensors, not what glibc's heap retains
  // of earlier steps (which made a step's peak over its start meaningless).
  if (for_memory) {
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024);
  }
  // The rank's process group, LibTorch's and OpenBLAS's buffers first, so
  // the baseline holds them.
  std::unique_ptr<train::DataParallel> parallel;
  if (c.world > 1) parallel = std::make_unique<train::DataParallel>(train::distributed_env(), 120);
  {
    torch::Tensor a = torch::randn({256, 256}, torch::requires_grad());
    torch::matmul(a, a).sum().backward();
  }
  const double base = proc_status_bytes("VmRSS:");
  model::ModelConfig mc = config_of(c);
  torch::manual_seed(0);
  model::CausalLM net(mc);
  net->to(c.dtype);
  if (c.lora_rank > 0) {
    model::LoraConfig l;
    l.rank = c.lora_rank;
    model::add_lora(net, l, 0);
  }
  std::vector<int> stream(static_cast<std::size_t>(c.tokens + 1) * 4);
  for (std::size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int>((i * 7919) % static_cast<std::size_t>(c.vocab));
  const train::PackedTokens data(stream, c.tokens);
  train::TrainConfig tc;
  tc.steps = 4;
  tc.batch_size = 1;
  tc.save_every = 0;
  tc.dtype = c.dtype;
  tc.recompute = c.recompute;
  tc.shard_optimizer = c.shard;
  Measured m;
  double before_step = 0, step_ms = 0, peak_before_last = 0;
  int timed = 0;
  train::train_loop(
      net, tc, dir, "", "bench",
      [&](std::int64_t step, int k) {
        if (step == tc.steps - 1) {
          // Linux resets the peak (VmHWM) to the current RSS on "5": the last
          // step's own peak, over what it started with, is its activations.
          peak_before_last = proc_status_bytes("VmHWM:");
          std::ofstream("/proc/self/clear_refs") << "5";
          before_step = proc_status_bytes("VmRSS:");
        }
        return train::language_model_step(net, data, step + k, 1, 0);
      },
      [&](const train::TrainProgress& p) {
        if (p.step >= 2) step_ms += p.ms_per_step, ++timed;
        if (p.step < tc.steps) return true;
        m.peak_gb = (peak_before_last - base) / 1e9;  // before the checkpoint's copies
        m.peak_gb = std::max(m.peak_gb, (proc_status_bytes("VmHWM:") - base) / 1e9);
        m.activations_gb = (proc_status_bytes("VmHWM:") - before_step) / 1e9;
        m.ms_per_step = step_ms / timed;
        return false;
      },
      nullptr, parallel.get());
  return m;
}

// Runs one case in a child process per rank (all writing into `dir`);
// parses their lines and keeps the largest of each figure.
Measured run_child(const char* self, int index, bool for_memory, int world, const std::string& dir) {
  const int port = 29700 + index;
  std::vector<std::pair<pid_t, int>> children;
  for (int r = 0; r < world; ++r) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      if (world > 1) {
        for (const auto& [k, v] : {std::pair<const char*, std::string>{"RANK", std::to_string(r)}, {"WORLD_SIZE", std::to_string(world)},
                                   {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)}, {"OMP_NUM_THREADS", "1"}}) {
          setenv(k, v.c_str(), 1);
        }
      }
      execl(self, self, "child", std::to_string(index).c_str(), for_memory ? "memory" : "time", dir.c_str(), nullptr);
      std::_Exit(127);
    }
    close(fds[1]);
    children.emplace_back(pid, fds[0]);
  }
  Measured most;
  for (const auto& [pid, fd] : children) {
    std::string out;
    char buf[256];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    Measured m;
    if (std::sscanf(out.c_str(), "%lf %lf %lf", &m.peak_gb, &m.activations_gb, &m.ms_per_step) != 3) {
      std::fprintf(stderr, "case %d failed (status %d): %s\n", index, status, out.c_str());
      std::exit(1);
    }
    most.peak_gb = std::max(most.peak_gb, m.peak_gb);
    most.activations_gb = std::max(most.activations_gb, m.activations_gb);
    most.ms_per_step = std::max(most.ms_per_step, m.ms_per_step);
  }
  return most;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  struct Size { const char* name; int dim, layers, heads, kv, vocab; };
  for (const Size& s : {Size{"S 14M", 256, 4, 4, 2, 16000}, Size{"M 48M", 512, 6, 8, 4, 24000}, Size{"L 123M", 768, 10, 12, 4, 32000}}) {
    for (int option = 0; option < 4; ++option) {
      Case c{s.name, s.dim, s.layers, s.heads, s.kv, s.vocab, 1024, torch::kFloat32, false, 0};
      if (option == 1) c.recompute = true, c.name += " fp32 recompute";
      else if (option == 2) c.dtype = torch::kBFloat16, c.name += " bf16";
      else if (option == 3) c.lora_rank = 16, c.name += " fp32 LoRA 16";
      else c.name += " fp32";
      out.push_back(c);
    }
  }
  // Recomputation at 2k tokens, plain then recomputed: a deep model with a
  // small vocabulary, so that the layers' activations (what recomputation
  // saves) outweigh the logits (which it does not touch), as at 8B scale.
  for (bool r : {false, true}) out.push_back(Case{r ? "2k recompute" : "2k plain", 512, 16, 8, 4, 4000, 2048, torch::kFloat32, r, 0});
  // Two ranks: the optimizer state replicated, then sharded (ZeRO stage 2),
  // at each size.
  out.push_back(Case{"M 48M fp32 2 ranks", 512, 6, 8, 4, 24000, 1024, torch::kFloat32, false, 0, 2, false});
  out.push_back(Case{"M 48M fp32 2 sharded", 512, 6, 8, 4, 24000, 1024, torch::kFloat32, false, 0, 2, true});
  out.push_back(Case{"M 48M bf16 2 sharded", 512, 6, 8, 4, 24000, 1024, torch::kBFloat16, false, 0, 2, true});
  out.push_back(Case{"S 14M fp32 2 sharded", 256, 4, 4, 2, 16000, 1024, torch::kFloat32, false, 0, 2, true});
  out.push_back(Case{"L 123M fp32 2 sharded", 768, 10, 12, 4, 32000, 1024, torch::kFloat32, false, 0, 2, true});
  return out;
}

int memory_bench(const char* self, const std::string& only) {
  const std::vector<Case> all = cases();
  std::printf("%-22s %10s %10s %7s   (peak RSS over the RSS before the model; GB = 1e9 bytes)\n", "case", "plan GB", "measured", "ratio");
  double worst = 0;
  std::vector<Measured> two_k;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].name.find(only) == std::string::npos) continue;
    testing::TempDir dir;
    Measured m = run_child(self, static_cast<int>(i), true, all[i].world, dir / "run");
    const train::MemoryPlan p = train::plan_memory(config_of(all[i]), plan_options(all[i]));
    const double ratio = m.peak_gb / p.total_gb;
    worst = std::max(worst, std::abs(ratio - 1));
    std::printf("%-22s %10.3f %10.3f %7.3f   plan: weights %.3f grads %.3f optimizer %.3f activations %.3f\n", all[i].name.c_str(),
                p.total_gb, m.peak_gb, ratio, p.weights_gb, p.grads_gb, p.optimizer_gb, p.activations_gb);
    std::fflush(stdout);
    if (all[i].tokens == 2048) {
      testing::TempDir timed;
      m.ms_per_step = run_child(self, static_cast<int>(i), false, 1, timed / "run").ms_per_step;  // timed with glibc's usual heap
      two_k.push_back(m);
    }
  }
  std::printf("worst |measured / plan - 1| = %.3f (target <= 0.20)\n", worst);
  if (two_k.size() < 2) return 0;
  std::printf("recompute at 2048 tokens (the last step's peak over its start): activation memory %.3f GB -> %.3f GB (%.2fx less; target >= 3x), %.0f -> %.0f ms/step "
              "(%.2fx; target <= 1.40x)\n",
              two_k[0].activations_gb, two_k[1].activations_gb, two_k[0].activations_gb / two_k[1].activations_gb, two_k[0].ms_per_step,
              two_k[1].ms_per_step, two_k[1].ms_per_step / two_k[0].ms_per_step);
  return 0;
}

// The mean loss of the last `tail` steps of a pretraining run.
double pretrain_loss(const std::vector<int>& stream, const std::string& tokenizer, const std::string& out, torch::Dtype dtype,
                     int steps, int tail, double& seconds) {
  train::PretrainOptions po;
  model::ModelConfig& c = po.model;
  c.hidden_size = 256;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  po.seq_len = 128;
  po.train.steps = steps;
  po.train.batch_size = 8;
  po.train.lr = 2e-3;
  po.train.warmup_steps = 30;
  po.train.save_every = 0;
  po.train.seed = 1;
  po.train.dtype = dtype;
  po.run_key = "precision";
  std::vector<double> losses;
  const train::PretrainReport r = train::pretrain(stream, tokenizer, out, po, nullptr, [&](const train::TrainProgress& p) {
    losses.push_back(p.loss);
    if (p.step % 100 == 0) std::fprintf(stderr, "  %s step %lld loss %.4f\n", model::torch_dtype_name(dtype).c_str(), static_cast<long long>(p.step), p.loss);
    return true;
  });
  seconds = r.result.seconds;
  double sum = 0;
  for (std::size_t i = losses.size() - static_cast<std::size_t>(tail); i < losses.size(); ++i) sum += losses[i];
  std::fprintf(stderr, "  %.2fM parameters\n", static_cast<double>(r.config.parameter_count()) / 1e6);
  return sum / tail;
}

int precision_bench(int steps) {
  testing::TempDir dir;
  data::WorldOptions wo;
  wo.seed = 5;
  const data::World world = data::generate_world(wo);
  std::vector<std::string> texts;
  for (const auto& p : world.corpus) texts.push_back(p.text);
  std::size_t next = 0;
  text::SentencePieceTrainOptions so;
  so.vocab_size = 8000;
  text::train_sentencepiece([&](std::string& s) { return next < texts.size() ? (s = texts[next++], true) : false; }, dir / "tok", so);
  auto tok = text::load_tokenizer(dir / "tok");
  const std::vector<int> stream = train::pack_texts(*tok, [&](const auto& f) {
    for (const auto& t : texts) f(t);
  });
  const int tail = std::min(50, steps);
  double s32 = 0, s16 = 0;
  const double fp32 = pretrain_loss(stream, text::find_tokenizer_file(dir / "tok"), dir / "fp32", torch::kFloat32, steps, tail, s32);
  const double bf16 = pretrain_loss(stream, text::find_tokenizer_file(dir / "tok"), dir / "bf16", torch::kBFloat16, steps, tail, s16);
  std::printf("%d steps, %zu tokens; mean loss of the last %d steps: fp32 %.4f (%.0f s), bf16 %.4f (%.0f s): bf16/fp32 = %.4f "
              "(target within 2%%)\n",
              steps, stream.size(), tail, fp32, s32, bf16, s16, bf16 / fp32);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "child" && argc == 5) {
    const std::vector<Case> all = cases();
    const Measured m = measure(all.at(static_cast<std::size_t>(std::atoi(argv[2]))), argv[4], std::string(argv[3]) == "memory");
    std::printf("%.6f %.6f %.3f\n", m.peak_gb, m.activations_gb, m.ms_per_step);
    return 0;
  }
  if (mode == "memory") return memory_bench("/proc/self/exe", argc > 2 ? argv[2] : "");
  if (mode == "precision") return precision_bench(argc > 2 ? std::atoi(argv[2]) : 500);
  std::fprintf(stderr, "usage: training_bench memory [CASE] | precision [STEPS]\n");
  return 2;
}
