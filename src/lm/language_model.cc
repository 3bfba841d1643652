// What every backend shares: streaming for those that cannot stream.
#include "steper/lm.h"

namespace steper::lm {

std::vector<Completion> LanguageModel::complete_streaming(const std::vector<std::string>& prompts, const CompletionOptions& options,
                                                          const OnText& on_text) {
  std::vector<Completion> out = complete(prompts, options);
  if (on_text) {
    for (std::size_t i = 0; i < out.size(); ++i) on_text(i, out[i].text);
  }
  return out;
}

}  // namespace steper::lm
