// Distillation fine-tuning on stage samples: loss on target tokens only, one
// mean loss per stage per batch, combined by the stage weights; the shared
// train_loop supplies the schedule, checkpoints and exact resume.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "length_groups.h"
#include "steper/distill.h"
#include "steper/io.h"

namespace steper::distill {
namespace {

struct Tokenized {
  std::vector<int> ids;  // prompt then target
  int prompt = 0;        // tokens of the prompt
  int stage = 0;         // the Stage's index
};

// Target-token loss sums of `batch`, per stage and over all, with the
// token counts they are to be divided by. Sums rather than means, so that
// data-parallel ranks can divide by the counts of the global batch.
struct LossSums {
  std::vector<torch::Tensor> stage;  // [3] scalars; undefined for stages absent from the batch
  std::vector<double> stage_tokens;  // [3]
  torch::Tensor all;                 // scalar
  double all_tokens = 0;
};

// Per-row target-token loss sums of `rows` of `batch`, padded to the longest.
torch::Tensor row_losses(model::CausalLM& net, const std::vector<const Tokenized*>& batch, const std::vector<std::size_t>& rows,
                         torch::Device device) {
  const auto B = static_cast<std::int64_t>(rows.size());
  std::int64_t L = 0;
  for (std::size_t r : rows) L = std::max<std::int64_t>(L, static_cast<std::int64_t>(batch[r]->ids.size()));
  torch::Tensor ids = torch::zeros({B, L}, torch::kLong);
  std::vector<std::int64_t> where, row;  // flat positions in [B, L - 1] that predict a target, and their rows
  for (std::int64_t b = 0; b < B; ++b) {
    const Tokenized& t = *batch[rows[static_cast<std::size_t>(b)]];
    auto* dst = ids[b].data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < t.ids.size(); ++i) dst[i] = t.ids[i];
    // Position i predicts token i + 1: the targets are tokens prompt .. end.
    const auto targets = static_cast<std::int64_t>(t.ids.size()) - t.prompt;
    for (std::int64_t i = t.prompt - 1; i < t.prompt - 1 + targets; ++i) where.push_back(b * (L - 1) + i), row.push_back(b);
  }
  // Logits only where a target is predicted: the prompt's positions carry no
  // loss, and at a real vocabulary the [B, L, V] logits of every position
  // are most of a step's memory.
  const torch::Tensor at = torch::tensor(where, torch::kLong).to(device), row_of = torch::tensor(row, torch::kLong).to(device);
  ids = ids.to(device);
  torch::Tensor h = net->hidden(ids.narrow(1, 0, L - 1));                 // right padding: pads never precede a target
  torch::Tensor picked = h.reshape({-1, h.size(-1)}).index_select(0, at);  // [N, C]
  torch::Tensor tok_loss = torch::nn::functional::cross_entropy(
      net->logits(picked).to(torch::kFloat32), ids.narrow(1, 1, L - 1).reshape({-1}).index_select(0, at),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // [N]
  return torch::zeros({B}, tok_loss.options()).index_add(0, row_of, tok_loss);  // [B]
}

LossSums loss_sums(model::CausalLM& net, const std::vector<const Tokenized*>& batch, torch::Device device, std::int64_t overhead) {
  const auto B = static_cast<std::int64_t>(batch.size());
  LossSums out;
  out.stage.resize(kStageCount);
  out.stage_tokens.assign(kStageCount, 0.0);
  std::vector<std::vector<std::int64_t>> rows_of(kStageCount);
  for (std::int64_t b = 0; b < B; ++b) {
    const Tokenized& t = *batch[static_cast<std::size_t>(b)];
    const auto targets = static_cast<double>(t.ids.size()) - t.prompt;
    rows_of[static_cast<std::size_t>(t.stage)].push_back(b);
    out.stage_tokens[static_cast<std::size_t>(t.stage)] += targets;
    out.all_tokens += targets;
  }
  std::vector<torch::Tensor> parts;
  std::vector<std::int64_t> position(static_cast<std::size_t>(B));  // row b's place in the concatenated parts
  std::int64_t next = 0;
  // Each group padded to its own longest row: a step-wise batch ranges from
  // one short step to a whole chain (a third of a batch padded whole was
  // padding). The loss and its gradient are the whole batch's, since right
  // padding never reaches a target. A negative overhead: the batch padded
  // whole, in its order.
  std::vector<std::int64_t> lengths;
  for (const auto* t : batch) lengths.push_back(static_cast<std::int64_t>(t->ids.size()));
  std::vector<std::vector<std::size_t>> groups;
  if (overhead >= 0) {
    groups = detail::length_groups(lengths, overhead);
  } else {
    groups.emplace_back(batch.size());
    for (std::size_t b = 0; b < batch.size(); ++b) groups[0][b] = b;
  }
  for (const auto& group : groups) {
    parts.push_back(row_losses(net, batch, group, device));
    for (std::size_t r : group) position[r] = next++;
  }
  const torch::Tensor per_row = (parts.size() == 1 ? parts[0] : torch::cat(parts)).index_select(0, torch::tensor(position, torch::kLong).to(device));
  out.all = per_row.sum();
  for (std::size_t j = 0; j < kStageCount; ++j) {
    if (rows_of[j].empty()) continue;
    out.stage[j] = per_row.index_select(0, torch::tensor(rows_of[j], torch::kLong).to(device)).sum();
  }
  return out;
}

}  // namespace

train::TrainConfig fine_tuning_defaults() {
  train::TrainConfig c;
  c.lr = 1e-4;
  c.warmup_steps = 20;
  c.weight_decay = 0.0;
  c.batch_size = 8;
  return c;
}

// In the enum's order.
const std::vector<std::string>& weighting_names() {
  static const std::vector<std::string> names{"difficulty", "uniform", "none", "floor"};
  return names;
}

Weighting parse_weighting(const std::string& name) {
  const auto& names = weighting_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<Weighting>(i);
  }
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw InputError("unknown weighting '" + name + "'; use " + known);
}

