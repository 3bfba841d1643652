// ZeRO stage 2 over c10d: the optimizer state and the averaged gradients
// split over the ranks.
//
// The stepped tensors, in order, make one flat vector of E float32 values,
// padded to N * S; rank r owns [r * S, (r + 1) * S): its float32 master
// weights, AdamW's two moments, and the gradient summed over the ranks.
// A shard crosses tensor boundaries, so each group's hyper-parameters apply
// to the part of the shard inside the group. Gradients travel in buckets
// (chunk k of every rank's shard at once), so besides the model's own
// gradients a rank holds its shard and one bucket, never a full float32
// copy. Stage 1 (full gradients on every rank) would keep more and send no
// less, so it is not offered.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "optimizer.h"

namespace steper::train {
namespace {

// Values of one rank's shard per collective: 4M float32 (16 MB) per rank.
constexpr std::int64_t kBucket = std::int64_t{1} << 22;

class ShardedAdamW : public StepOptimizer {
 public:
  ShardedAdamW(const SteppedTensors& s, const TrainConfig& c, DataParallel& parallel)
      : tensors_(s.tensors), config_(c), parallel_(parallel), rank_(parallel.rank()), world_(parallel.world_size()) {
    std::int64_t offset = 0;
    for (const auto& t : tensors_) {
      if (!t.is_contiguous()) throw InputError("sharded optimizer: a trained tensor is not contiguous");
      offsets_.push_back(offset);
      offset += t.numel();
    }
    offsets_.push_back(offset);
    shard_ = (offset + world_ - 1) / world_;
    const std::int64_t lo = rank_ * shard_;
    // The groups' ranges in the flat vector, and their parts in this shard.
    const std::size_t bounds[] = {0, s.decay, s.trainable, s.tensors.size()};
    for (int g = 0; g < 3; ++g) {
      const std::int64_t a = offsets_[bounds[g]], b = offsets_[bounds[g + 1]];
      const std::int64_t from = std::clamp(a - lo, std::int64_t{0}, shard_), to = std::clamp(b - lo, std::int64_t{0}, shard_);
      groups_[g] = {from, to - from};
    }
    extra_lr_ = s.extra_lr;
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(tensors_.empty() ? torch::kCPU : tensors_[0].device());
    master_ = torch::zeros({shard_}, opts);
    exp_avg_ = torch::zeros({shard_}, opts);
    exp_avg_sq_ = torch::zeros({shard_}, opts);
    grad_ = torch::zeros({shard_}, opts);
    // The masters start from this rank's part of the model.
    torch::NoGradGuard no_grad;
    for_each_piece(lo, lo + shard_, [&](const torch::Tensor& part, const torch::Tensor&, std::int64_t at) {
      master_.narrow(0, at, part.numel()).copy_(part);
    });
  }

  void zero_grad() override {
    for (auto& t : tensors_) t.mutable_grad() = torch::Tensor();
  }

  double finish_gradients(double scale, double max_norm, bool want_norm) override {
    torch::NoGradGuard no_grad;
    // Bucket k: chunk k of every rank's shard, built from the model's
    // gradients (zeros for padding and for tensors without one).
    for (std::int64_t k = 0; k < shard_; k += kBucket) {
      const std::int64_t n = std::min(kBucket, shard_ - k);
      std::vector<torch::Tensor> inputs;
      for (int r = 0; r < world_; ++r) {
        torch::Tensor in = torch::zeros({n}, master_.options());
        const std::int64_t lo = r * shard_ + k;
        for_each_piece(lo, lo + n, [&](const torch::Tensor&, const torch::Tensor& grad, std::int64_t at) {
          if (grad.defined()) in.narrow(0, at, grad.numel()).copy_(grad);
        });
        if (scale != 1) in.div_(scale);
        inputs.push_back(in);
      }
      parallel_.reduce_scatter(inputs, grad_.narrow(0, k, n));
    }
    if (world_ > 1) grad_.div_(world_);
    zero_grad();  // the model's gradients are in the shards now
    if (std::isinf(max_norm) && !want_norm) return 0.0;
    // The norm of the model's gradients, their squares summed over the
    // shards. The model's tensors come first, so their part of a shard
    // starts it.
    const torch::Tensor model_part = grad_.narrow(0, 0, groups_[0].length + groups_[1].length);
    const double local = model_part.numel() > 0 ? model_part.norm().item<double>() : 0.0;
    const double norm = std::sqrt(parallel_.sum(local * local));
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1) model_part.mul_(coef);
    return norm;
  }

