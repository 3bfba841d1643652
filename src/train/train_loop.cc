// The training loop shared by pretraining and distillation: AdamW (weight
// decay on matrices only), linear warm-up then cosine decay, gradient
// accumulation and clipping, checkpoints that resume exactly.
//
// Exact resume: the data of step s comes from micro(s, k) alone, the model
// and optimizer state are saved together at a step boundary, and the loop
// restarts at the saved step; so losses after a resume equal those of a run
// that was never stopped.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "optimizer.h"
#include "steper/train.h"

namespace steper::train {

using namespace model;
namespace {

using json = nlohmann::json;
// Training state lives in its own folder, so that OUT_DIR is the model to
// ship: docs/checkpoints.md describes these files.
constexpr const char* kStateDir = "trainer_state";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kExtraFile = "extra_params.torchscript";
constexpr const char* kAdapterFile = "adapter_model.safetensors";
// Checkpoints of steper before the state had its folder: read on resume,
// removed by the next save.
constexpr const char* kLegacyOptimizer = "optimizer.pt";
constexpr const char* kLegacyExtra = "extra_params.pt";

// Where a resume finds its state: the folder (the optimizer's files are in
// it) and the extra parameters' file.
struct StateFiles {
  std::string dir, extra;
  bool legacy = false;
};

StateFiles state_files(const std::string& out_dir) {
  const std::string dir = out_dir + "/" + kStateDir;
  if (!std::filesystem::exists(dir + "/" + kStateFile) && std::filesystem::exists(out_dir + "/" + kStateFile)) {
    return {out_dir, out_dir + "/" + kLegacyExtra, true};
  }
  return {dir, dir + "/" + kExtraFile, false};
}

// LoRA runs: mid-run checkpoints hold the (frozen) base weights plus the
// adapters, so that a resume continues them; the last one folds the
// adapters into the weights, so the folder is a plain model again.
void save_adapters(CausalLM& model, const std::string& dir) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorData> tensors;
  for (const auto& [name, t] : lora_tensors(model)) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    tensors.push_back({name, DType::f32, std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()), keep.back().data_ptr()});
  }
  write_safetensors(dir + "/" + kAdapterFile, tensors, {{"format", "pt"}});
}

void load_adapters(CausalLM& model, const std::string& path) {
  SafetensorsFile file(path);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : lora_tensors(model)) {
    const TensorView* v = file.find(name);
    if (!v || v->shape != std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end())) {
      throw InputError(path + ": adapter tensor '" + name + "' is missing or has another shape (other LoRA settings?)");
    }
    std::vector<float> values = v->to_floats();
    t.copy_(torch::from_blob(values.data(), t.sizes(), torch::kFloat32).to(t.device(), t.scalar_type()));
  }
}

// float16's dynamic loss scale (the rule of torch.cuda.amp.GradScaler):
// start at 2^16, halve and skip the step on a non-finite gradient, double
// after 2000 finite steps in a row. Other dtypes keep 1.
struct LossScale {
  double scale = 1;
  std::int64_t good = 0;
  bool dynamic = false;
  explicit LossScale(torch::Dtype dtype) : scale(dtype == torch::kFloat16 ? 65536.0 : 1.0), dynamic(dtype == torch::kFloat16) {}
  // After the gradients are known: whether to take the step.
  bool update(double grad_norm) {
    if (!dynamic) return true;
    if (!std::isfinite(grad_norm)) {
      scale = std::max(1.0, scale / 2);
      good = 0;
      return false;
    }
    if (++good == 2000) scale *= 2, good = 0;
    return true;
  }
};

std::function<void(int)>& fault_hook() {
  static std::function<void(int)> hook;
  return hook;
}

namespace fs = std::filesystem;

// The save's file operations, each announced to the fault hook first.
class SaveSteps {
 public:
  void operator()() {
    if (fault_hook()) fault_hook()(count_++);
  }

