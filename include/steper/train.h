// steper/train.h — training a model: the loop shared by pretraining and
// distillation (AdamW, warm-up then cosine, gradient accumulation and
// clipping, checkpoints that resume exactly), data parallelism over c10d,
// and next-token pretraining over packed texts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "steper/error.h"
#include "steper/memory_plan.h"
#include "steper/model.h"
#include "steper/text.h"

namespace steper::train {

using model::CausalLM;

// ---------------------------------------------------------------- configuration

// How a model is trained. The loop (train_loop) is shared by pretraining
// and distillation; what a step computes is the caller's.
struct TrainConfig {
  std::int64_t steps = 1000;       // optimizer steps. Default: 1000
  int batch_size = 16;             // sequences per micro-batch. Default: 16
  int grad_accum = 1;              // micro-batches per step. Default: 1
  double lr = 1e-3;                // peak learning rate. Default: 1e-3
  double min_lr_ratio = 0.1;       // the cosine ends at lr * this. Default: 0.1
  std::int64_t warmup_steps = 50;  // linear warm-up. Default: 50
  double weight_decay = 0.1;       // AdamW, matrices only. Default: 0.1
  double beta1 = 0.9, beta2 = 0.95;
  double grad_clip = 1.0;          // global norm; 0 disables. Default: 1
  std::int64_t save_every = 200;   // steps between checkpoints; 0: only at the end. Default: 200
  std::uint64_t seed = 0;          // data order and initialisation. Default: 0
  // The model's weights, activations and gradients. bfloat16 or float16 is
  // mixed precision: the optimizer keeps float32 master weights and float32
  // AdamW moments (an update at lr 5e-6 vanishes in bfloat16's 8 bits), and
  // float16 adds a dynamic loss scale. Losses, softmax and norms are float32
  // whatever this is. The caller builds the model in this dtype. Default: float32
  torch::Dtype dtype = torch::kFloat32;
  // Activation recomputation (CausalLMImpl::recompute). Default: off
  bool recompute = false;
  // ZeRO stage 2 under data parallelism: each rank keeps 1/N of the float32
  // master weights, of the AdamW moments and of the averaged gradients
  // (reduce-scattered; the updated weights all-gathered). The same steps as
  // without it; checkpoints hold one optimizer file per rank, so a resume
  // needs the same world size. Default: off
  bool shard_optimizer = false;
};

// Learning rate at `step` (0-based): linear warm-up, then cosine to min.
double learning_rate(const TrainConfig& c, std::int64_t step);

struct TrainProgress {
  std::int64_t step = 0, steps = 0;  // steps done, of
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_second = 0, ms_per_step = 0;  // of this process
  double seconds = 0;  // training time so far, the processes before a resume included
};

// One micro-batch's work: the loss to back-propagate (already divided by
// nothing: the loop scales by 1/grad_accum) and the tokens it covered.
struct MicroStep {
  torch::Tensor loss;
  std::int64_t tokens = 0;
};

// ---------------------------------------------------------------- data parallel

// How a worker is placed, read the way `torchrun --no-python` passes it:
// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; and, under torchrun's static
// rendezvous, TORCHELASTIC_USE_AGENT_STORE=True with
// TORCHELASTIC_RESTART_COUNT: the launcher then hosts the store itself and
// every worker joins it as a client under /worker/attempt_<count>.
struct DistributedEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0;  // LOCAL_RANK: the rank on this machine, which picks its GPU
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // the launcher hosts the store (else rank 0 does)
  int restart_count = 0;
};
// World size 1 when WORLD_SIZE is unset; throws InputError naming a
// malformed or inconsistent variable.
DistributedEnv distributed_env();

// The device a training process runs on: `name` as parse_device reads it,
// except that a bare "cuda" is cuda:LOCAL_RANK, one GPU per rank.
torch::Device rank_device(const std::string& name);

