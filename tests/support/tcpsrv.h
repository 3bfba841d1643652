// Runs a real xapian-tcpsrv on a free loopback port for the life of the
// object: the remote-shard path is tested and benchmarked against the real
// server, not a stand-in.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace steper::testing {

class TcpShardServer {
 public:
  // Serves `dirs` (several folders are one shard) with the binary at `tcpsrv`.
  TcpShardServer(const std::string& tcpsrv, const std::vector<std::string>& dirs) {
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = free_port();
      pid_t pid = ::fork();
      if (pid < 0) throw std::runtime_error("fork failed");
      if (pid == 0) {
        // Its own process group: on SIGTERM xapian-tcpsrv signals its whole
        // group, which would otherwise take the test runner down with it.
        ::setpgid(0, 0);
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        std::string port = std::to_string(port_);
        std::vector<const char*> argv{tcpsrv.c_str(), "--quiet", "--interface", "127.0.0.1", "--port", port.c_str()};
        for (const auto& d : dirs) argv.push_back(d.c_str());
        argv.push_back(nullptr);
        ::execv(tcpsrv.c_str(), const_cast<char* const*>(argv.data()));
        ::_exit(127);
      }
      if (wait_listening(pid)) pid_ = pid;
    }
    if (pid_ <= 0) throw std::runtime_error("xapian-tcpsrv (" + tcpsrv + ") did not start listening");
  }
  ~TcpShardServer() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);  // the server and its per-connection children
      ::waitpid(pid_, nullptr, 0);
    }
  }
  TcpShardServer(const TcpShardServer&) = delete;
  TcpShardServer& operator=(const TcpShardServer&) = delete;

  int port() const { return port_; }
  std::string spec() const { return "tcp://127.0.0.1:" + std::to_string(port_); }


 private:
  bool wait_listening(pid_t pid) {
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // exited: port taken?
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port_));
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return false;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace steper::testing
