// Fuzzes config.json reading: any bytes must give a valid ModelConfig or an
// InputError naming the field; never a crash or a wrapped number.
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "steper/error.h"
#include "steper/io.h"
#include "steper/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/steper-fuzz-config-" + std::to_string(::getpid()) + ".json";
  steper::io::write_atomic(path, {reinterpret_cast<const char*>(data), size});
  try {
    const steper::model::ModelConfig c = steper::model::read_model_config(path);
    c.validate();  // what read accepts must be a model steper can build
    if (c.head_dim() <= 0 || c.parameter_count() <= 0) std::abort();
  } catch (const steper::InputError&) {
  }
  return 0;
}
