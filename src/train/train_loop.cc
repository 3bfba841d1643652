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
#include "steper/train.h"

namespace steper::train {

using namespace model;
namespace {

using json = nlohmann::json;
// Training state lives in its own folder, so that OUT_DIR is the model to
// ship: docs/checkpoints.md describes these files.
constexpr const char* kStateDir = "trainer_state";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.torchscript";
constexpr const char* kExtraFile = "extra_params.torchscript";
constexpr const char* kAdapterFile = "adapter_model.safetensors";
constexpr const char* kMastersFile = "master_weights.torchscript";
// Checkpoints of steper before the state had its folder: read on resume,
// removed by the next save.
constexpr const char* kLegacyOptimizer = "optimizer.pt";
constexpr const char* kLegacyExtra = "extra_params.pt";

// Where a resume finds its state: the folder, and the optimizer's and the
// extra parameters' files.
struct StateFiles {
  std::string dir, optimizer, extra;
  bool legacy = false;
};

StateFiles state_files(const std::string& out_dir) {
  const std::string dir = out_dir + "/" + kStateDir;
  if (!std::filesystem::exists(dir + "/" + kStateFile) && std::filesystem::exists(out_dir + "/" + kStateFile)) {
    return {out_dir, out_dir + "/" + kLegacyOptimizer, out_dir + "/" + kLegacyExtra, true};
  }
  return {dir, dir + "/" + kOptimizerFile, dir + "/" + kExtraFile, false};
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

// What the optimizer steps: each trainable tensor itself when it is float32,
// else a float32 master copy (mixed precision). Gradients are gathered into
// the masters (unscaled, in float32) before averaging and clipping, and the
// updated masters are rounded back into the model after the step.
class MasterWeights {
 public:
  explicit MasterWeights(std::vector<torch::Tensor> params) : params_(std::move(params)) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params_) {
      masters_.push_back(p.scalar_type() == torch::kFloat32 ? p : p.detach().to(torch::kFloat32).set_requires_grad(true));
      mixed_ = mixed_ || !masters_.back().is_same(p);
    }
  }
  bool mixed() const { return mixed_; }
  const std::vector<torch::Tensor>& masters() const { return masters_; }
  std::vector<torch::Tensor> slice(std::size_t begin, std::size_t end) const {
    return {masters_.begin() + static_cast<std::ptrdiff_t>(begin), masters_.begin() + static_cast<std::ptrdiff_t>(end)};
  }
  // Moves each gradient into its master, divided by the loss scale; the
  // low-precision gradient is freed. A tensor without a gradient this step
  // keeps what the optimizer's zero_grad left (nothing, or zeros), as an
  // unmixed run would.
  void gather_grads(double scale) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i];
      torch::Tensor& m = masters_[i];
      if (!p.grad().defined()) continue;
      if (m.is_same(p)) {
        if (scale != 1) p.mutable_grad().div_(scale);
        continue;
      }
      m.mutable_grad() = p.grad().to(torch::kFloat32).div_(scale);
      p.mutable_grad() = torch::Tensor();
    }
  }
  void copy_to_model() {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!masters_[i].is_same(params_[i])) params_[i].copy_(masters_[i]);
    }
  }
 private:
  std::vector<torch::Tensor> params_, masters_;
  bool mixed_ = false;
};

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

