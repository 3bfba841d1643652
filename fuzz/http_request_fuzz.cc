// Fuzzes `steper serve` end to end: any bytes sent as an HTTP request (the
// request line, headers, chunked or sized bodies, the JSON of completions
// and chats) must get a response or a closed connection, never a crash, and
// the server must go on serving. The model is a small random one, written
// once with a tokenizer from the seeds of tokenizer_json_fuzz.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "steper/lm.h"
#include "steper/model.h"
#include "steper/serve.h"
#include "small_model.h"

namespace {

struct Running {
  std::unique_ptr<steper::lm::LocalModel> model;
  std::unique_ptr<steper::serve::Server> server;
  int port = 0;
  std::thread thread;
};

const Running& running() {
  static const Running r = [] {
    const std::string dir = "/tmp/steper-fuzz-serve-" + std::to_string(::getpid());
    steper::model::ModelConfig c = steper::testing::small_model_config();
    c.vocab_size = 560;  // gpt2_small.json's 557 tokens, and a few more
    steper::model::CausalLM lm(c);
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(STEPER_FUZZ_TOKENIZER, dir + "/tokenizer.json", std::filesystem::copy_options::overwrite_existing);
    steper::model::save_model(lm, dir, "");
    Running out;
    out.model = steper::lm::open_local(dir);
    steper::serve::ServeOptions o;
    o.port = 0;
    o.max_tokens_limit = 4;
    o.max_body_bytes = 1 << 16;
    o.access_log = nullptr;  // a line per input would drown the fuzzer's own output
    out.server = std::make_unique<steper::serve::Server>(*out.model, o);
    out.port = out.server->bind();
    out.thread = std::thread([s = out.server.get()] { s->run(); });
    out.thread.detach();
    return out;
  }();
  return r;
}

// Sends `bytes`, then reads until the server closes or is quiet for half a
// second; the response, "" when the server cannot be reached. The sending
// side stays open: httplib drops a half-closed connection unanswered, and
// closing ours ends whatever the server still waits for.
std::string exchange(int port, const char* bytes, std::size_t size) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  for (std::size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, bytes + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buf[4096];
  for (pollfd p{fd, POLLIN, 0}; ::poll(&p, 1, 500) == 1 && response.size() < (1 << 20);) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return response;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Running& r = running();
  exchange(r.port, reinterpret_cast<const char*>(data), size);
  static const std::string health = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answer = exchange(r.port, health.data(), health.size());
  if (answer.rfind("HTTP/1.1 200", 0) != 0) {  // the server stopped serving
    std::fprintf(stderr, "GET /health answered '%s'\n", answer.substr(0, 200).c_str());
    std::abort();
  }
  return 0;
}
