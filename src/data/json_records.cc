// Streaming reader for JSON Lines and for top-level JSON arrays.
//
// Arrays are split into elements by a small scanner that tracks string and
// nesting state, so a 500 MB HotpotQA file is read one question at a time and
// each element keeps the line it started on for error messages.
#include <sys/stat.h>

#include <atomic>

#include "steper/data.h"

namespace steper::data {
namespace {

constexpr std::size_t kBufferBytes = 1 << 20;

std::atomic<std::uint64_t> g_max_record_bytes{16u << 20};

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// nlohmann's messages start "[json.exception.parse_error.101] parse error at
// line 1, column 7: ..." (the line is ours to give, so the tail is kept) or,
// for a number past double's range, "[json.exception.out_of_range.406]
// number overflow parsing '1e9999'".
std::string json_error_message(const json::exception& e) {
  std::string what = e.what();
  const auto cut = dynamic_cast<const json::parse_error*>(&e) ? what.find(": ") : what.find("] ");
  if (cut != std::string::npos) what = what.substr(cut + 2);
  return "invalid JSON: " + what;
}

std::string too_long(const std::string& path, std::uint64_t line) {
  return path + ":" + std::to_string(line) + ": the record is longer than " + std::to_string(g_max_record_bytes.load()) +
         " bytes\n  hint: steper --max-record-mb N (or STEPER_MAX_RECORD_MB) raises the limit";
}

}  // namespace

std::uint64_t max_record_bytes() { return g_max_record_bytes; }
void set_max_record_bytes(std::uint64_t bytes) { g_max_record_bytes = bytes; }

JsonRecords::JsonRecords(std::string path) : path_(std::move(path)) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) throw InputError(path_ + ": no such file");
  if (S_ISDIR(st.st_mode)) throw InputError(path_ + ": is a directory, expected a JSON or JSONL file");
  total_bytes_ = static_cast<std::uint64_t>(st.st_size);
  buffer_.reset(new char[kBufferBytes]);
  in_.rdbuf()->pubsetbuf(buffer_.get(), kBufferBytes);
  in_.open(path_, std::ios::binary);
  if (!in_) throw InputError(path_ + ": cannot open for reading");

  // Skip a UTF-8 byte-order mark, then peek at the first non-blank byte.
  if (in_.peek() == 0xEF) {
    char bom[3];
    in_.read(bom, 3);
    if (!(bom[1] == '\xBB' && bom[2] == '\xBF')) in_.seekg(0);
    else bytes_read_ = 3;
  }
  std::streambuf* sb = in_.rdbuf();
  for (int c = sb->sgetc(); c != EOF && is_space(c); c = sb->sgetc()) {
    if (c == '\n') break;  // JSON Lines keep their line structure
    sb->sbumpc();
    ++bytes_read_;
  }
  if (sb->sgetc() == '[') {
    array_ = true;
    get();
  }
}

JsonRecords::~JsonRecords() = default;

int JsonRecords::get() {
  int c = in_.rdbuf()->sbumpc();
  if (c != EOF) {
    ++bytes_read_;
    if (c == '\n') ++line_;
  }
  return c;
}

std::string JsonRecords::where() const { return path_ + ":" + std::to_string(record_line_); }

void JsonRecords::seek(std::uint64_t offset, std::uint64_t line) {
  if (array_) throw InputError(path_ + ": cannot resume inside a JSON array; convert it to JSON Lines");
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  if (!in_) throw InputError(path_ + ": cannot seek to byte " + std::to_string(offset));
  bytes_read_ = offset;
  line_ = line + 1;
}

// One line, at most max_record_bytes() of it: a longer one is skipped to
// its end (the reader stays usable) and refused. Read a piece at a time
// with istream::getline, which scans the stream's buffer for the newline:
// a byte at a time, reading cost four times std::getline's.
bool JsonRecords::read_line(std::string& line) {
  line.clear();
  const std::uint64_t limit = g_max_record_bytes, start = line_;
  std::uint64_t length = 0;
  char piece[1 << 16];
  for (;;) {
    in_.getline(piece, sizeof piece);
    const std::uint64_t got = static_cast<std::uint64_t>(in_.gcount());
    bytes_read_ += got;
    const bool ended = !in_.fail() && !in_.eof();  // the newline was read (and counted in gcount)
    const std::uint64_t stored = ended ? got - 1 : got;
    length += stored;
    if (length <= limit) line.append(piece, stored);
    if (ended) {
      ++line_;
      break;
    }
    if (in_.bad()) throw RuntimeError(path_ + ": read error after byte " + std::to_string(bytes_read_));
    if (in_.eof()) {
      in_.clear(std::ios::eofbit);  // keep eof, drop the failbit an empty last read sets
      if (got == 0 && length == 0) return false;
      break;
    }
    in_.clear();  // the piece was full: the line goes on
  }
  if (length > limit) {
    record_line_ = start;
    throw InputError(too_long(path_, start));
  }
  return true;
}

bool JsonRecords::next_line_record(std::string& text) {
  std::string line;
  while (true) {
    const std::uint64_t this_line = line_;
    if (!read_line(line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t start = 0;
    while (start < line.size() && is_space(static_cast<unsigned char>(line[start]))) ++start;
    if (start == line.size()) continue;
    record_line_ = this_line;
    text.assign(line, start, std::string::npos);
    return true;
  }
}

bool JsonRecords::next_array_record(std::string& text) {
  if (array_done_) return false;
  int c;
  // Between elements: white space and exactly one comma (or the closing bracket).
  bool need_comma = record_index_ > 0;
  for (;;) {
    c = get();
    if (c == EOF) {
      record_line_ = line_;
      throw InputError(path_ + ":" + std::to_string(line_) + ": invalid JSON: the top-level array is not closed with ']'");
    }
    if (is_space(c)) continue;
    if (c == ']') {
      array_done_ = true;
      return false;
    }
    if (c == ',' && need_comma) {
      need_comma = false;
      continue;
    }
    if (need_comma) {
      record_line_ = line_;
      throw InputError(path_ + ":" + std::to_string(line_) + ": invalid JSON: expected ',' or ']' between array elements, got '" +
                       std::string(1, static_cast<char>(c)) + "'");
    }
    break;
  }
  record_line_ = line_;
  text.clear();
  int depth = 0;
  bool in_string = false, escaped = false;
  for (;; c = get()) {
    if (c == EOF) {
      throw InputError(path_ + ":" + std::to_string(record_line_) + ": invalid JSON: element is cut off by the end of the file");
    }
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) {  // a scalar element ends at the array's bracket
        in_.rdbuf()->sungetc();
        --bytes_read_;
        break;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      in_.rdbuf()->sungetc();
      --bytes_read_;
      break;
    }
    if (text.size() >= g_max_record_bytes) throw InputError(too_long(path_, record_line_));
    text.push_back(static_cast<char>(c));
    if (depth == 0 && !in_string && (c == '}' || c == ']')) break;
  }
  return true;
}

bool JsonRecords::next(json& out) {
  std::string text;
  if (!(array_ ? next_array_record(text) : next_line_record(text))) return false;
  ++record_index_;
  try {
    out = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(where() + ": " + json_error_message(e));
  }
  return true;
}

}  // namespace steper::data
