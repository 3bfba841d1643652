// Collects concurrent generation jobs and decodes those with equal settings
// as one batch on a single worker thread (the model runs one batch at a time).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "steper/lm.h"

namespace steper::serve {

// One request's prompts (token ids, one per choice). The worker fills
// `so_far` while decoding (for streaming) and `out` at the end; both under
// `mutex`, announced on `changed`.
struct Job {
  std::vector<std::vector<int>> prompts;
  lm::CompletionOptions options;
  // The client gave no seed: options.seed was drawn for this request, and
  // the job may share a batch (and its seed) with others that gave none.
  bool any_seed = false;
  // Tokens to score, with this many alternatives each; -1: none. With
  // `score_prompt` the prompt's tokens too (echo), and max_tokens 0 scores
  // without generating.
  int logprobs = -1;
  bool score_prompt = false;

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> so_far;
  std::vector<lm::Completion> out;
  // Per prompt: the scored tokens (the prompt's after its first, when
  // score_prompt, then the completion's).
  std::vector<std::vector<lm::TokenLogprob>> scores;
  std::string error;  // the whole batch failed
  bool done = false;
};

class Batcher {
 public:
  // `on_batch` sees each batch's prompt count (for the metrics).
  Batcher(lm::LocalModel& model, int max_batch, std::function<void(std::size_t)> on_batch = nullptr);
  ~Batcher();
  void submit(const std::shared_ptr<Job>& job);
  std::uint64_t batches() const { return batches_; }
  std::uint64_t prompts() const { return prompts_; }
  std::size_t queued();                          // jobs waiting
  std::size_t running() const { return running_; }  // prompts being decoded

 private:
  void work();
  void run(std::vector<std::shared_ptr<Job>>& batch);
  lm::LocalModel& model_;
  int max_batch_;
  std::function<void(std::size_t)> on_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> batches_{0}, prompts_{0};
  std::atomic<std::size_t> running_{0};
  std::thread worker_;
};

}  // namespace steper::serve
