// The local backend: a checkpoint folder run with the model core's batched
// generation. Prompts that do not fit the context are answered with an error
// completion instead of failing the whole batch, so one over-long question
// costs that question only.
#include <filesystem>

#include "steper/lm.h"

namespace steper::lm {

LocalModel::LocalModel(const std::string& dir, const LocalOptions& options)
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

std::vector<Completion> LocalModel::complete(const std::vector<std::string>& prompts, const CompletionOptions& options) {
  return complete(prompts, options, nullptr);
}

std::vector<Completion> LocalModel::complete(const std::vector<std::string>& prompts, const CompletionOptions& o,
                                             const std::function<void(std::size_t, const std::string&)>& on_text) {
  if (o.max_tokens < 1) throw InputError("max_tokens must be at least 1");
  std::vector<Completion> out(prompts.size());
  const text::Tokenizer& tok = *loaded_.tokenizer;
  const bool bos = tok.add_bos() && !o.chat_rendered;
  std::vector<std::string> fit;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const int n = static_cast<int>(tok.encode(prompts[i]).size()) + (bos ? 1 : 0);
    out[i].prompt_tokens = n;
    if (n >= context()) {
      out[i].finish = "error";
      out[i].error = "the prompt is " + std::to_string(n) + " tokens; the model's context is " + std::to_string(context());
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
  g.add_bos = o.chat_rendered ? 0 : -1;
  if (on_text) g.on_text = [&](std::size_t k, const std::string& t) { on_text(where[k], t); };
  std::vector<model::Generation> gens;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    model::GenerateStats stats;
    gens = model::generate(loaded_.model, tok, fit, g, &stats);
    totals_ += stats;
  }
  for (std::size_t k = 0; k < gens.size(); ++k) {
    Completion& c = out[where[k]];
    c.text = std::move(gens[k].text);
    c.finish = gens[k].finish;
    c.completion_tokens = static_cast<int>(gens[k].tokens.size());
  }
  return out;
}

model::GenerateStats LocalModel::totals() {
  std::lock_guard<std::mutex> lock(mutex_);
  return totals_;
}

}  // namespace steper::lm