  void step(double lr) override {
    torch::NoGradGuard no_grad;
    ++steps_;
    const double bc1 = 1 - std::pow(config_.beta1, static_cast<double>(steps_));
    const double bc2 = 1 - std::pow(config_.beta2, static_cast<double>(steps_));
    const double lrs[] = {lr, lr, extra_lr_}, decays[] = {config_.weight_decay, 0.0, 0.0};
    for (int g = 0; g < 3; ++g) {
      // In slices, so that the denominator's temporary stays small.
      for (std::int64_t a = 0; a < groups_[g].length; a += kBucket) {
        const std::int64_t at = groups_[g].from + a, n = std::min(kBucket, groups_[g].length - a);
        torch::Tensor p = master_.narrow(0, at, n), m = exp_avg_.narrow(0, at, n), v = exp_avg_sq_.narrow(0, at, n);
        const torch::Tensor grad = grad_.narrow(0, at, n);
        if (decays[g] != 0) p.mul_(1 - lrs[g] * decays[g]);
        m.mul_(config_.beta1).add_(grad, 1 - config_.beta1);
        v.mul_(config_.beta2).addcmul_(grad, grad, 1 - config_.beta2);
        const torch::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(kEps);
        p.addcdiv_(m, denom, -lrs[g] / bc1);
      }
    }
    gather_into_model();
  }

  void synchronise() override { gather_into_model(); }

  void save(const std::string& dir, const std::function<void()>& before_file) override {
    before_file();
    torch::save(std::vector<torch::Tensor>{master_, exp_avg_, exp_avg_sq_, torch::tensor(steps_)}, dir + "/" + file_name());
  }

  void load(const std::string& dir) override {
    const std::string path = dir + "/" + file_name();
    if (!std::filesystem::exists(path)) throw InputError(path + " is missing: rank " + std::to_string(rank_) + "'s optimizer shard");
    std::vector<torch::Tensor> saved;
    torch::load(saved, path);
    if (saved.size() != 4 || saved[0].numel() != shard_ || saved[1].numel() != shard_ || saved[2].numel() != shard_) {
      throw InputError(path + ": not an optimizer shard of " + std::to_string(shard_) + " values (another model or world size?)");
    }
    torch::NoGradGuard no_grad;
    master_.copy_(saved[0]);
    exp_avg_.copy_(saved[1]);
    exp_avg_sq_.copy_(saved[2]);
    steps_ = saved[3].item<std::int64_t>();
  }

  bool sharded() const override { return true; }
  std::string layout() const override { return "sharded/" + std::to_string(world_); }

 private:
  static constexpr double kEps = 1e-8;  // AdamWOptions' default, as the replicated run
  struct Range {
    std::int64_t from = 0, length = 0;
  };

  std::string file_name() const {
    return "optimizer_shard-" + std::to_string(rank_) + "-of-" + std::to_string(world_) + ".torchscript";
  }

  // Calls fn(part, grad, at) for each tensor's part inside the flat range
  // [lo, hi): `part` a flat view of the tensor's values there, `grad` the
  // same view of its gradient (undefined without one), `at` its position
  // from lo.
  template <typename Fn>
  void for_each_piece(std::int64_t lo, std::int64_t hi, Fn&& fn) {
    const auto after = std::upper_bound(offsets_.begin(), offsets_.end(), lo) - offsets_.begin();
    for (std::size_t i = static_cast<std::size_t>(std::max<std::ptrdiff_t>(after - 1, 0)); i < tensors_.size() && offsets_[i] < hi; ++i) {
      const std::int64_t a = std::max(lo, offsets_[i]), b = std::min(hi, offsets_[i + 1]);
      if (a >= b) continue;
      const torch::Tensor& t = tensors_[i];
      const torch::Tensor grad = t.grad().defined() ? t.grad().view(-1).narrow(0, a - offsets_[i], b - a) : torch::Tensor();
      fn(t.detach().view(-1).narrow(0, a - offsets_[i], b - a), grad, a - lo);
    }
  }

  // Every rank's updated shard into every rank's model, bucket by bucket,
  // rounded to the model's dtype.
  void gather_into_model() {
    torch::NoGradGuard no_grad;
    for (std::int64_t k = 0; k < shard_; k += kBucket) {
      const std::int64_t n = std::min(kBucket, shard_ - k);
      torch::Tensor all = torch::empty({world_, n}, master_.options());
      std::vector<torch::Tensor> outputs;
      for (int r = 0; r < world_; ++r) outputs.push_back(all[r]);
      parallel_.all_gather(master_.narrow(0, k, n), outputs);
      for (int r = 0; r < world_; ++r) {
        const std::int64_t lo = r * shard_ + k;
        for_each_piece(lo, lo + n, [&](torch::Tensor part, const torch::Tensor&, std::int64_t at) {
          part.copy_(outputs[static_cast<std::size_t>(r)].narrow(0, at, part.numel()));
        });
      }
    }
  }

  std::vector<torch::Tensor> tensors_;
  std::vector<std::int64_t> offsets_;  // where each tensor starts in the flat vector; then its length
  TrainConfig config_;
  DataParallel& parallel_;
  int rank_, world_;
  std::int64_t shard_ = 0;
  Range groups_[3];  // decayed, undecayed, extra: their parts of this shard
  double extra_lr_ = 0;
  torch::Tensor master_, exp_avg_, exp_avg_sq_, grad_;
  std::int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<StepOptimizer> sharded_adamw(const SteppedTensors& stepped, const TrainConfig& config, DataParallel& parallel) {
  return std::make_unique<ShardedAdamW>(stepped, config, parallel);
}

}  // namespace steper::train
