// Fuzzes the streaming JSON Lines / JSON array splitter: any bytes must give
// records or an InputError, never a crash, a hang or another exception.
#include <unistd.h>

#include <string>

#include "steper/data.h"
#include "steper/io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/steper-fuzz-records-" + std::to_string(::getpid());
  steper::io::write_atomic(path, {reinterpret_cast<const char*>(data), size});
  try {
    steper::data::JsonRecords records(path);
    steper::data::json j;
    for (int errors = 0; errors < 1000;) {
      try {
        if (!records.next(j)) break;
      } catch (const steper::InputError&) {
        ++errors;
        if (records.is_array()) break;  // the array scanner cannot resync
      }
    }
  } catch (const steper::InputError&) {
  }
  return 0;
}
