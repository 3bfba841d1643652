// Fuzzes byte-level BPE on GPT-2's real vocabulary: any bytes, valid UTF-8
// or not, must encode to in-vocabulary ids that decode to the same bytes.
#include <cstdlib>
#include <memory>

#include "steper/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<steper::text::Tokenizer> tok = steper::text::load_tokenizer(STEPER_GPT2_TOKENIZER);
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int> ids = tok->encode(text);
  for (int id : ids) {
    if (id < 0 || id >= tok->vocab_size()) std::abort();
  }
  if (tok->decode(ids) != text) std::abort();
  return 0;
}