const std::string& weighting_name(Weighting w) { return weighting_names().at(static_cast<std::size_t>(w)); }

StageWeights::StageWeights(Weighting w, double floor_, torch::Device device)
    : weighting(w), floor(floor_), log_var(torch::zeros({3}, torch::TensorOptions().device(device))) {
  if (w == Weighting::floor && !(floor_ > 0)) throw InputError("sigma floor must be positive, got " + std::to_string(floor_));
  if (w == Weighting::difficulty || w == Weighting::floor) log_var.set_requires_grad(true);
}

// The floor variant's weights: 1 / max(sigma_j^2, floor) over the stages
// present, normalised to sum to 1 (0 for a stage absent).
static std::vector<double> floor_weights(const torch::Tensor& log_var, double floor, const std::vector<bool>& present) {
  std::vector<double> w(present.size(), 0.0);
  double sum = 0;
  for (std::size_t j = 0; j < present.size(); ++j) {
    if (present[j]) sum += w[j] = 1 / std::max(std::exp(log_var[static_cast<std::int64_t>(j)].item<double>()), floor);
  }
  for (double& x : w) x /= sum;
  return w;
}

torch::Tensor StageWeights::combine(const std::vector<torch::Tensor>& losses, const torch::Tensor& all) const {
  if (weighting == Weighting::none) return all;
  std::vector<bool> present;
  for (const auto& l : losses) present.push_back(l.defined());
  const int count = static_cast<int>(std::count(present.begin(), present.end(), true));
  if (!count) throw InputError("a batch with no stage");
  const std::vector<double> floored = weighting == Weighting::floor ? floor_weights(log_var, floor, present) : std::vector<double>();
  torch::Tensor total;
  for (std::size_t j = 0; j < losses.size(); ++j) {
    if (!present[j]) continue;
    torch::Tensor term = losses[j];
    if (weighting == Weighting::difficulty) {
      torch::Tensor s = log_var[static_cast<std::int64_t>(j)].to(losses[j].device());
      term = 0.5 * torch::exp(-s) * losses[j] + 0.5 * s;
    } else if (weighting == Weighting::floor) {
      // The weight is a constant to the model; sigma learns from the loss's
      // value alone, so its gradient does not flow into the model.
      torch::Tensor s = log_var[static_cast<std::int64_t>(j)].to(losses[j].device());
      term = floored[j] * losses[j] + (0.5 * torch::exp(-s) * losses[j].detach() + 0.5 * s);
    }
    total = total.defined() ? total + term : term;
  }
  return weighting == Weighting::uniform ? total / count : total;
}

std::vector<double> StageWeights::weights() const {
  if (weighting == Weighting::floor) return floor_weights(log_var, floor, std::vector<bool>(3, true));
  std::vector<double> w;
  for (std::int64_t j = 0; j < 3; ++j) w.push_back(weighting == Weighting::difficulty ? 0.5 * std::exp(-log_var[j].item<double>()) : 0.5);
  return w;
}

// What of the LoRA settings makes two runs different ("" without LoRA, so
// that keys of runs from before LoRA existed still match).
static std::string lora_key(const model::LoraConfig& l) {
  if (l.rank <= 0) return "";
  std::string k = ":lora" + std::to_string(l.rank) + "/" + std::to_string(l.alpha);
  for (const auto& t : l.targets) k += "/" + t;
  return k;
}

