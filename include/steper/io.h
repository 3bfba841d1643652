// steper/io.h — the file layer every part writes and reads through.
//
// Three rules, kept here once: a file a reader may see is written whole or
// not at all (written aside, then renamed over the old one); every appended
// line is flushed and checked, so a full disk stops the job where it is
// instead of losing lines silently; a file that cannot be read or parsed is
// an error naming it. InputError for what the caller can fix (a wrong path,
// a file that is not JSON), RuntimeError for the environment (a failed write).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "steper/error.h"

namespace steper::io {

using json = nlohmann::json;

// True when `path` names a regular file (following links).
bool is_file(const std::string& path);

// The whole file, bytes as they are. InputError naming the file when it
// cannot be opened.
std::string read_file(const std::string& path);

// The file parsed as one JSON value. InputError naming the file when it
// cannot be opened or is not valid JSON.
json read_json(const std::string& path);
// The same, keeping the objects' key order (a chat template iterates them).
nlohmann::ordered_json read_ordered_json(const std::string& path);

// Throws InputError when `path` exists and is not a regular file (a device,
// a FIFO, a folder): steper replaces, appends to and reads back regular files
// only, so an output path of /dev/sda or a pipe is refused, not overwritten.
void require_regular_or_absent(const std::string& path);

// The error for a file that cannot be opened for writing, by errno: a path
// through a file or to nowhere (ENOTDIR, ENOENT, EISDIR, ENAMETOOLONG) is
// the caller's mistake, an InputError (exit 2); the rest (a full disk, no
// permission) a RuntimeError.
[[noreturn]] void throw_cannot_write(const std::string& path, int error);

// Makes the folder `dir` and its parents. InputError when a file stands in
// the way (`--out` naming a file where a folder goes), RuntimeError else.
void make_directories(const std::string& dir);

// Resuming a log: keeps the lines of the JSONL file at `path` before the
// first whose integer `field` is `from` or more (or that is not such a
// record: a line torn by a crash), so that a step written after the last
// checkpoint is not written twice. Rewrites the file only when it drops one.
void truncate_jsonl_at(const std::string& path, const char* field, std::int64_t from);

// Renames `from` over `to` (atomic on one file system). RuntimeError naming
// both when the system refuses.
void rename(const std::string& from, const std::string& to);

// A file written under PATH.partial and moved over PATH by commit(): readers
// of PATH see the old file or the whole new one, never a part. Destroyed
// without commit() (an exception on the way), it removes the partial file.
class StagedFile {
 public:
  explicit StagedFile(std::string path, bool binary = false);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  std::ostream& stream() { return out_; }
  const std::string& path() const { return path_; }
  // Flushes, checks every write, renames. RuntimeError when any write failed.
  void commit();

 private:
  std::string path_, partial_;
  std::ofstream out_;
  bool committed_ = false;
};

// Replaces PATH with `bytes` through a StagedFile.
void write_atomic(const std::string& path, std::string_view bytes);
// Replaces PATH with `value`, indented by 2, and a final newline.
void write_json_atomic(const std::string& path, const json& value);

// Writes lines, flushing and checking each: a record is on disk when write()
// returns. RuntimeError naming the file when a write fails.
//   truncate: starts PATH empty.  append: adds to PATH (a log, a resumable
//   output).  staged: writes PATH.partial, which commit() renames over PATH;
//   destroyed uncommitted, it removes the partial file.
class JsonlWriter {
 public:
  enum class Mode { truncate, append, staged };
  JsonlWriter(std::string path, Mode mode);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  // One JSON object per line. A stray invalid UTF-8 byte in outside data
  // becomes U+FFFD rather than aborting a long job.
  void write(const json& record);
  // One line of text (a log line); `line` holds no newline.
  void write_line(std::string_view line);
  // Mode::staged: closes and renames the partial file over PATH.
  void commit();
  const std::string& path() const { return path_; }
  std::uint64_t written() const { return written_; }

 private:
  std::string path_, file_;  // file_: what is written (PATH, or PATH.partial)
  bool staged_ = false;
  std::ofstream out_;
  std::uint64_t written_ = 0;
};

// An advisory lock on an output, held for the object's life, on PATH.lock
// beside it: a second steper writing the same output (two `run`s appending
// to one traces file once left 296 duplicate ids) stops at once with an
// InputError naming the output and the process holding it. The kernel
// drops the lock when its process dies, so a killed job never leaves a
// stale one; the lock file is removed on release.
class OutputLock {
 public:
  explicit OutputLock(const std::string& path);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::string lock_path_;
  int fd_ = -1;
};

}  // namespace steper::io