 private:
  int count_ = 0;
};

// Moves every file of a committed checkpoint's staging folder into `dir`,
// the files of its trainer_state/ into dir/trainer_state/, then removes the
// folder (what a crash left half-done is finished here).
void move_staged(const std::string& dir, const std::string& staging, SaveSteps* step) {
  if (!fs::exists(staging)) return;
  for (const auto& e : fs::directory_iterator(staging)) {
    if (e.is_directory()) {
      fs::create_directories(fs::path(dir) / e.path().filename());
      for (const auto& f : fs::directory_iterator(e.path())) {
        if (step) (*step)();
        fs::rename(f.path(), fs::path(dir) / e.path().filename() / f.path().filename());
      }
      continue;
    }
    if (step) (*step)();
    fs::rename(e.path(), fs::path(dir) / e.path().filename());
  }
  if (step) (*step)();
  fs::remove_all(staging);
}

// Renaming the state file into place is the commit point.
void write_state(const std::string& dir, const json& state) {
  fs::create_directories(fs::path(dir) / kStateDir);
  io::write_json_atomic(dir + "/" + kStateDir + "/" + kStateFile, state);
}

// Sharded optimizer state makes the save collective: the writer prepares
// the staging folder, every rank writes its shard there, and the writer
// commits once all have.
void save_checkpoint(CausalLM& model, StepOptimizer& opt, const LossScale& loss_scale, const std::string& dir,
                     const std::string& tokenizer_file, const std::string& run_key, std::int64_t step, double seconds, bool last,
                     const ExtraParams* extra, DataParallel* parallel) {
  SaveSteps op;
  const bool writer = !parallel || parallel->rank() == 0;
  const std::string name = ".checkpoint-" + std::to_string(step), staging = dir + "/" + name;
  if (writer) {
    op();
    fs::remove_all(staging);
    fs::create_directories(staging + "/" + kStateDir);
  }
  if (opt.sharded()) {  // which only runs with a group (train_loop refuses it without)
    parallel->barrier();
    opt.save(staging + "/" + kStateDir, op);
    parallel->barrier();
    if (!writer) return;
  }
  const bool lora = has_lora(model);
  if (lora && last) merge_lora(model);
  op();
  save_model(model, staging, tokenizer_file, model->model->embed_tokens->weight.scalar_type());
  if (lora && !last) op(), save_adapters(model, staging);
  if (!opt.sharded()) opt.save(staging + "/" + kStateDir, op);
  if (extra && !extra->params.empty()) op(), torch::save(extra->params, staging + "/" + kStateDir + "/" + kExtraFile);
  op();
  json state{{"step", step}, {"run_key", run_key}, {"seconds", seconds}, {"staged", name}, {"optimizer", opt.layout()}};
  if (loss_scale.dynamic) state["loss_scale"] = {{"scale", loss_scale.scale}, {"good_steps", loss_scale.good}};
  state["drop"] = json::array();
  if (lora && last) state["drop"].push_back(kAdapterFile);  // the merged model needs no adapters
  // A checkpoint of the layout before trainer_state/: its files go.
  for (const char* f : {kStateFile, kLegacyOptimizer, kLegacyExtra}) {
    if (fs::exists(dir + "/" + f)) state["drop"].push_back(f);
  }
  write_state(dir, state);
  move_staged(dir, staging, &op);
  for (const auto& f : state["drop"]) op(), fs::remove(dir + "/" + f.get<std::string>());
}

// Before a resume: finish the committed checkpoint, discard any other.
// With no state (a first save cut short) only the discarding is done.
void settle_checkpoints(const std::string& dir, const json& state) {
  if (!fs::exists(dir)) return;
  const std::string staged = state.value("staged", "");
  if (!staged.empty()) move_staged(dir, dir + "/" + staged, nullptr);
  for (const auto& f : state.value("drop", json::array())) fs::remove(dir + "/" + f.get<std::string>());
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(".checkpoint-", 0) == 0) fs::remove_all(e.path());  // staged, never committed
  }
}

