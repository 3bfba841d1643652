// Fuzzes the benchmark converters: any JSON value must convert or raise an
// InputError naming a field; a json::type_error or a crash is a bug.
#include "steper/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace steper::data;
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  for (Format f : {Format::ircot, Format::hotpotqa, Format::twowiki, Format::musique}) {
    try {
      convert_record(f, j);
    } catch (const steper::InputError&) {
    }
  }
  for (auto parse : {+[](const json& x) { parse_passage(x); }, +[](const json& x) { parse_question(x); },
                     +[](const json& x) { parse_trace(x); }}) {
    try {
      parse(j);
    } catch (const steper::InputError&) {
    }
  }
  return 0;
}
