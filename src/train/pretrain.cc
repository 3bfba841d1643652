// Next-token pretraining over packed texts: `steper pretrain` and the
// demo's pretraining stages both come here.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/train.h"

namespace steper::train {

std::vector<int> pack_texts(const text::Tokenizer& tok,
                            const std::function<void(const std::function<void(const std::string&)>&)>& texts) {
  std::vector<int> stream;
  texts([&](const std::string& t) {
    if (tok.bos_id() >= 0) stream.push_back(tok.bos_id());
    for (int id : tok.encode(t)) stream.push_back(id);
    if (tok.eos_id() >= 0) stream.push_back(tok.eos_id());
  });
  return stream;
}

PackedTokens::PackedTokens(std::vector<int> stream, int seq_len) : stream_(std::move(stream)), seq_len_(seq_len) {
  if (seq_len < 2) throw InputError("sequence length must be at least 2");
  rows_ = static_cast<std::int64_t>(stream_.size()) / (seq_len + 1);
  if (rows_ < 1) {
    throw InputError("the training text is " + std::to_string(stream_.size()) + " tokens, less than one row of " +
                     std::to_string(seq_len + 1) + "\n  hint: lower --seq-len or give more text");
  }
}

// A fresh permutation per epoch, from (seed, epoch) alone.
const std::vector<std::int64_t>& PackedTokens::order(std::int64_t epoch, std::uint64_t seed) const {
  if (epoch != cached_epoch_ || seed != cached_seed_) {
    at::Generator gen = at::detail::createCPUGenerator(seed * 1000003 + static_cast<std::uint64_t>(epoch));
    torch::Tensor perm = torch::randperm(rows_, gen, torch::kLong);
    order_.assign(perm.data_ptr<std::int64_t>(), perm.data_ptr<std::int64_t>() + rows_);
    cached_epoch_ = epoch;
    cached_seed_ = seed;
  }
  return order_;
}

torch::Tensor PackedTokens::batch(std::int64_t index, int batch, std::uint64_t seed) const {
  torch::Tensor out = torch::empty({batch, seq_len_ + 1}, torch::kLong);
  auto* dst = out.data_ptr<std::int64_t>();
  for (int b = 0; b < batch; ++b) {
    const std::int64_t flat = index * batch + b, epoch = flat / rows_, within = flat % rows_;
    const std::int64_t row = order(epoch, seed)[static_cast<std::size_t>(within)];
    for (int t = 0; t <= seq_len_; ++t) dst[b * (seq_len_ + 1) + t] = stream_[static_cast<std::size_t>(row * (seq_len_ + 1) + t)];
  }
  return out;
}

MicroStep language_model_step(CausalLM& model, const PackedTokens& data, std::int64_t index, int batch, std::uint64_t seed) {
  const torch::Device device = model->model->embed_tokens->weight.device();
  torch::Tensor rows = data.batch(index, batch, seed).to(device);  // [B, T+1]
  const std::int64_t T = rows.size(1) - 1;
  torch::Tensor logits = model->forward(rows.narrow(1, 0, T));      // [B,T,V]
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                                            rows.narrow(1, 1, T).reshape({-1}));
  return {loss, batch * T};
}

model::ModelConfig pretrain_config(const PretrainOptions& o, const text::Tokenizer& tok) {
  model::ModelConfig mc = o.model;
  mc.vocab_size = tok.vocab_size();
  mc.bos_token_id = tok.bos_id();
  mc.eos_token_id = tok.eos_id();
  if (mc.num_key_value_heads == 0) mc.num_key_value_heads = mc.num_attention_heads;
  if (mc.intermediate_size == 0) mc.intermediate_size = (mc.hidden_size * 8 / 3 + 31) / 32 * 32;  // Llama's ~8/3
  mc.max_position_embeddings = std::max(mc.max_position_embeddings, o.seq_len);
  mc.validate();
  return mc;
}

PretrainReport pretrain(const std::vector<int>& packed_stream, const std::string& tokenizer_file, const std::string& out_dir,
                        const PretrainOptions& o, const std::function<void(const PretrainReport&)>& on_start,
                        const std::function<bool(const TrainProgress&)>& on_progress) {
  auto tok = text::load_tokenizer(tokenizer_file);
  PretrainReport report;
  report.config = pretrain_config(o, *tok);
  const model::ModelConfig& mc = report.config;
  const PackedTokens data(packed_stream, o.seq_len);
  report.tokens = data.tokens();
  report.rows = data.rows();
  TrainConfig tc = o.train;
  const int world = o.parallel ? o.parallel->world_size() : 1, rank = o.parallel ? o.parallel->rank() : 0;
  const std::int64_t rows_per_step = static_cast<std::int64_t>(tc.batch_size) * tc.grad_accum * world;
  if (o.epochs > 0) {
    tc.steps = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(o.epochs * static_cast<double>(data.rows()) /
                                                                              static_cast<double>(rows_per_step))));
  }
  report.steps = tc.steps;
  if (on_start) on_start(report);

  torch::manual_seed(tc.seed);
  model::CausalLM net(mc);
  net->to(rank_device(o.device), tc.dtype);
  // What makes two runs the same run: resume only into one of those.
  const std::string run_key = o.run_key + ":" + std::to_string(mc.parameter_count()) + ":" + std::to_string(mc.vocab_size) + ":" +
                              std::to_string(o.seq_len) + ":" + std::to_string(tc.steps) + ":" + std::to_string(tc.batch_size) +
                              ":" + std::to_string(tc.grad_accum) + ":" + std::to_string(tc.lr) + ":" + std::to_string(tc.seed) +
                              (world > 1 ? ":world" + std::to_string(world) : "") +
                              (tc.dtype != torch::kFloat32 ? ":" + model::torch_dtype_name(tc.dtype) : "");
  std::filesystem::create_directories(out_dir);
  // Opened at the first step rank 0 logs: a resumed run first drops the rows
  // written after its checkpoint, so each step is logged once.
  const std::string log_path = out_dir + "/train_log.jsonl";
  std::optional<io::JsonlWriter> log;
  report.result = train_loop(
      net, tc, out_dir, tokenizer_file, run_key,
      // Rank r takes micro-batch r of each group of `world`: together the
      // ranks cover what one process with a world-times-larger batch would.
      [&](std::int64_t step, int k) { return language_model_step(net, data, (step * tc.grad_accum + k) * world + rank, tc.batch_size, tc.seed); },
      [&](const TrainProgress& p) {
        if (rank == 0) {
          if (!log) {
            io::truncate_jsonl_at(log_path, "step", p.step);
            log.emplace(log_path, io::JsonlWriter::Mode::append);
          }
          log->write(nlohmann::json{{"step", p.step}, {"loss", p.loss}, {"lr", p.lr}, {"grad_norm", p.grad_norm},
                                    {"tokens_per_second", p.tokens_per_second}});
        }
        return on_progress ? on_progress(p) : true;
      },
      nullptr, o.parallel);
  return report;
}

}  // namespace steper::train
