#include <cerrno>
#include <cstring>

#include "steper/data.h"

namespace steper::data {

JsonlWriter::JsonlWriter(std::string path, Mode mode) : path_(std::move(path)) {
  out_.open(path_, std::ios::binary | (mode == Mode::append ? std::ios::app : std::ios::trunc));
  if (!out_) throw RuntimeError(path_ + ": cannot open for writing: " + std::strerror(errno));
}

void JsonlWriter::write(const json& record) {
  // dump() with replace: a stray invalid UTF-8 byte in outside data becomes
  // U+FFFD instead of aborting a long job.
  out_ << record.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  out_.flush();
  if (!out_) throw RuntimeError(path_ + ": write failed (disk full?) after " + std::to_string(written_) + " records");
  ++written_;
}

}  // namespace steper::data
