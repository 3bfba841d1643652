// Batched generation. Prompts are left-padded so every row's next token is
// the last column; padded keys are masked out and positions count from each
// row's own first token, so a row's output does not depend on its batch.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>

#include "steper/model.h"

namespace steper::model {
namespace {

// Attention scores a prefill may hold at once (elements), to stay in cache.
constexpr std::int64_t kPrefillScores = 1 << 21;
// Shorter cached prefixes (a BOS, a word) are not worth taking a row out of
// its prefill group for.
constexpr std::int64_t kMinReuse = 4;

struct Row {
  std::size_t prompt;          // index into the caller's prompts
  std::vector<int> ids;        // prompt ids
  std::vector<int> out;        // generated ids
  int budget = 0;              // new tokens allowed
  bool done = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Temperatures below this are greedy, as in vLLM: dividing by 1e-300 gave
// infinite logits and a NaN distribution that multinomial refused.
constexpr double kGreedyBelow = 1e-5;

// Next token per row from logits [B,V]: argmax, or a temperature / top-p sample.
torch::Tensor pick(const torch::Tensor& logits, const GenerateOptions& o, at::Generator& gen) {
  if (o.temperature < kGreedyBelow) return logits.argmax(-1);
  torch::Tensor probs = torch::softmax(logits.to(torch::kCPU, torch::kFloat32) / o.temperature, -1);
  if (o.top_p < 1.0) {
    auto [sorted, order] = probs.sort(-1, /*descending=*/true);
    torch::Tensor before = sorted.cumsum(-1) - sorted;  // mass of the more likely tokens
    sorted.masked_fill_(before > o.top_p, 0);            // keeps at least the top token
    probs = torch::zeros_like(probs).scatter_(-1, order, sorted);
  }
  return torch::multinomial(probs, 1, false, gen).squeeze(-1).to(logits.device());
}

// The stop string that occurs first in `text`, as its position; npos if none.
std::size_t first_stop(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t best = std::string::npos;
  for (const auto& s : stops) {
    if (!s.empty()) best = std::min(best, text.find(s));
  }
  return best;
}

void run_batch(CausalLM& model, const text::Tokenizer& tok, std::vector<Row>& rows, const GenerateOptions& o,
               at::Generator& gen, std::vector<Generation>& results, GenerateStats& stats) {
  const torch::Device device = model->model->embed_tokens->weight.device();
  const torch::Dtype dtype = model->model->embed_tokens->weight.scalar_type();
  const auto B = static_cast<std::int64_t>(rows.size());
  std::int64_t P = 0, budget = 0;
  for (const auto& r : rows) {
    P = std::max<std::int64_t>(P, static_cast<std::int64_t>(r.ids.size()));
    budget = std::max<std::int64_t>(budget, r.budget);
  }
  // Prompt ids, positions and key validity, left-padded; pad id 0 is masked.
  torch::Tensor ids = torch::zeros({B, P}, torch::kLong), pos = torch::zeros({B, P}, torch::kLong);
  torch::Tensor valid = torch::zeros({B, P + budget}, torch::kBool);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& p = rows[static_cast<std::size_t>(b)].ids;
    const std::int64_t pad = P - static_cast<std::int64_t>(p.size());
    for (std::size_t t = 0; t < p.size(); ++t) {
      ids[b][pad + static_cast<std::int64_t>(t)] = p[t];
      pos[b][pad + static_cast<std::int64_t>(t)] = static_cast<std::int64_t>(t);
    }
    valid[b].narrow(0, pad, static_cast<std::int64_t>(p.size())).fill_(true);
    valid[b].narrow(0, P, budget).fill_(true);
  }
  ids = ids.to(device);
  pos = pos.to(device);
  valid = valid.to(device);
  torch::Tensor next_pos = pos.select(1, P - 1) + 1;  // [B]
  // Without padding (one prompt, or equal lengths) no key is ever masked.
  bool padded = false;
  for (const auto& r : rows) padded = padded || static_cast<std::int64_t>(r.ids.size()) != P;
  std::vector<std::size_t> active(rows.size());
  for (std::size_t i = 0; i < active.size(); ++i) active[i] = i;

