#include "steper/model.h"

namespace steper::model {

KVCache::KVCache(const ModelConfig& c, std::int64_t batch, std::int64_t capacity, torch::Device device, torch::Dtype dtype)
    : capacity_(capacity) {
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    k_.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim()}, opts));
    v_.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim()}, opts));
  }
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(std::size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  const std::int64_t T = k.size(2);
  k_[layer].narrow(2, length_, T).copy_(k);
  v_[layer].narrow(2, length_, T).copy_(v);
  return {k_[layer].narrow(2, 0, length_ + T), v_[layer].narrow(2, 0, length_ + T)};
}

void KVCache::advance(std::int64_t tokens) { length_ += tokens; }

void KVCache::select_rows(const torch::Tensor& index) {
  for (auto& t : k_) t = t.index_select(0, index);
  for (auto& t : v_) t = t.index_select(0, index);
}

KVCache KVCache::window(std::int64_t begin, std::int64_t n, std::int64_t slot) {
  KVCache view;
  for (auto& t : k_) view.k_.push_back(t.narrow(0, begin, n).narrow(2, slot, capacity_ - slot));
  for (auto& t : v_) view.v_.push_back(t.narrow(0, begin, n).narrow(2, slot, capacity_ - slot));
  view.capacity_ = capacity_ - slot;
  return view;
}

}  // namespace steper::model
