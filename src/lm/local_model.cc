// The local backend: a checkpoint folder run with the model core's batched
// generation. Prompts that do not fit the context are answered with an error
// completion instead of failing the whole batch, so one over-long question
// costs that question only.
#include <algorithm>
#include <filesystem>
#include <mutex>

#include "steper/lm.h"
#include "steper/model.h"

namespace steper::lm {
namespace {

class CheckpointModel final : public LocalModel {
 public:
  CheckpointModel(const std::string& dir, const LocalOptions& options);
  std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options) override {
    return complete_streaming(prompts, options, nullptr);
  }
  std::vector<Completion> complete_streaming(const std::vector<std::string>& prompts, const CompletionOptions& options,
                                             const OnText& on_text) override;
  std::vector<Completion> complete_tokens(const std::vector<std::vector<int>>& prompts, const CompletionOptions& options,
                                          const OnText& on_text) override;
  std::vector<TokenLogprob> score(const std::vector<int>& ids, int top_k) override;
  std::string name() const override { return name_; }
  int parallelism() const override { return options_.batch_size; }
  int context() const override { return loaded_.config.max_position_embeddings; }
  std::int64_t parameters() const override { return loaded_.config.parameter_count(); }
  const text::Tokenizer& tokenizer() const override { return *loaded_.tokenizer; }
  std::shared_ptr<const text::ChatTemplate> chat_template() const override { return chat_template_; }
  GenerationTotals totals() override;

 private:
  model::LoadedModel loaded_;
  LocalOptions options_;
  std::string name_;
  std::mutex mutex_;  // guards the model and the prefix cache
  std::unique_ptr<model::PrefixCache> prefix_;
  model::GenerateStats totals_;
  std::shared_ptr<const text::ChatTemplate> chat_template_;
};

CheckpointModel::CheckpointModel(const std::string& dir, const LocalOptions& options)
    : loaded_(model::load_model(dir, model::parse_device(options.device), model::parse_dtype_name(options.dtype))),
      options_(options),
      name_(std::filesystem::path(dir).lexically_normal().filename().string()) {
  if (!loaded_.tokenizer) throw InputError(dir + " has no tokenizer.json or tokenizer.model");
  if (options.batch_size < 1) throw InputError("batch size must be at least 1");
  if (name_.empty()) name_ = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
  if (options.prefix_cache_mb < 0) throw InputError("prefix cache size must not be negative");
  if (!options.chat_template.empty()) {
    chat_template_ = std::make_shared<text::ChatTemplate>(text::load_chat_template(options.chat_template));
  } else if (text::has_chat_template(dir)) {
    chat_template_ = std::make_shared<text::ChatTemplate>(text::load_chat_template(dir));
  }
  if (options.prefix_cache_mb > 0) {
    const model::ModelConfig& c = loaded_.config;
    const auto elem = static_cast<std::int64_t>(torch::elementSize(loaded_.model->model->embed_tokens->weight.scalar_type()));
    const std::int64_t per_token = 2LL * c.num_hidden_layers * c.num_key_value_heads * c.head_dim() * elem;
    prefix_ = std::make_unique<model::PrefixCache>(static_cast<std::int64_t>(options.prefix_cache_mb) * (1 << 20) / per_token);
  }
}

std::vector<Completion> CheckpointModel::complete_streaming(const std::vector<std::string>& prompts, const CompletionOptions& o,
                                                            const OnText& on_text) {
  std::vector<std::vector<int>> ids;
  ids.reserve(prompts.size());
  for (const auto& p : prompts) ids.push_back(prompt_ids(p, o.chat_rendered));
  return complete_tokens(ids, o, on_text);
}

std::vector<Completion> CheckpointModel::complete_tokens(const std::vector<std::vector<int>>& prompts, const CompletionOptions& o,
                                                         const OnText& on_text) {
  if (o.max_tokens < 1) throw InputError("max_tokens must be at least 1");
  std::vector<Completion> out(prompts.size());
  std::vector<std::vector<int>> fit;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const int n = static_cast<int>(prompts[i].size());
    out[i].prompt_tokens = n;
    out[i].prompt_ids = prompts[i];
    if (n >= context()) {
      out[i].finish = "error";
      out[i].error = "the prompt is " + std::to_string(n) + " tokens; the model's context is " + std::to_string(context());
      continue;
    }
    // A tokenizer may know more ids than the model has embeddings for.
    const auto outside = std::find_if(prompts[i].begin(), prompts[i].end(), [&](int id) { return id < 0 || id >= loaded_.config.vocab_size; });
    if (outside != prompts[i].end()) {
      out[i].finish = "error";
      out[i].error = "the prompt holds token id " + std::to_string(*outside) + "; the model's ids are 0 to " +
                     std::to_string(loaded_.config.vocab_size - 1);
      continue;
    }
    fit.push_back(prompts[i]);
    where.push_back(i);
  }
  if (fit.empty()) return out;
  model::GenerateOptions g;
  g.max_new_tokens = o.max_tokens;
  g.temperature = o.temperature;
  g.top_p = o.top_p;
  g.seed = o.seed;
  g.stop = o.stop;
  g.batch_size = options_.batch_size;
  g.prefix_cache = prefix_.get();
  if (on_text) g.on_text = [&](std::size_t k, const std::string& t) { on_text(where[k], t); };
  std::vector<model::Generation> gens;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    model::GenerateStats stats;
    gens = model::generate_tokens(loaded_.model, *loaded_.tokenizer, fit, g, &stats);
    totals_ += stats;
  }
  for (std::size_t k = 0; k < gens.size(); ++k) {
    Completion& c = out[where[k]];
    c.text = std::move(gens[k].text);
    c.finish = gens[k].finish;
    c.completion_tokens = static_cast<int>(gens[k].tokens.size());
    c.ids = std::move(gens[k].tokens);
  }
  return out;
}

