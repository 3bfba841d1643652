// The small Llama configuration the model and training tests share: GQA
// (4 heads, 2 key/value heads), two layers, a 50-token vocabulary.
#pragma once

#include "steper/model_config.h"

namespace steper::testing {

inline model::ModelConfig small_model_config() {
  model::ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace steper::testing