  KVCache cache(model->config, B, P + budget, device, dtype);
  // Prefill. Rows end at slot P (left padding), but padding is not computed:
  // a row whose prompt starts with a cached prefix copies that prefix's keys
  // and values and runs only the rest, alone; other rows run in groups of
  // nearly equal length (rows are sorted by length), each group from the
  // slot where its longest row starts. A group's attention scores are
  // [rows,H,len,len]; capped, so that they stay in cache (batching 32
  // prompts of 750 tokens at once was slower than one at a time).
  std::vector<std::int64_t> reuse(rows.size(), 0);
  std::vector<std::vector<torch::Tensor>> reuse_k(rows.size()), reuse_v(rows.size());
  if (o.prefix_cache) {
    for (std::size_t b = 0; b < rows.size(); ++b) {
      const auto n = static_cast<std::int64_t>(rows[b].ids.size());
      reuse[b] = o.prefix_cache->match(rows[b].ids, n - 1, &reuse_k[b], &reuse_v[b]);
      if (reuse[b] < kMinReuse) reuse[b] = 0;
      stats.reused_tokens += reuse[b];
    }
  }
  const auto prefill_start = std::chrono::steady_clock::now();
  auto length = [&](std::int64_t b) { return static_cast<std::int64_t>(rows[static_cast<std::size_t>(b)].ids.size()); };
  const std::int64_t H = model->config.num_attention_heads;
  std::vector<torch::Tensor> parts;
  for (std::int64_t b = 0; b < B;) {
    std::int64_t n = 1, sum = length(b);
    while (reuse[static_cast<std::size_t>(b)] == 0 && b + n < B && reuse[static_cast<std::size_t>(b + n)] == 0) {
      const std::int64_t longest = length(b + n);
      if (longest * (n + 1) * 10 > (sum + longest) * 11 || (n + 1) * H * longest * longest > kPrefillScores) break;
      sum += longest;
      ++n;
    }
    const std::int64_t longest = length(b + n - 1), first = reuse[static_cast<std::size_t>(b)];
    KVCache view = cache.window(b, n, P - longest);
    if (first > 0) {
      for (std::size_t l = 0; l < view.layers(); ++l) view.append(l, reuse_k[static_cast<std::size_t>(b)][l], reuse_v[static_cast<std::size_t>(b)][l]);
      view.advance(first);
    }
    const bool group_padded = length(b) != longest;
    const std::int64_t from = P - longest + first, T = longest - first;
    parts.push_back(model->forward(ids.narrow(0, b, n).narrow(1, from, T), pos.narrow(0, b, n).narrow(1, from, T),
                                   group_padded ? valid.narrow(0, b, n).narrow(1, P - longest, longest) : torch::Tensor(), &view)
                        .select(1, T - 1));
    if (o.prefix_cache) {
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t len = length(b + i);
        std::vector<torch::Tensor> k, v;
        for (std::size_t l = 0; l < view.layers(); ++l) {
          k.push_back(view.keys(l).narrow(0, i, 1).narrow(2, longest - len, len));
          v.push_back(view.values(l).narrow(0, i, 1).narrow(2, longest - len, len));
        }
        o.prefix_cache->insert(rows[static_cast<std::size_t>(b + i)].ids, k, v);
      }
    }
    b += n;
  }
  cache.advance(P);
  stats.prefill_seconds += seconds_since(prefill_start);
  torch::Tensor logits = parts.size() == 1 ? parts[0] : torch::cat(parts, 0);  // [B,V]
  // Any end-of-sequence id ends a row: the tokenizer's and every one the
  // model's config.json and generation_config.json list.
  std::vector<int> eos_ids = model->config.eos_token_ids;
  if (tok.eos_id() >= 0) eos_ids.push_back(tok.eos_id());
  auto is_eos = [&](int token) { return std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end(); };
  for (std::int64_t step = 0; step < budget && !active.empty(); ++step) {
    torch::Tensor next = pick(logits, o, gen).to(torch::kCPU);
    std::vector<std::int64_t> keep;
    for (std::size_t a = 0; a < active.size(); ++a) {
      Row& r = rows[active[a]];
      int token = static_cast<int>(next[static_cast<std::int64_t>(a)].item<std::int64_t>());
      r.out.push_back(token);
      ++stats.new_tokens;
      Generation& g = results[r.prompt];
      if (o.stop_at_eos && is_eos(token)) {
        g.finish = "eos";
        r.done = true;
      } else if (o.on_text || !o.stop.empty()) {
        const std::string so_far = tok.decode(r.out);
        if (o.on_text) o.on_text(r.prompt, so_far);
        if (first_stop(so_far, o.stop) != std::string::npos) {
          g.finish = "stop";
          r.done = true;
        }
      }
      if (!r.done && static_cast<int>(r.out.size()) >= r.budget) {
        g.finish = "length";
        r.done = true;
      }
      if (!r.done) keep.push_back(static_cast<std::int64_t>(a));
    }
    if (keep.empty() || step + 1 == budget) break;
    if (keep.size() < active.size()) {  // finished rows leave the batch
      torch::Tensor index = torch::tensor(keep, torch::kLong).to(device);
      cache.select_rows(index);
      valid = valid.index_select(0, index);
      next_pos = next_pos.index_select(0, index);
      next = next.index_select(0, index.to(torch::kCPU));
      std::vector<std::size_t> still;
      for (auto k : keep) still.push_back(active[static_cast<std::size_t>(k)]);
      active = std::move(still);
    }
    const std::int64_t S = cache.length() + 1;
    logits = model->forward(next.to(device).unsqueeze(1), next_pos.unsqueeze(1), padded ? valid.narrow(1, 0, S) : torch::Tensor(),
                            &cache)
                 .select(1, 0);
    ++stats.decode_steps;
    next_pos = next_pos + 1;
  }
  for (auto& r : rows) {
    Generation& g = results[r.prompt];
    std::vector<int> shown = r.out;
    if (g.finish == "eos" && !shown.empty()) shown.pop_back();
    g.text = tok.decode(shown);
    if (std::size_t cut = first_stop(g.text, o.stop); cut != std::string::npos) g.text.resize(cut);
    g.tokens = std::move(r.out);
  }
}

}  // namespace

