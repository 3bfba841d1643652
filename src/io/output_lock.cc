#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "steper/error.h"
#include "steper/io.h"

namespace steper::io {

namespace {

// "out/" and "out" are one output; its lock sits beside it, in a folder
// made if need be (the command is about to write there).
std::string lock_path_of(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return path + ".lock";
}

}  // namespace

OutputLock::OutputLock(const std::string& path) : lock_path_(lock_path_of(path)) {
  // Lock, then check that the file locked is still the one at the path: a
  // holder that released it in between has removed that file, and a lock on
  // a removed file guards nothing.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw RuntimeError(lock_path_ + ": cannot create the lock file: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char holder[32] = "";
      const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
      ::close(fd);
      if (err != EWOULDBLOCK) throw RuntimeError(lock_path_ + ": cannot lock: " + std::strerror(err));
      const std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "";
      throw InputError(path + " is being written by another steper" + (pid.empty() ? "" : " (pid " + pid + ")") +
                       "\n  hint: wait for it to finish, or choose another output");
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 && held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
      const std::string pid = std::to_string(::getpid());
      if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
        // The pid only makes the message friendlier; the lock holds without it.
      }
      fd_ = fd;
      return;
    }
    ::close(fd);
  }
  throw RuntimeError(lock_path_ + ": the lock file keeps being replaced");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());  // while still held: nobody locks a file on its way out
  ::close(fd_);
}

}  // namespace steper::io
