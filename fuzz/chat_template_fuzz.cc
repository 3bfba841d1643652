// Fuzzes the chat-template interpreter: any template text, compiled and
// rendered over a fixed conversation, must give a string or an InputError;
// never a crash, a hang (the interpreter bounds its work) or another error.
#include <string>

#include <nlohmann/json.hpp>

#include "steper/error.h"
#include "steper/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who directed it?"},
          {"role": "assistant", "content": "Nolan."}, {"role": "user", "content": [{"type": "text", "text": "And when?"}]}])");
  static const nlohmann::ordered_json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  try {
    steper::text::ChatTemplate t(std::string(reinterpret_cast<const char*>(data), size), special);
    steper::text::ChatOptions o;
    o.add_generation_prompt = size % 2 == 0;
    (void)t.render(messages, o);
  } catch (const steper::InputError&) {
  }
  return 0;
}
