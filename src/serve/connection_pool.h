// The threads that serve connections: one per open connection, started as
// connections arrive, up to a cap. httplib's own pool has a fixed number of
// threads, each held by its connection until the client finishes sending;
// 70 clients sending one header line every 2 s held all 64 and a normal
// request waited 33 s. A thread per connection costs a stack of address
// space and nothing while it waits, and the model's work is serialised by
// the batcher anyway, so slow clients hold only their own threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace steper::serve {

class ConnectionPool final : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(std::size_t max_threads) : max_(max_threads) {}
  ~ConnectionPool() override { shutdown(); }

  // A connection to serve: an idle thread takes it, else a new one, else
  // (at the cap) it waits for the first thread to come free.
  void enqueue(std::function<void()> fn) override;
  // Lets the queued connections finish, then joins every thread.
  void shutdown() override;

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0, max_;
  bool stopping_ = false;
};

}  // namespace steper::serve
