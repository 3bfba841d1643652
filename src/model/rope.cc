#include "rope.h"

#include <cmath>

namespace steper::model {

// Llama-3.1 keeps high frequencies (wavelength below L / high_freq_factor),
// divides low ones (wavelength above L / low_freq_factor) by `factor`, and
// blends in between; L is the original context length.
torch::Tensor rope_inverse_frequencies(const ModelConfig& c) {
  const int D = c.head_dim();
  std::vector<float> f(static_cast<std::size_t>(D / 2));
  for (int i = 0; i < D / 2; ++i) {
    double freq = 1.0 / std::pow(c.rope_theta, 2.0 * i / D);
    if (c.rope_scaling_factor > 0) {
      const double L = c.rope_original_max_position, wavelen = 2 * M_PI / freq;
      const double low_wavelen = L / c.rope_low_freq_factor, high_wavelen = L / c.rope_high_freq_factor;
      if (wavelen > low_wavelen) {
        freq /= c.rope_scaling_factor;
      } else if (wavelen >= high_wavelen) {
        double smooth = (L / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        freq = (1 - smooth) * freq / c.rope_scaling_factor + smooth * freq;
      }
    }
    f[static_cast<std::size_t>(i)] = static_cast<float>(freq);
  }
  return torch::tensor(f);
}

// The sine comes back with its first half negated, so that
// rotate_half(x) * sin == roll(x, D/2) * signed_sin: one pass instead of a
// negation and a concatenation.
std::pair<torch::Tensor, torch::Tensor> rope_tables(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                    std::int64_t needed, std::pair<torch::Tensor, torch::Tensor>& cache,
                                                    torch::Dtype dtype) {
  auto& [cos, sin] = cache;
  if (!cos.defined() || cos.size(0) < needed || cos.device() != positions.device() || cos.scalar_type() != dtype) {
    const std::int64_t P = std::max<std::int64_t>(needed, cos.defined() ? 2 * cos.size(0) : 256);
    torch::Tensor pos = torch::arange(P, torch::TensorOptions().dtype(torch::kFloat32).device(positions.device()));
    torch::Tensor angles = pos.unsqueeze(-1) * inv_freq.to(positions.device(), torch::kFloat32);  // [P,D/2]
    torch::Tensor s = angles.sin();
    cos = torch::cat({angles, angles}, -1).cos().to(dtype);
    sin = torch::cat({-s, s}, -1).to(dtype);
  }
  const auto shape = positions.sizes().vec();
  std::vector<std::int64_t> out_shape(shape.begin(), shape.end());
  out_shape.push_back(cos.size(1));
  torch::Tensor flat = positions.reshape({-1});
  return {cos.index_select(0, flat).view(out_shape), sin.index_select(0, flat).view(out_shape)};
}

}  // namespace steper::model
