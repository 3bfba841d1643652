// LoRA: low-rank adapters on the projections, trained while the weights
// stay frozen, and folded into the weights when training ends.
#include <algorithm>
#include <cmath>

#include "steper/error.h"
#include "steper/model.h"

namespace steper::model {
namespace {

const std::vector<std::string> kAttention{"q_proj", "k_proj", "v_proj", "o_proj"};
const std::vector<std::string> kMlp{"gate_proj", "up_proj", "down_proj"};

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

torch::nn::Linear& projection(DecoderLayer& layer, const std::string& name) {
  auto& a = *layer->self_attn;
  auto& m = *layer->mlp;
  if (name == "q_proj") return a.q_proj;
  if (name == "k_proj") return a.k_proj;
  if (name == "v_proj") return a.v_proj;
  if (name == "o_proj") return a.o_proj;
  if (name == "gate_proj") return m.gate_proj;
  if (name == "up_proj") return m.up_proj;
  return m.down_proj;
}

std::map<std::string, LoraAdapter>& adapters(DecoderLayer& layer, const std::string& name) {
  return contains(kAttention, name) ? layer->self_attn->lora : layer->mlp->lora;
}

// Calls f(layer index, layer, projection name, adapter) for every adapter.
template <typename F>
void each_adapter(CausalLM& model, F f) {
  for (std::size_t i = 0; i < model->model->layers->size(); ++i) {
    auto layer = model->model->layers->ptr<DecoderLayerImpl>(i);
    DecoderLayer l(layer);
    for (auto* group : {&layer->self_attn->lora, &layer->mlp->lora}) {
      for (auto& [name, adapter] : *group) f(i, l, name, adapter);
    }
  }
}

}  // namespace

torch::Tensor project(torch::nn::Linear& l, const std::map<std::string, LoraAdapter>& lora, const char* name,
                      const torch::Tensor& x) {
  torch::Tensor y = dense(x, l->weight, l->bias);
  if (lora.empty()) return y;
  auto it = lora.find(name);
  if (it == lora.end()) return y;
  const LoraAdapter& ad = it->second;
  return y + torch::nn::functional::linear(torch::nn::functional::linear(x, ad.a), ad.b) * ad.scale;
}

void add_lora(CausalLM& model, const LoraConfig& c, std::uint64_t seed) {
  if (c.rank < 1) throw InputError("LoRA rank must be >= 1, got " + std::to_string(c.rank));
  if (c.targets.empty()) throw InputError("LoRA needs at least one target projection");
  for (const auto& t : c.targets) {
    if (!contains(kAttention, t) && !contains(kMlp, t)) {
      throw InputError("unknown LoRA target '" + t + "' (targets: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    }
  }
  if (has_lora(model)) throw InputError("the model already has LoRA adapters");
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  at::Generator gen = at::detail::createCPUGenerator(seed * 7919 + 17);
  for (std::size_t i = 0; i < model->model->layers->size(); ++i) {
    DecoderLayer layer(model->model->layers->ptr<DecoderLayerImpl>(i));
    for (const auto& t : c.targets) {
      const torch::Tensor& w = projection(layer, t)->weight;
      const std::int64_t out = w.size(0), in = w.size(1);
      // A as Kaiming-uniform (PEFT's choice), drawn on the CPU for
      // reproducibility across devices; B zero.
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      torch::Tensor a = (torch::rand({c.rank, in}, gen) * 2 - 1) * bound;
      LoraAdapter ad;
      ad.a = a.to(w.device(), w.scalar_type()).set_requires_grad(true);
      ad.b = torch::zeros({out, c.rank}, w.options()).set_requires_grad(true);
      ad.scale = c.alpha / c.rank;
      adapters(layer, t)[t] = ad;
    }
  }
}

bool has_lora(CausalLM& model) {
  bool any = false;
  each_adapter(model, [&](std::size_t, DecoderLayer&, const std::string&, LoraAdapter&) { any = true; });
  return any;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(CausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  each_adapter(model, [&](std::size_t i, DecoderLayer&, const std::string& name, LoraAdapter& ad) {
    const std::string base = "model.layers." + std::to_string(i) + (contains(kAttention, name) ? ".self_attn." : ".mlp.") + name;
    out.emplace_back(base + ".lora_A.weight", ad.a);
    out.emplace_back(base + ".lora_B.weight", ad.b);
  });
  return out;
}

void merge_lora(CausalLM& model) {
  {
    torch::NoGradGuard no_grad;
    each_adapter(model, [&](std::size_t, DecoderLayer& layer, const std::string& name, LoraAdapter& ad) {
      torch::Tensor& w = projection(layer, name)->weight;
      w.add_(torch::matmul(ad.b.to(torch::kFloat32), ad.a.to(torch::kFloat32)).mul_(ad.scale).to(w.scalar_type()));
    });
  }
  for (std::size_t i = 0; i < model->model->layers->size(); ++i) {
    auto layer = model->model->layers->ptr<DecoderLayerImpl>(i);
    layer->self_attn->lora.clear();
    layer->mlp->lora.clear();
  }
  for (auto& p : model->parameters()) p.set_requires_grad(true);
}

}  // namespace steper::model