GenerateStats& GenerateStats::operator+=(const GenerateStats& o) {
  prompt_tokens += o.prompt_tokens;
  new_tokens += o.new_tokens;
  reused_tokens += o.reused_tokens;
  decode_steps += o.decode_steps;
  seconds += o.seconds;
  prefill_seconds += o.prefill_seconds;
  return *this;
}

std::vector<int> encode_prompt(const text::Tokenizer& tok, const std::string& prompt, int add_bos) {
  std::vector<int> ids;
  if (tok.bos_id() >= 0 && (add_bos == 1 || (add_bos == -1 && tok.add_bos()))) ids.push_back(tok.bos_id());
  for (int id : tok.encode(prompt)) ids.push_back(id);
  return ids;
}

std::vector<Generation> generate(CausalLM& model, const text::Tokenizer& tok, const std::vector<std::string>& prompts,
                                 const GenerateOptions& o, GenerateStats* stats_out) {
  std::vector<std::vector<int>> ids;
  ids.reserve(prompts.size());
  for (const auto& p : prompts) ids.push_back(encode_prompt(tok, p, o.add_bos));
  return generate_tokens(model, tok, ids, o, stats_out);
}

std::vector<Generation> generate_tokens(CausalLM& model, const text::Tokenizer& tok, const std::vector<std::vector<int>>& prompts,
                                        const GenerateOptions& o, GenerateStats* stats_out) {
  if (o.max_new_tokens < 1) throw InputError("max_new_tokens must be at least 1");
  if (o.top_p <= 0 || o.top_p > 1) throw InputError("top_p must be in (0, 1]");
  if (o.batch_size < 1) throw InputError("batch size must be at least 1");
  c10::InferenceMode inference;  // no autograd bookkeeping at all, unlike NoGradGuard
  const bool was_training = model->is_training();
  model->eval();
  const auto start = std::chrono::steady_clock::now();
  const int context = model->config.max_position_embeddings;
  const std::int64_t vocab = model->config.vocab_size;
  std::vector<Generation> results(prompts.size());
  GenerateStats stats;
  at::Generator gen = at::detail::createCPUGenerator(o.seed);

  std::vector<Row> rows;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Row r;
    r.prompt = i;
    r.ids = prompts[i];
    if (r.ids.empty()) r.ids.push_back(tok.eos_id() >= 0 ? tok.eos_id() : 0);  // something to condition on
    for (int id : r.ids) {
      if (id < 0 || id >= vocab) {
        throw InputError("prompt " + std::to_string(i) + " holds token id " + std::to_string(id) + "; the model's ids are 0 to " +
                         std::to_string(vocab - 1));
      }
    }
    const int n = static_cast<int>(r.ids.size());
    if (n >= context) {
      throw InputError("prompt " + std::to_string(i) + " is " + std::to_string(n) + " tokens; the model's context is " +
                       std::to_string(context) + " (max_position_embeddings)");
    }
    r.budget = std::min(o.max_new_tokens, context - n);
    results[i].prompt_tokens = n;
    stats.prompt_tokens += n;
    rows.push_back(std::move(r));
  }
  // Similar lengths together: less padding per batch.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ids.size() < b.ids.size(); });
  for (std::size_t begin = 0; begin < rows.size(); begin += static_cast<std::size_t>(o.batch_size)) {
    std::size_t end = std::min(rows.size(), begin + static_cast<std::size_t>(o.batch_size));
    std::vector<Row> batch(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(begin)),
                           std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(end)));
    run_batch(model, tok, batch, o, gen, results, stats);
  }
  stats.seconds = seconds_since(start);
  if (stats_out) *stats_out = stats;
  if (was_training) model->train();
  return results;
}

}  // namespace steper::model
