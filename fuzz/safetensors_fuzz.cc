// Fuzzes the safetensors reader: any bytes must open as a valid file (whose
// tensors then read in bounds) or be refused with an InputError.
#include <unistd.h>

#include <string>

#include "steper/io.h"
#include "steper/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/steper-fuzz-st-" + std::to_string(::getpid());
  steper::io::write_atomic(path, {reinterpret_cast<const char*>(data), size});
  try {
    steper::model::SafetensorsFile file(path);
    volatile unsigned sum = 0;
    for (const auto& t : file.tensors()) {
      for (std::size_t i = 0; i < t.bytes; ++i) sum = sum + static_cast<unsigned>(t.data[i]);
    }
  } catch (const steper::InputError&) {
  }
  return 0;
}