// Data-parallel training over a c10d process group: NCCL for a CUDA
// `device` when the LibTorch built against has it (nccl_available()), else
// Gloo, which takes CPU and CUDA tensors. The rendezvous store is on
// MASTER_ADDR:MASTER_PORT, hosted by rank 0 or, under torchrun's static
// rendezvous, by torchrun.
class DataParallel {
 public:
  // Waits up to `timeout_s` for every rank to join; throws RuntimeError
  // naming the address when they do not. `device`: the rank's
  // (rank_device), which picks the backend.
  explicit DataParallel(const DistributedEnv& env, int timeout_s = 300, const torch::Device& device = torch::kCPU);
  // Whether this build has NCCL (found when configuring: a CUDA LibTorch
  // built with it; Debian's has not).
  static bool nccl_available();
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;
  int rank() const { return rank_; }
  int world_size() const { return world_; }
  // Replaces each gradient with its mean over the ranks (one flat all-reduce;
  // tensors without a gradient count as zero).
  void average_gradients(const std::vector<torch::Tensor>& params);
  // Every rank gets rank 0's values.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Element-wise sums over the ranks (one all-reduce however many values).
  std::vector<double> sum(std::vector<double> values);
  double sum(double value) { return sum(std::vector<double>{value})[0]; }
  // Waits until every rank has called it.
  void barrier() { sum(0.0); }
  // Sharded optimizer state (ZeRO): `inputs` holds one float32 tensor per
  // rank, all of `output`'s size; rank r's output gets the sum over the
  // ranks of their inputs[r]. The inputs are scratch afterwards.
  void reduce_scatter(std::vector<torch::Tensor>& inputs, const torch::Tensor& output);
  // outputs[r] (one per rank, each of `input`'s size) gets rank r's input.
  void all_gather(const torch::Tensor& input, std::vector<torch::Tensor>& outputs);

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0, world_ = 1;
};

// ---------------------------------------------------------------- training

// Parameters trained beside the model (difficulty weights): an AdamW group
// of their own at `lr`, no decay, no schedule, not clipped, saved in
// OUT_DIR/extra_params.pt and restored on resume.
struct ExtraParams {
  std::vector<torch::Tensor> params;
  double lr = 1e-2;
};

struct TrainResult {
  std::int64_t steps = 0;  // steps done, by this process and the ones before it
  double seconds = 0;      // training time, the processes before a resume included
};

// Runs `config.steps` optimizer steps over `model`, writing checkpoints into
// `out_dir`: the model as a complete Hugging Face folder, and the training
// state apart in OUT_DIR/trainer_state/ (trainer_state.json,
// optimizer.torchscript; docs/checkpoints.md), so that OUT_DIR without it
// is the model to ship. If out_dir holds the state of an interrupted run with
// the same `run_key`, continues from its last checkpoint, reproducing the
// uninterrupted run exactly; a different run_key there is refused.
// `micro(step, k)` computes micro-batch k of step `step` and must depend on
// nothing else. `on_progress` sees every step; returning false stops after
// saving a checkpoint. `extra`: see ExtraParams.
//
// A model with LoRA adapters (add_lora) trains only them; mid-run
// checkpoints add OUT_DIR/adapter_model.safetensors, and the last one folds
// the adapters into the weights (merge_lora), so OUT_DIR holds a plain model.
//
// With `parallel`, each rank computes its share of the global batch (its
// micro() must pick it), gradients are averaged before the step, the loss
// shown is the mean over ranks, and only rank 0 writes checkpoints.
TrainResult train_loop(CausalLM& model, const TrainConfig& config, const std::string& out_dir,
                       const std::string& tokenizer_file, const std::string& run_key,
                       const std::function<MicroStep(std::int64_t step, int micro)>& micro,
                       const std::function<bool(const TrainProgress&)>& on_progress, ExtraParams* extra = nullptr,
                       DataParallel* parallel = nullptr);

// Mixed precision (config.dtype not float32) saves the model in its dtype
// and the float32 master weights in OUT_DIR/trainer_state/, so a resume
// continues from the exact values; float16's loss scale goes into
// trainer_state.json.
//
// Checkpoints are atomic as a whole: a step's files are written into a
// staging folder OUT/.checkpoint-STEP, trainer_state/trainer_state.json
// (naming that folder) replaces the old one in one rename, and only then are
// the staged files moved in. A checkpoint of the earlier layout (state
// files beside the model) resumes, and its next save moves to this one. A resume first finishes the moves of a committed
// checkpoint and discards an uncommitted one, so a kill at any instant
// leaves the old checkpoint or the new one, never a mix.
//
// For tests: called with a running count before each file operation of a
// save (staging, commit, moves); throwing from it leaves the folder as a
// crash at that point would. nullptr (the default) turns it off.
void set_checkpoint_fault_hook(std::function<void(int operation)> hook);

