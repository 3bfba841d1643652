// Collects concurrent generation jobs and decodes those with equal settings
// as one batch on a single worker thread (the model runs one batch at a time).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "steper/lm.h"

namespace steper::serve {

// One request's prompts. The worker fills `so_far` while decoding (for
// streaming) and `out` at the end; both under `mutex`, announced on `changed`.
struct Job {
  std::vector<std::string> prompts;
  lm::CompletionOptions options;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> so_far;
  std::vector<lm::Completion> out;
  std::string error;  // the whole batch failed
  bool done = false;
};

class Batcher {
 public:
  Batcher(lm::LocalModel& model, int max_batch);
  ~Batcher();
  void submit(const std::shared_ptr<Job>& job);
  std::uint64_t batches() const { return batches_; }
  std::uint64_t prompts() const { return prompts_; }

 private:
  void work();
  lm::LocalModel& model_;
  int max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> batches_{0}, prompts_{0};
  std::thread worker_;
};

}  // namespace steper::serve
