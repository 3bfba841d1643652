#include "batcher.h"

namespace steper::serve {
namespace {

// Jobs decode together when their settings agree; two that gave no seed
// agree on any seed (the batch takes the first one's), so that unseeded
// sampling still batches.
bool can_share(const Job& a, const Job& b) {
  if (a.any_seed && b.any_seed) {
    lm::CompletionOptions o = b.options;
    o.seed = a.options.seed;
    return a.options == o;
  }
  return a.any_seed == b.any_seed && a.options == b.options;
}

}  // namespace

Batcher::Batcher(lm::LocalModel& model, int max_batch, std::function<void(std::size_t)> on_batch)
    : model_(model), max_batch_(max_batch), on_batch_(std::move(on_batch)), worker_([this] { work(); }) {}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void Batcher::submit(const std::shared_ptr<Job>& job) {
  job->so_far.assign(job->prompts.size(), "");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
  }
  wake_.notify_one();
}

std::size_t Batcher::queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void Batcher::work() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) return;
      // The oldest job, and every queued job with the same settings that fits.
      batch.push_back(queue_.front());
      queue_.pop_front();
      std::size_t n = batch[0]->prompts.size();
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (can_share(*batch[0], **it) && n + (*it)->prompts.size() <= static_cast<std::size_t>(max_batch_)) {
          n += (*it)->prompts.size();
          batch.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    run(batch);
  }
}

void Batcher::run(std::vector<std::shared_ptr<Job>>& batch) {
  std::vector<std::vector<int>> prompts;
  std::vector<std::pair<Job*, std::size_t>> owner;
  for (auto& job : batch) {
    for (std::size_t i = 0; i < job->prompts.size(); ++i) {
      prompts.push_back(job->prompts[i]);
      owner.emplace_back(job.get(), i);
    }
  }
  ++batches_;
  prompts_ += prompts.size();
  running_ = prompts.size();
  if (on_batch_) on_batch_(prompts.size());
  std::vector<lm::Completion> out;
  std::string error;
  try {
    const lm::CompletionOptions& o = batch[0]->options;
    if (o.max_tokens > 0) {
      out = model_.complete_tokens(prompts, o, [&](std::size_t k, const std::string& text) {
        auto [job, i] = owner[k];
        {
          std::lock_guard<std::mutex> lock(job->mutex);
          job->so_far[i] = text;
        }
        job->changed.notify_all();
      });
    } else {  // scoring only (echo with max_tokens 0)
      out.resize(prompts.size());
      for (std::size_t k = 0; k < prompts.size(); ++k) {
        out[k].prompt_ids = prompts[k];
        out[k].prompt_tokens = static_cast<int>(prompts[k].size());
        out[k].finish = "length";
      }
    }
    // Log-probabilities: one forward pass over each prompt and its completion.
    for (std::size_t k = 0; k < owner.size(); ++k) {
      auto [job, i] = owner[k];
      if (job->logprobs < 0 || out[k].finish == "error") continue;
      std::vector<int> seq = out[k].prompt_ids;
      seq.insert(seq.end(), out[k].ids.begin(), out[k].ids.end());
      std::vector<lm::TokenLogprob> scored = seq.size() > 1 ? model_.score(seq, job->logprobs) : std::vector<lm::TokenLogprob>();
      const std::size_t prompt_scores = out[k].prompt_ids.empty() ? 0 : out[k].prompt_ids.size() - 1;
      const std::size_t skip = job->score_prompt ? 0 : std::min(scored.size(), prompt_scores);
      std::lock_guard<std::mutex> lock(job->mutex);
      if (job->scores.empty()) job->scores.resize(job->prompts.size());
      job->scores[i].assign(scored.begin() + static_cast<std::ptrdiff_t>(skip), scored.end());
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  running_ = 0;
  for (std::size_t k = 0; k < owner.size(); ++k) {
    auto [job, i] = owner[k];
    std::lock_guard<std::mutex> lock(job->mutex);
    if (job->out.empty()) job->out.resize(job->prompts.size());
    if (error.empty()) job->out[i] = std::move(out[k]);
  }
  for (auto& job : batch) {
    {
      std::lock_guard<std::mutex> lock(job->mutex);
      job->error = error;
      job->done = true;
    }
    job->changed.notify_all();
  }
}

}  // namespace steper::serve
