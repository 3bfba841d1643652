// Fuzzes the tokenizer.json loader: any bytes as a tokenizer folder's
// tokenizer.json must load or give an InputError naming the file; a loaded
// tokenizer must encode and decode a text without crashing.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "steper/error.h"
#include "steper/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/steper-fuzz-tokenizer-" + std::to_string(::getpid());
  static const bool made = ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST;
  if (!made) return 0;
  if (FILE* f = std::fopen((dir + "/tokenizer.json").c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    auto tok = steper::text::load_tokenizer(dir);
    const std::vector<int> ids = tok->encode("Who directed Inception? <|endoftext|> Zürich, 1898.");
    (void)tok->decode(ids);
  } catch (const steper::InputError&) {
  }
  return 0;
}
