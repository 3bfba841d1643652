// steper/distill.h — step-wise distillation (StepER): cutting teacher traces
// into stage samples, and training a student on them with difficulty-aware
// stage weights.
//
// Samples (JSONL): {"id", "stage": "init"|"expand"|"aggregate", "step", "prompt", "target", "chat"?}.
// Prompts are rendered with the reasoning template and prompt format
// (plain, or the student's chat template) the strategies use, so the student
// learns exactly what it will be asked; "chat": true marks prompts a chat
// template rendered, which carry their own BOS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "steper/data.h"
#include "steper/reason.h"
#include "steper/train.h"

namespace steper::distill {

// The stages of a reasoning chain: its first step, the steps between, and
// the last step with the answer. The order is that of the weights.
enum class Stage { init, expand, aggregate };
constexpr std::size_t kStageCount = 3;
// "init", "expand", "aggregate": in the enum's order.
const std::vector<std::string>& stage_names();
// A name of stage_names(); any other is a FieldError("stage").
Stage parse_stage(const std::string& name);
const std::string& stage_name(Stage s);

struct Sample {
  std::string id;
  Stage stage = Stage::aggregate;
  int step = 0;       // the last reasoning step the target covers (1-based)
  std::string prompt;
  std::string target;
  bool chat = false;  // the prompt came from a chat template: no BOS is added in training
};

Sample parse_sample(const data::json& j);
data::json to_json(const Sample& s);

enum class Mode { steper, vanilla, answer };
// "steper" | "vanilla" | "answer".
Mode parse_mode(const std::string& name);

struct StepwiseOptions {
  Mode mode = Mode::steper;
  // Which traces teach: "em" (prediction equals a gold answer), "acc" (a
  // gold answer is contained in it), "all". Default: em
  std::string keep = "em";
  // Earlier steps in the prompt, loss on the last step only (the paper's
  // alternative). Default: false (the target is the chain up to the step)
  bool last_step_only = false;
  // The run's settings. build_stepwise reads them from the traces' run
  // record (steper run writes one into each trace) and refuses those the
  // caller stated (stated_*) when they differ from it; for traces without a
  // record (gold traces, files from older versions) they are used as given.
  int max_passages = 15;  // as at inference. Default: 15
  std::string marker = data::kAnswerMarker;
  reason::Templates templates = reason::default_templates();
  bool stated_max_passages = false, stated_marker = false, stated_templates = false;
  // The student's prompt format: plain, or its chat template. Default: plain
  reason::PromptFormat format;
};

// The samples of one trace; `passages` maps corpus ids to passages. Empty
// when the trace is filtered out. Throws InputError naming a retrieved id
// the corpus lacks.
std::vector<Sample> cut_trace(const data::Trace& trace, const std::map<std::string, retrieve::Hit>& passages,
                              const std::vector<std::string>& gold_answers, const StepwiseOptions& options);

struct StepwiseStats {
  std::uint64_t traces = 0, kept = 0, wrong = 0, errors = 0, no_question = 0;
  std::map<std::string, std::uint64_t> samples;  // per stage
  std::map<std::string, double> mean_chars;      // prompt + target, per stage
};

// Traces + questions (gold answers) -> samples JSONL, written as .partial
// and renamed at the end. Passage texts (only those the traces name are kept
// in memory) come from `corpus_path`, or, when it is "", from the index the
// traces' run record names. Every trace must come from one run. Throws
// InputError naming the file and line of a trace from another run, a stated
// setting that differs from the record, or templates changed since the run.
StepwiseStats build_stepwise(const std::string& traces_path, const std::string& questions_path, const std::string& corpus_path,
                             const std::string& out_path, const StepwiseOptions& options);

// ---------------------------------------------------------------- training

// difficulty: the paper's. floor: the variant that shifts focus as the
// paper describes (see StageWeights). uniform, none: the ablations.
enum class Weighting { difficulty, uniform, none, floor };
// The names, as the CLI and the resume keys write them.
const std::vector<std::string>& weighting_names();
// A name of weighting_names(); any other is an InputError listing them.
Weighting parse_weighting(const std::string& name);
const std::string& weighting_name(Weighting w);

// Combines per-stage mean losses (and, for none, the loss over all target
// tokens). Stages absent from a batch contribute nothing.
//   difficulty: sum_j [L_j / (2 sigma_j^2) + log sigma_j] with s_j =
//     log sigma_j^2 trainable (= 0.5 exp(-s_j) L_j + 0.5 s_j). Its optimum is
//     sigma_j^2 = L_j, so the weight 1/(2 sigma_j^2) tracks 1/(2 L_j): the
//     stage learnt best gets the most weight, and as its loss nears 0 that
//     weight grows without bound. The focus never moves to the harder stages.
//   floor: sigma_j^2 learnt by the same objective (from the losses, without
//     passing its weights into the model's gradient); the model is trained
//     on sum_j w_j L_j with w_j proportional to 1 / max(sigma_j^2, floor) and
//     summing to 1 over the stages present. Early, when losses are high, the
//     easy stages lead; once a stage's loss falls under the floor its weight
//     stops growing, and the harder stages catch up until, with every loss
//     under the floor, the weights are uniform.
//   uniform: the mean of the stages present.
//   none: one loss over all target tokens, whatever their stage.
struct StageWeights {
  // The log-variances live on `device`, the model's.
  explicit StageWeights(Weighting w, double floor = 0.1, torch::Device device = torch::kCPU);
  // losses[j] undefined when stage j is absent; `all` is the mean over every
  // target token of the batch (what none returns).
  torch::Tensor combine(const std::vector<torch::Tensor>& losses, const torch::Tensor& all) const;
  // The weight each stage's loss gets in the model's objective:
  // 1/(2 sigma_j^2) for difficulty, 0.5 for uniform, w_j (of all three
  // stages) for floor, and for none, which has no per-stage weight, 0.5.
  std::vector<double> weights() const;
  Weighting weighting;
  double floor;
  torch::Tensor log_var;  // [3] float32, requires grad for difficulty and floor
};

// Fine-tuning's defaults, unlike pretraining's (train::TrainConfig's): lr
// 1e-4, 20 warm-up steps, no weight decay, 8 samples per micro-batch.
train::TrainConfig fine_tuning_defaults();

struct TrainOptions {
  train::TrainConfig train = fine_tuning_defaults();
  Weighting weighting = Weighting::difficulty;
  double weight_lr = 0.02;  // learning rate of the log variances. Default: 0.02
  double sigma_floor = 0.1; // Weighting::floor's floor on sigma^2 (a per-token loss). Default: 0.1
  int max_tokens = 0;       // longer samples are dropped; 0: the model's context. Default: 0
  double holdout = 0.05;    // share of samples held out for evaluation. Default: 0.05
  std::int64_t eval_every = 100;  // steps between held-out evaluations (0: never). Default: 100
  double epochs = 0;        // > 0: overrides train.steps
  // Each batch runs as groups of rows of similar length, each padded only to
  // its own longest row: the same loss and gradients as the batch padded
  // whole, with fewer padded tokens. Default: on
  bool group_by_length = true;
  model::LoraConfig lora;   // rank > 0: train adapters only, merged into the weights at the end
  // Data parallel: each rank takes its `batch` of every global batch of
  // batch x world size samples; rank 0 evaluates and writes. Default: none
  train::DataParallel* parallel = nullptr;
  std::string device = "cpu";  // cpu, cuda (cuda:LOCAL_RANK) or cuda:N. Default: cpu
};

struct TrainReport {
  std::int64_t steps = 0, total_steps = 0;  // done (fewer when stopped), planned
  std::uint64_t samples = 0, dropped = 0, held_out = 0;
  double seconds = 0;  // training time, the processes before a resume included
};

struct DistillProgress {
  train::TrainProgress train;
  std::vector<double> stage_loss;    // last batch, per stage (NaN when absent)
  std::vector<double> stage_weight;  // current weights
  double eval_loss = -1;             // when evaluated at this step
};

// Fine-tunes the model in `init_dir` on the samples, writing checkpoints
// (Hugging Face layout) and OUT_DIR/metrics.jsonl; resumes exactly.
TrainReport train(const std::string& samples_path, const std::string& init_dir, const std::string& out_dir,
                  const TrainOptions& options, const std::function<bool(const DistillProgress&)>& on_progress);

}  // namespace steper::distill
