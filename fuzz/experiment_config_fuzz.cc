// Fuzzes the experiment config reader: any JSON value must give a config
// or an InputError naming the field; a json exception or a crash is a bug.
#include "steper/error.h"
#include "steper/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using steper::data::json;
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    steper::pipeline::config_from_json(j, steper::pipeline::preset("tiny"));
  } catch (const steper::InputError&) {
  }
  return 0;
}