// The step of the checkpoint in OUT_DIR (0 when there is none): for the
// "resuming from step N" a command prints before it starts.
std::int64_t saved_step(const std::string& out_dir);

// ---------------------------------------------------------------- pretraining

// Each text as BOS + tokens + EOS (each when the tokenizer has it), concatenated.
// `texts` calls its argument once per text.
std::vector<int> pack_texts(const text::Tokenizer& tokenizer,
                            const std::function<void(const std::function<void(const std::string&)>&)>& texts);

// Plain next-token language modelling over a corpus of texts, packed:
// each text is BOS + tokens + EOS, all concatenated and cut into rows of
// seq_len + 1 tokens; each epoch visits the rows in a fresh order from the seed.
class PackedTokens {
 public:
  PackedTokens(std::vector<int> stream, int seq_len);
  std::int64_t rows() const { return rows_; }
  std::int64_t tokens() const { return static_cast<std::int64_t>(stream_.size()); }
  // Micro-batch `index` (counting through epochs) of `batch` rows: [batch, seq_len + 1].
  torch::Tensor batch(std::int64_t index, int batch, std::uint64_t seed) const;

 private:
  const std::vector<std::int64_t>& order(std::int64_t epoch, std::uint64_t seed) const;
  std::vector<int> stream_;
  int seq_len_;
  std::int64_t rows_;
  mutable std::int64_t cached_epoch_ = -1;  // the last epoch's row order
  mutable std::uint64_t cached_seed_ = 0;
  mutable std::vector<std::int64_t> order_;
};

// Next-token cross-entropy on micro-batch `index` of `data`.
MicroStep language_model_step(CausalLM& model, const PackedTokens& data, std::int64_t index, int batch, std::uint64_t seed);

// A model trained from scratch on packed texts: `steper pretrain` and the
// demo's pretraining stages.
struct PretrainOptions {
  // The architecture. vocab_size, bos and eos come from the tokenizer;
  // num_key_value_heads 0 means as many as the heads; intermediate_size 0
  // means Llama's ~8/3 of the hidden size, rounded up to 32;
  // max_position_embeddings is raised to seq_len when below it.
  model::ModelConfig model;
  TrainConfig train;
  int seq_len = 256;          // tokens per row. Default: 256
  double epochs = 0;          // > 0: overrides train.steps (epochs over the rows, all ranks together)
  std::string device = "cpu"; // cpu, cuda (cuda:LOCAL_RANK) or cuda:N. Default: cpu
  // What else makes two runs the same run (the data's identity): resume
  // goes only into a folder of the same run. The architecture, schedule and
  // world size are added.
  std::string run_key;
  DataParallel* parallel = nullptr;  // Default: none (one process)
};

// The architecture `options` would build for this tokenizer (the defaults above filled).
model::ModelConfig pretrain_config(const PretrainOptions& options, const text::Tokenizer& tokenizer);

struct PretrainReport {
  model::ModelConfig config;       // as built
  std::int64_t tokens = 0, rows = 0, steps = 0;  // steps planned
  TrainResult result;              // steps done (fewer when stopped) and time
};

// Trains into `out_dir` (a Hugging Face folder with `tokenizer_file`
// copied in; rank 0 appends each step to OUT_DIR/train_log.jsonl) and
// resumes an interrupted run there. `on_start` sees the plan before the
// first step; `on_progress` as train_loop's.
PretrainReport pretrain(const std::vector<int>& packed, const std::string& tokenizer_file, const std::string& out_dir,
                        const PretrainOptions& options, const std::function<void(const PretrainReport&)>& on_start,
                        const std::function<bool(const TrainProgress&)>& on_progress);

}  // namespace steper::train
