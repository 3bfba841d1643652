#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "steper/io.h"

namespace steper::io {

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw RuntimeError(path + ": read failed");
  return s.str();
}

namespace {

template <typename Json>
Json parse_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

json read_json(const std::string& path) { return parse_file<json>(path); }
nlohmann::ordered_json read_ordered_json(const std::string& path) { return parse_file<nlohmann::ordered_json>(path); }

void rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    throw RuntimeError("cannot rename " + from + " to " + to + ": " + std::strerror(errno));
  }
}

StagedFile::StagedFile(std::string path, bool binary) : path_(std::move(path)), partial_(path_ + ".partial") {
  out_.open(partial_, std::ios::trunc | (binary ? std::ios::binary : std::ios::openmode()));
  if (!out_) throw RuntimeError(partial_ + ": cannot open for writing: " + std::strerror(errno));
}

StagedFile::~StagedFile() {
  if (committed_) return;
  out_.close();
  std::remove(partial_.c_str());
}

void StagedFile::commit() {
  out_.flush();
  out_.close();
  if (!out_) throw RuntimeError(partial_ + ": write failed (disk full?)");
  rename(partial_, path_);
  committed_ = true;
}

void write_atomic(const std::string& path, std::string_view bytes) {
  StagedFile f(path, true);
  f.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.commit();
}

void write_json_atomic(const std::string& path, const json& value) { write_atomic(path, value.dump(2) + "\n"); }

}  // namespace steper::io
