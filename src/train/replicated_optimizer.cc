// LibTorch's AdamW on every rank: the whole optimizer state replicated,
// gradients averaged with one all-reduce.
#include <filesystem>

#include "optimizer.h"

namespace steper::train {
namespace {

constexpr const char* kOptimizerFile = "optimizer.torchscript";
constexpr const char* kMastersFile = "master_weights.torchscript";

// What the optimizer steps: each tensor itself when it is float32, else a
// float32 master copy (mixed precision). Gradients are gathered into the
// masters (unscaled, in float32) before averaging and clipping, and the
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

class ReplicatedAdamW : public StepOptimizer {
 public:
  ReplicatedAdamW(const SteppedTensors& s, const TrainConfig& c, DataParallel* parallel)
      : masters_(s.tensors), parallel_(parallel), clipped_(masters_.slice(0, s.trainable)) {
    auto options = [&](double wd) { return torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).weight_decay(wd); };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(masters_.slice(0, s.decay), std::make_unique<torch::optim::AdamWOptions>(options(c.weight_decay)));
    groups.emplace_back(masters_.slice(s.decay, s.trainable), std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
    if (s.tensors.size() > s.trainable) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(options(0.0));
      o->lr(s.extra_lr);
      groups.emplace_back(masters_.slice(s.trainable, s.tensors.size()), std::move(o));
    }
    opt_ = std::make_unique<torch::optim::AdamW>(std::move(groups), options(c.weight_decay));
  }

  void zero_grad() override { opt_->zero_grad(); }

  double finish_gradients(double scale, double max_norm, bool want_norm) override {
    masters_.gather_grads(scale);
    if (parallel_) parallel_->average_gradients(masters_.masters());
    if (std::isinf(max_norm) && !want_norm) return 0.0;
    return torch::nn::utils::clip_grad_norm_(clipped_, max_norm);
  }

  void step(double lr) override {
    for (std::size_t g = 0; g < 2; ++g) static_cast<torch::optim::AdamWOptions&>(opt_->param_groups()[g].options()).lr(lr);
    opt_->step();
    masters_.copy_to_model();
  }

  void synchronise() override {
    if (!parallel_) return;
    parallel_->broadcast(masters_.masters());  // one starting point, whatever each rank loaded
    masters_.copy_to_model();
  }

  void save(const std::string& dir, const std::function<void()>& before_file) override {
    if (parallel_ && parallel_->rank() != 0) return;
    if (masters_.mixed()) before_file(), torch::save(masters_.masters(), dir + "/" + kMastersFile);
    before_file();
    torch::save(*opt_, dir + "/" + kOptimizerFile);
  }

  // `dir` is trainer_state/, or a checkpoint of the earlier layout whose
  // optimizer file sat beside the model as optimizer.pt.
  void load(const std::string& dir) override {
    if (masters_.mixed()) {
      const std::string path = dir + "/" + kMastersFile;
      if (!std::filesystem::exists(path)) throw InputError(path + " is missing: the checkpoint cannot resume mixed-precision training exactly");
      std::vector<torch::Tensor> saved;
      torch::load(saved, path);
      if (saved.size() != masters_.masters().size()) {
        throw InputError(path + ": holds " + std::to_string(saved.size()) + " tensors, the run has " + std::to_string(masters_.masters().size()));
      }
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < saved.size(); ++i) masters_.masters()[i].detach().copy_(saved[i]);
    }
    const std::string current = dir + "/" + kOptimizerFile, legacy = dir + "/optimizer.pt";
    torch::load(*opt_, std::filesystem::exists(current) || !std::filesystem::exists(legacy) ? current : legacy);
  }

  bool sharded() const override { return false; }
  std::string layout() const override { return "replicated"; }

 private:
  MasterWeights masters_;
  DataParallel* parallel_;
  std::vector<torch::Tensor> clipped_;
  std::unique_ptr<torch::optim::AdamW> opt_;
};

}  // namespace

std::unique_ptr<StepOptimizer> replicated_adamw(const SteppedTensors& stepped, const TrainConfig& config, DataParallel* parallel) {
  return std::make_unique<ReplicatedAdamW>(stepped, config, parallel);
}

}  // namespace steper::train
