#include "steper/io.h"
#include "steper/text.h"

namespace steper::text {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const std::string file = find_tokenizer_file(path);
  return ends_with(file, ".json") ? load_bpe_tokenizer(file) : load_sentencepiece_tokenizer(file);
}

std::string find_tokenizer_file(const std::string& path) {
  if (io::is_file(path)) return path;
  for (const char* name : {"/tokenizer.json", "/tokenizer.model"}) {
    if (io::is_file(path + name)) return path + name;
  }
  throw InputError("no tokenizer at '" + path + "': expected tokenizer.json or tokenizer.model there" +
                   "\n  hint: `steper tokenizer train --corpus TEXTS.jsonl --out DIR` makes one");
}

}  // namespace steper::text
