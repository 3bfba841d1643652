// Log-probabilities of given tokens under the model: what an evaluation
// harness asks for (a continuation's likelihood, whether it is the greedy
// one) and what /v1/completions returns with logprobs and echo.
#include "steper/model.h"

namespace steper::model {

// Rows of the [T,V] log-softmax computed at once: a 2048-token prompt of a
// 128k-vocabulary model would otherwise take 1 GiB of float32 beside the logits.
constexpr std::int64_t kRowsAtOnce = 256;

SequenceScores score_sequence(CausalLM& model, const std::vector<int>& ids, int top_k) {
  if (ids.empty()) throw InputError("cannot score an empty sequence");
  if (top_k < 0) throw InputError("top_k must not be negative");
  for (int id : ids) {
    if (id < 0 || id >= model->config.vocab_size) {
      throw InputError("token id " + std::to_string(id) + " is outside the vocabulary (0 to " +
                       std::to_string(model->config.vocab_size - 1) + ")");
    }
  }
  const auto T = static_cast<std::int64_t>(ids.size());
  if (T > model->config.max_position_embeddings) {
    throw InputError("the sequence is " + std::to_string(T) + " tokens; the model's context is " +
                     std::to_string(model->config.max_position_embeddings));
  }
  c10::InferenceMode inference;
  const bool was_training = model->is_training();
  model->eval();
  const torch::Device device = model->model->embed_tokens->weight.device();
  std::vector<std::int64_t> wide(ids.begin(), ids.end());
  torch::Tensor input = torch::tensor(wide, torch::kLong).to(device).unsqueeze(0);
  torch::Tensor logits = model->forward(input).squeeze(0);  // [T,V]; row t predicts token t+1
  const std::int64_t k = std::min<std::int64_t>(top_k, logits.size(1));
  SequenceScores out;
  out.logprobs = torch::empty({T - 1}, torch::kFloat32);
  out.top_logprobs = torch::empty({T - 1, k}, torch::kFloat32);
  out.top_ids = torch::empty({T - 1, k}, torch::kLong);
  torch::Tensor targets = input.squeeze(0).narrow(0, 1, T - 1);
  for (std::int64_t from = 0; from < T - 1; from += kRowsAtOnce) {
    const std::int64_t n = std::min(kRowsAtOnce, T - 1 - from);
    torch::Tensor logp = torch::log_softmax(logits.narrow(0, from, n).to(torch::kFloat32), -1);
    out.logprobs.narrow(0, from, n).copy_(logp.gather(1, targets.narrow(0, from, n).unsqueeze(1)).squeeze(1));
    if (k > 0) {
      auto [values, indices] = logp.topk(k, -1);
      out.top_logprobs.narrow(0, from, n).copy_(values);
      out.top_ids.narrow(0, from, n).copy_(indices);
    }
  }
  if (was_training) model->train();
  return out;
}

}  // namespace steper::model