TrainReport train(const std::string& samples_path, const std::string& init_dir, const std::string& out_dir,
                  const TrainOptions& o, const std::function<bool(const DistillProgress&)>& on_progress) {
  const torch::Device device = train::rank_device(o.device);
  model::LoadedModel m = model::load_model(init_dir, device, o.train.dtype);
  if (!m.tokenizer) throw InputError(init_dir + " has no tokenizer");
  const text::Tokenizer& tok = *m.tokenizer;
  const int limit = o.max_tokens > 0 ? std::min(o.max_tokens, m.config.max_position_embeddings) : m.config.max_position_embeddings;
  TrainReport report;
  std::vector<Tokenized> train_set, held;
  {
    data::RecordReader<Sample> reader(samples_path, parse_sample);
    Sample s;
    while (reader.next(s)) {
      Tokenized t;
      // The BOS rule inference follows: the tokenizer's, unless a chat
      // template wrote the prompt (LocalModel::prompt_ids).
      t.ids = model::encode_prompt(tok, s.prompt, s.chat ? 0 : -1);
      t.prompt = static_cast<int>(t.ids.size());
      for (int id : tok.encode(s.target)) t.ids.push_back(id);
      if (tok.eos_id() >= 0) t.ids.push_back(tok.eos_id());
      t.stage = static_cast<int>(s.stage);
      if (static_cast<int>(t.ids.size()) > limit || t.prompt < 1 || t.prompt >= static_cast<int>(t.ids.size())) {
        ++report.dropped;  // the rule: a sample longer than the context is dropped, never cut
        continue;
      }
      // Held out by question, so no stage of a held-out question is trained on.
      const bool hold = static_cast<double>(std::hash<std::string>{}(s.id) % 10000) < o.holdout * 10000;
      (hold ? held : train_set).push_back(std::move(t));
    }
  }
  if (train_set.empty()) throw InputError(samples_path + ": no trainable samples (" + std::to_string(report.dropped) + " longer than " + std::to_string(limit) + " tokens)");
  report.samples = train_set.size();
  report.held_out = held.size();
  train::TrainConfig tc = o.train;
  const std::int64_t per_step = static_cast<std::int64_t>(tc.batch_size) * tc.grad_accum * (o.parallel ? o.parallel->world_size() : 1);
  if (o.epochs > 0) tc.steps = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(o.epochs * static_cast<double>(train_set.size()) / static_cast<double>(per_step))));
  report.total_steps = tc.steps;

  if (o.lora.rank > 0) model::add_lora(m.model, o.lora, tc.seed);
  StageWeights weights(o.weighting, o.sigma_floor, device);
  train::ExtraParams extra;
  extra.lr = o.weight_lr;
  if (weights.log_var.requires_grad()) extra.params.push_back(weights.log_var);

  // Epoch e visits the samples in a permutation drawn from (seed, e) alone.
  const auto n = static_cast<std::int64_t>(train_set.size());
  std::int64_t cached_epoch = -1;
  std::vector<std::int64_t> order;
  const int world = o.parallel ? o.parallel->world_size() : 1, rank = o.parallel ? o.parallel->rank() : 0;
  const bool writer = rank == 0;
  auto batch_of = [&](std::int64_t index) {
    std::vector<const Tokenized*> b;
    for (int i = 0; i < tc.batch_size; ++i) {
      const std::int64_t flat = (index * world + rank) * tc.batch_size + i, epoch = flat / n;
      if (epoch != cached_epoch) {
        at::Generator gen = at::detail::createCPUGenerator(tc.seed * 1000003 + static_cast<std::uint64_t>(epoch));
        torch::Tensor perm = torch::randperm(n, gen, torch::kLong);
        order.assign(perm.data_ptr<std::int64_t>(), perm.data_ptr<std::int64_t>() + n);
        cached_epoch = epoch;
      }
      b.push_back(&train_set[static_cast<std::size_t>(order[static_cast<std::size_t>(flat % n)])]);
    }
    return b;
  };
  // A forward's fixed cost in tokens, for length_groups: about 64 on CPU
  // (bench/distill_bench); on a GPU, where a padded token costs far less
  // than a kernel launch, groups are formed only for large differences (a
  // guess: not measured on one). Off (-1): the batch padded whole.
  const std::int64_t overhead = !o.group_by_length ? -1 : device.is_cuda() ? 2048 : 64;
  std::vector<double> last(3, std::nan(""));
  // Each mean is over the target tokens of the whole (global) batch. With
  // data parallelism a rank sees part of it, so it divides its sums by the
  // global counts and multiplies by the world size, which the averaging of
  // gradients divides out again: the ranks together then take the step one
  // process would take on the global batch. A stage present elsewhere but not
  // here still adds its log-variance term (with a zero loss), as it would there.
  auto micro = [&](std::int64_t step, int k) {
    LossSums s = loss_sums(m.model, batch_of(step * tc.grad_accum + k), device, overhead);
    std::vector<double> totals{s.stage_tokens[0], s.stage_tokens[1], s.stage_tokens[2], s.all_tokens};
    for (const auto& t : s.stage) totals.push_back(t.defined() ? t.item<double>() : 0.0);  // for the log only
    if (o.parallel) totals = o.parallel->sum(std::move(totals));
    std::vector<torch::Tensor> losses(3);
    for (std::size_t j = 0; j < 3; ++j) {
      const double count = totals[j];
      last[j] = count > 0 ? totals[4 + j] / count : std::nan("");
      if (count <= 0) continue;
      const torch::Tensor sum = s.stage[j].defined() ? s.stage[j] : torch::zeros({}, s.all.options());
      losses[j] = sum * (world / count);
    }
    const torch::Tensor all = s.all * (world / std::max(1.0, totals[3]));
    return train::MicroStep{weights.combine(losses, all), static_cast<std::int64_t>(s.all_tokens)};
  };
  auto evaluate = [&] {
    if (held.empty()) return -1.0;
    torch::NoGradGuard no_grad;
    m.model->eval();
    double sum = 0, count = 0;
    for (std::size_t i = 0; i < held.size(); i += static_cast<std::size_t>(tc.batch_size)) {
      std::vector<const Tokenized*> b;
      for (std::size_t k = i; k < std::min(held.size(), i + static_cast<std::size_t>(tc.batch_size)); ++k) b.push_back(&held[k]);
      LossSums s = loss_sums(m.model, b, device, overhead);
      sum += s.all.item<double>();
      count += s.all_tokens;
    }
    m.model->train();
    return sum / std::max(1.0, count);
  };

  // Paths canonical: the same run named by another path is the same run.
  const std::string run_key = "distill:" + std::to_string(std::filesystem::file_size(samples_path)) + ":" +
                              std::filesystem::weakly_canonical(samples_path).string() + ":" +
                              std::filesystem::weakly_canonical(std::filesystem::path(init_dir) / "").parent_path().string() + ":" + weighting_name(o.weighting) + ":" + std::to_string(tc.steps) + ":" +
                              std::to_string(tc.batch_size) + ":" + std::to_string(tc.grad_accum) + ":" + std::to_string(tc.lr) + ":" +
                              std::to_string(tc.seed) + ":" + std::to_string(o.weight_lr) + lora_key(o.lora) +
                              (o.weighting == Weighting::floor ? ":floor" + std::to_string(o.sigma_floor) : "") +
                              (world > 1 ? ":world" + std::to_string(world) : "") +
                              (tc.dtype != torch::kFloat32 ? ":" + model::torch_dtype_name(tc.dtype) : "");
  std::filesystem::create_directories(out_dir);
  // Opened at the first step this process logs: a resumed run first drops
  // the rows written after its checkpoint, so each step is logged once.
  const std::string metrics_path = out_dir + "/metrics.jsonl";
  std::optional<io::JsonlWriter> metrics;
  std::string tokenizer_file = text::find_tokenizer_file(init_dir);
  const train::TrainResult trained = train::train_loop(
      m.model, tc, out_dir, tokenizer_file, run_key, micro,
      [&](const train::TrainProgress& p) {
        DistillProgress d{p, last, weights.weights(), -1};
        if (!writer) return on_progress ? on_progress(d) : true;
        if (o.eval_every > 0 && (p.step % o.eval_every == 0 || p.step == p.steps)) d.eval_loss = evaluate();
        data::json j{{"step", p.step}, {"loss", p.loss}, {"lr", p.lr}, {"grad_norm", p.grad_norm},
                     {"ms_per_step", p.ms_per_step}, {"tokens_per_second", p.tokens_per_second}};
        for (std::size_t s = 0; s < 3; ++s) {
          j["loss_" + stage_names()[s]] = std::isnan(last[s]) ? data::json() : data::json(last[s]);
          j["weight_" + stage_names()[s]] = d.stage_weight[s];
        }
        if (d.eval_loss >= 0) j["eval_loss"] = d.eval_loss;
        if (!metrics) {
          io::truncate_jsonl_at(metrics_path, "step", p.step);
          metrics.emplace(metrics_path, io::JsonlWriter::Mode::append);
        }
        metrics->write(j);
        return on_progress ? on_progress(d) : true;
      },
      &extra, o.parallel);
  report.steps = trained.steps;
  report.seconds = trained.seconds;
  return report;
}

}  // namespace steper::distill