void save_checkpoint(CausalLM& model, torch::optim::AdamW& opt, const MasterWeights& masters, const LossScale& loss_scale,
                     const std::string& dir, const std::string& tokenizer_file, const std::string& run_key, std::int64_t step,
                     double seconds, bool last, const ExtraParams* extra) {
  SaveSteps op;
  const std::string name = ".checkpoint-" + std::to_string(step), staging = dir + "/" + name;
  op();
  fs::remove_all(staging);
  const bool lora = has_lora(model);
  if (lora && last) merge_lora(model);
  op();
  save_model(model, staging, tokenizer_file, model->model->embed_tokens->weight.scalar_type());
  if (lora && !last) op(), save_adapters(model, staging);
  fs::create_directories(staging + "/" + kStateDir);
  if (masters.mixed()) op(), torch::save(masters.masters(), staging + "/" + kStateDir + "/" + kMastersFile);
  if (extra && !extra->params.empty()) op(), torch::save(extra->params, staging + "/" + kStateDir + "/" + kExtraFile);
  op();
  torch::save(opt, staging + "/" + kStateDir + "/" + kOptimizerFile);
  op();
  json state{{"step", step}, {"run_key", run_key}, {"seconds", seconds}, {"staged", name}};
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
  if (resume) {
    const json state = io::read_json(state_path);
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
  MasterWeights masters(stepped);
  if (resume && masters.mixed()) {
    const std::string path = files.dir + "/" + kMastersFile;
    if (!std::filesystem::exists(path)) throw InputError(path + " is missing: the checkpoint cannot resume mixed-precision training exactly");
    std::vector<torch::Tensor> saved;
    torch::load(saved, path);
    if (saved.size() != masters.masters().size()) throw InputError(path + ": holds " + std::to_string(saved.size()) + " tensors, the run has " + std::to_string(masters.masters().size()));
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < saved.size(); ++i) masters.masters()[i].detach().copy_(saved[i]);
  }

  auto options = [&](double wd) { return torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).weight_decay(wd); };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(masters.slice(0, decay.size()), std::make_unique<torch::optim::AdamWOptions>(options(c.weight_decay)));
  groups.emplace_back(masters.slice(decay.size(), trainable.size()), std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
  if (has_extra) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(options(0.0));
    o->lr(extra->lr);
    groups.emplace_back(masters.slice(trainable.size(), stepped.size()), std::move(o));
  }
  torch::optim::AdamW opt(std::move(groups), options(c.weight_decay));
  if (resume) torch::load(opt, files.optimizer);
  const std::vector<torch::Tensor> clipped = masters.slice(0, trainable.size());

  const bool writer = !parallel || parallel->rank() == 0;
  if (parallel) {
    parallel->broadcast(masters.masters());  // one starting point, whatever each rank loaded
    masters.copy_to_model();
  }
  model->train();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t tokens_seen = 0;
  TrainResult result{start, earlier_seconds};
  for (std::int64_t step = start; step < c.steps; ++step) {
    const auto ts = std::chrono::steady_clock::now();
    const double lr = learning_rate(c, step);
    for (std::size_t g = 0; g < 2; ++g) static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options()).lr(lr);
    opt.zero_grad();
    double loss_sum = 0;
    std::int64_t tokens = 0;
    for (int k = 0; k < c.grad_accum; ++k) {
      MicroStep m = micro(step, k);
      (m.loss * (loss_scale.scale / c.grad_accum)).backward();
      loss_sum += m.loss.item<double>();
      tokens += m.tokens;
    }
    masters.gather_grads(loss_scale.scale);
    if (parallel) {
      parallel->average_gradients(masters.masters());
      const std::vector<double> totals = parallel->sum({loss_sum, static_cast<double>(tokens)});
      loss_sum = totals[0] / parallel->world_size();
      tokens = static_cast<std::int64_t>(totals[1]);
    }
    const double max_norm = c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity();
    const double norm = c.grad_clip > 0 || loss_scale.dynamic ? torch::nn::utils::clip_grad_norm_(clipped, max_norm) : 0.0;
    if (loss_scale.update(norm)) {
      opt.step();
      masters.copy_to_model();
    }
    tokens_seen += tokens;
    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    TrainProgress p{step + 1, c.steps, loss_sum / c.grad_accum, lr, norm,
                    static_cast<double>(tokens_seen) / total_s, 1000 * step_s, earlier_seconds + total_s};
    result = {p.step, p.seconds};
    bool go_on = on_progress ? on_progress(p) : true;
    if (parallel) go_on = parallel->sum(go_on ? 0.0 : 1.0) == 0;  // one rank stopping stops all
    const bool last = step + 1 == c.steps;
    if (writer && (last || !go_on || (c.save_every > 0 && (step + 1) % c.save_every == 0))) {
      save_checkpoint(model, opt, masters, loss_scale, out_dir, tokenizer_file, run_key, step + 1, p.seconds, last, extra);
    }
    if (!go_on) break;
  }
  return result;
}

}  // namespace steper::train
