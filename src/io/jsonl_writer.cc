#include <cerrno>
#include <cstdio>
#include <cstring>

#include "steper/io.h"

namespace steper::io {

JsonlWriter::JsonlWriter(std::string path, Mode mode)
    : path_(std::move(path)), file_(mode == Mode::staged ? path_ + ".partial" : path_), staged_(mode == Mode::staged) {
  require_regular_or_absent(path_);
  out_.open(file_, std::ios::binary | (mode == Mode::append ? std::ios::app : std::ios::trunc));
  if (!out_) throw_cannot_write(file_, errno);
}

JsonlWriter::~JsonlWriter() {
  if (!staged_) return;
  out_.close();
  std::remove(file_.c_str());
}

void JsonlWriter::write(const json& record) { write_line(record.dump(-1, ' ', false, json::error_handler_t::replace)); }

void JsonlWriter::write_line(std::string_view line) {
  out_ << line << '\n';
  out_.flush();
  if (!out_) throw RuntimeError(file_ + ": write failed (disk full?) after " + std::to_string(written_) + " lines");
  ++written_;
}

void JsonlWriter::commit() {
  if (!staged_) throw std::logic_error("JsonlWriter::commit: " + path_ + " is not staged");
  out_.close();
  if (!out_) throw RuntimeError(file_ + ": write failed (disk full?)");
  rename(file_, path_);
  staged_ = false;
}

}  // namespace steper::io