std::string describe_layout(const std::string& layout) {
  if (layout.rfind("sharded/", 0) == 0) return "sharded over " + layout.substr(8) + " ranks";
  return "whole on every rank (no --shard-optimizer)";
}

}  // namespace

void set_checkpoint_fault_hook(std::function<void(int)> hook) { fault_hook() = std::move(hook); }

std::int64_t saved_step(const std::string& out_dir) {
  const std::string path = state_files(out_dir).dir + "/" + kStateFile;
  if (!std::filesystem::exists(path)) return 0;
  const json state = io::read_json(path);
  return state.contains("step") && state["step"].is_number_integer() ? state["step"].get<std::int64_t>() : 0;
}

double learning_rate(const TrainConfig& c, std::int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  const double span = static_cast<double>(std::max<std::int64_t>(1, c.steps - c.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  const double min_lr = c.lr * c.min_lr_ratio;
  return min_lr + 0.5 * (c.lr - min_lr) * (1 + std::cos(M_PI * progress));
}

TrainResult train_loop(CausalLM& model, const TrainConfig& c, const std::string& out_dir, const std::string& tokenizer_file,
                       const std::string& run_key, const std::function<MicroStep(std::int64_t, int)>& micro,
                       const std::function<bool(const TrainProgress&)>& on_progress, ExtraParams* extra,
                       DataParallel* parallel) {
  if (c.steps < 1 || c.batch_size < 1 || c.grad_accum < 1) throw InputError("steps, batch size and accumulation must be >= 1");
  const torch::Device device = model->model->embed_tokens->weight.device();
  if (model->model->embed_tokens->weight.scalar_type() != c.dtype) {
    throw InputError("the model is " + torch_dtype_name(model->model->embed_tokens->weight.scalar_type()) +
                     " but training was set up for " + torch_dtype_name(c.dtype));
  }
  if (c.dtype == torch::kFloat16 && device.is_cpu()) {
    throw InputError("float16 training needs a GPU: LibTorch has no float16 matrix products on the CPU; use bf16");
  }
  model->recompute = c.recompute;
  // Frozen weights (under LoRA) stay out of the optimizer; the adapters
  // join the undecayed group.
  std::vector<torch::Tensor> decay, no_decay, trainable;
  for (auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) (p.value().dim() >= 2 ? decay : no_decay).push_back(p.value());
  }
  for (auto& [name, t] : lora_tensors(model)) no_decay.push_back(t);
  trainable.insert(trainable.end(), decay.begin(), decay.end());
  trainable.insert(trainable.end(), no_decay.begin(), no_decay.end());
  const bool has_extra = extra && !extra->params.empty();
  for (const auto& t : has_extra ? extra->params : std::vector<torch::Tensor>()) {
    if (t.device() != device) throw InputError("a parameter trained beside the model is on " + t.device().str() + ", the model on " + device.str());
  }

  // A resume first puts the saved weights into the model itself (no second
  // copy of it), so the masters below start from them.
  std::int64_t start = 0;
  double earlier_seconds = 0;  // training time of the processes before this one
  LossScale loss_scale(c.dtype);
  const StateFiles files = state_files(out_dir);
  const std::string state_path = files.dir + "/" + kStateFile;
  if (!std::filesystem::exists(state_path)) settle_checkpoints(out_dir, json::object());
  const bool resume = std::filesystem::exists(state_path);
  json state;
  if (resume) {
    state = io::read_json(state_path);
    if (!state.contains("step")) throw InputError(state_path + ": unreadable trainer state (no \"step\")");
    if (state.value("run_key", "") != run_key) {
      throw InputError(out_dir + " holds a checkpoint of a different run (other data or settings)" +
                       std::string("\n  hint: choose another --out, or --overwrite to start over"));
    }
    settle_checkpoints(out_dir, state);
    start = state["step"].get<std::int64_t>();
    earlier_seconds = state.value("seconds", 0.0);
    if (state.contains("loss_scale")) {
      loss_scale.scale = state["loss_scale"].value("scale", loss_scale.scale);
      loss_scale.good = state["loss_scale"].value("good_steps", std::int64_t{0});
    }
    load_weights(model, out_dir, device);
    if (has_lora(model) && std::filesystem::exists(out_dir + "/" + kAdapterFile)) load_adapters(model, out_dir + "/" + kAdapterFile);
    if (has_extra) {
      std::vector<torch::Tensor> saved_extra;
      torch::load(saved_extra, files.extra);
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < extra->params.size() && i < saved_extra.size(); ++i) extra->params[i].copy_(saved_extra[i]);
    }
  }
  std::vector<torch::Tensor> stepped = trainable;  // the model's, then the extra parameters
  if (has_extra) stepped.insert(stepped.end(), extra->params.begin(), extra->params.end());
  SteppedTensors st{stepped, decay.size(), trainable.size(), has_extra ? extra->lr : 0.0};
  if (c.shard_optimizer && !parallel) throw InputError("a sharded optimizer needs data parallelism (WORLD_SIZE above 1)");
  std::unique_ptr<StepOptimizer> opt = c.shard_optimizer ? sharded_adamw(st, c, *parallel) : replicated_adamw(st, c, parallel);
  if (resume) {
    const std::string saved_layout = state.value("optimizer", "replicated");
    if (saved_layout != opt->layout()) {
      throw InputError(out_dir + ": its optimizer state is " + describe_layout(saved_layout) + ", this run's would be " +
                       describe_layout(opt->layout()) + "\n  hint: resume with the --shard-optimizer setting and WORLD_SIZE it was saved with");
    }
    opt->load(files.dir);
  }
  opt->synchronise();
  const bool writer = !parallel || parallel->rank() == 0;
  model->train();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t tokens_seen = 0;
  TrainResult result{start, earlier_seconds};
  for (std::int64_t step = start; step < c.steps; ++step) {
    const auto ts = std::chrono::steady_clock::now();
    const double lr = learning_rate(c, step);
    opt->zero_grad();
    double loss_sum = 0;
    std::int64_t tokens = 0;
    for (int k = 0; k < c.grad_accum; ++k) {
      MicroStep m = micro(step, k);
      (m.loss * (loss_scale.scale / c.grad_accum)).backward();
      loss_sum += m.loss.item<double>();
      tokens += m.tokens;
    }
    if (parallel) {
      const std::vector<double> totals = parallel->sum({loss_sum, static_cast<double>(tokens)});
      loss_sum = totals[0] / parallel->world_size();
      tokens = static_cast<std::int64_t>(totals[1]);
    }
    const double max_norm = c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity();
    const double norm = opt->finish_gradients(loss_scale.scale, max_norm, loss_scale.dynamic);
    if (loss_scale.update(norm)) opt->step(lr);
    tokens_seen += tokens;
    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    TrainProgress p{step + 1, c.steps, loss_sum / c.grad_accum, lr, norm,
                    static_cast<double>(tokens_seen) / total_s, 1000 * step_s, earlier_seconds + total_s};
    result = {p.step, p.seconds};
    bool go_on = on_progress ? on_progress(p) : true;
    if (parallel) go_on = parallel->sum(go_on ? 0.0 : 1.0) == 0;  // one rank stopping stops all
    const bool last = step + 1 == c.steps;
    const bool save = last || !go_on || (c.save_every > 0 && (step + 1) % c.save_every == 0);
    if (save && (writer || opt->sharded())) {
      save_checkpoint(model, *opt, loss_scale, out_dir, tokenizer_file, run_key, step + 1, p.seconds, last, extra, parallel);
    }
    if (!go_on) break;
  }
  return result;
}

}  // namespace steper::train
