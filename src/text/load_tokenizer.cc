#include <sys/stat.h>

#include "steper/text.h"

namespace steper::text {
namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (is_file(path)) {
    if (ends_with(path, ".json")) return load_bpe_tokenizer(path);
    return load_sentencepiece_tokenizer(path);
  }
  if (is_file(path + "/tokenizer.json")) return load_bpe_tokenizer(path + "/tokenizer.json");
  if (is_file(path + "/tokenizer.model")) return load_sentencepiece_tokenizer(path + "/tokenizer.model");
  throw InputError("no tokenizer at '" + path + "': expected tokenizer.json or tokenizer.model there" +
                   "\n  hint: `steper tokenizer train --corpus TEXTS.jsonl --out DIR` makes one");
}

}  // namespace steper::text
