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

std::pair<torch::Tensor, torch::Tensor> rope_tables(const torch::Tensor& inv_freq, const torch::Tensor& positions) {
  torch::Tensor angles = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq.to(positions.device());  // [B,T,D/2]
  torch::Tensor emb = torch::cat({angles, angles}, -1);                                                   // [B,T,D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  torch::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  torch::Tensor rotated = torch::cat({-x2, x1}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace steper::model
