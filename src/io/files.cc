#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

void require_regular_or_absent(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // absent (or unreachable: opening it will say why)
  if (!S_ISREG(st.st_mode)) {
    throw InputError(path + ": exists and is not a regular file; steper writes only regular files\n  hint: choose another output path");
  }
}

void truncate_jsonl_at(const std::string& path, const char* field, std::int64_t from) {
  if (!is_file(path)) return;
  const std::string text = read_file(path);
  std::size_t keep = 0;
  while (keep < text.size()) {
    const std::size_t end = text.find('\n', keep);
    if (end == std::string::npos) break;  // no newline: torn
    const json j = json::parse(text.begin() + static_cast<std::ptrdiff_t>(keep), text.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
    if (!j.is_object() || !j.contains(field) || !j[field].is_number_integer() || j[field].get<std::int64_t>() >= from) break;
    keep = end + 1;
  }
  if (keep < text.size()) write_atomic(path, std::string_view(text).substr(0, keep));
}

void rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    throw RuntimeError("cannot rename " + from + " to " + to + ": " + std::strerror(errno));
  }
}

void throw_cannot_write(const std::string& path, int error) {
  const std::string message = path + ": cannot open for writing: " + std::strerror(error);
  if (error == ENOTDIR || error == ENOENT || error == EISDIR || error == ENAMETOOLONG) throw InputError(message);
  throw RuntimeError(message);
}

void make_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec) return;
  const std::string message = dir + ": cannot create the folder: " + ec.message();
  if (ec == std::errc::not_a_directory || ec == std::errc::file_exists) throw InputError(message);
  throw RuntimeError(message);
}

StagedFile::StagedFile(std::string path, bool binary) : path_(std::move(path)), partial_(path_ + ".partial") {
  require_regular_or_absent(path_);
  out_.open(partial_, std::ios::trunc | (binary ? std::ios::binary : std::ios::openmode()));
  if (!out_) throw_cannot_write(partial_, errno);
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
