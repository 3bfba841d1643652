// Fuzzes the tokenizer.json loader: any bytes as a tokenizer folder's
// tokenizer.json must load or give an InputError naming the file; a loaded
// tokenizer must encode and decode a text without crashing.
#include <unistd.h>

#include <string>

#include "steper/error.h"
#include "steper/io.h"
#include "steper/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/steper-fuzz-tokenizer-" + std::to_string(::getpid());
  steper::io::make_directories(dir);
  steper::io::write_atomic(dir + "/tokenizer.json", {reinterpret_cast<const char*>(data), size});
  try {
    auto tok = steper::text::load_tokenizer(dir);
    const std::vector<int> ids = tok->encode("Who directed Inception? <|endoftext|> Zürich, 1898.");
    (void)tok->decode(ids);
  } catch (const steper::InputError&) {
  }
  return 0;
}