std::vector<TokenLogprob> CheckpointModel::score(const std::vector<int>& ids, int top_k) {
  model::SequenceScores s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s = model::score_sequence(loaded_.model, ids, top_k);
  }
  std::vector<TokenLogprob> out(ids.size() > 0 ? ids.size() - 1 : 0);
  const auto lp = s.logprobs.accessor<float, 1>();
  const auto top = s.top_logprobs.accessor<float, 2>();
  const auto top_ids = s.top_ids.accessor<std::int64_t, 2>();
  for (std::size_t t = 0; t < out.size(); ++t) {
    const auto i = static_cast<std::int64_t>(t);
    out[t].id = ids[t + 1];
    out[t].logprob = lp[i];
    for (std::int64_t j = 0; j < s.top_ids.size(1); ++j) out[t].top.emplace_back(static_cast<int>(top_ids[i][j]), top[i][j]);
  }
  return out;
}

GenerationTotals CheckpointModel::totals() {
  std::lock_guard<std::mutex> lock(mutex_);
  GenerationTotals t;
  t.prompt_tokens = totals_.prompt_tokens;
  t.new_tokens = totals_.new_tokens;
  t.reused_tokens = totals_.reused_tokens;
  t.decode_steps = totals_.decode_steps;
  t.seconds = totals_.seconds;
  t.prefill_seconds = totals_.prefill_seconds;
  return t;
}

}  // namespace

std::vector<int> LocalModel::prompt_ids(const std::string& prompt, bool chat_rendered) const {
  return model::encode_prompt(tokenizer(), prompt, chat_rendered ? 0 : -1);
}

std::unique_ptr<LocalModel> open_local(const std::string& dir, const LocalOptions& options) {
  return std::make_unique<CheckpointModel>(dir, options);
}

std::string local_backend_warning() { return model::blas_warning(); }

}  // namespace steper::lm
