#include "batcher.h"

namespace steper::serve {

Batcher::Batcher(lm::LocalModel& model, int max_batch) : model_(model), max_batch_(max_batch), worker_([this] { work(); }) {}

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
        if ((*it)->options == batch[0]->options && n + (*it)->prompts.size() <= static_cast<std::size_t>(max_batch_)) {
          n += (*it)->prompts.size();
          batch.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::vector<std::string> prompts;
    std::vector<std::pair<Job*, std::size_t>> owner;
    for (auto& job : batch) {
      for (std::size_t i = 0; i < job->prompts.size(); ++i) {
        prompts.push_back(job->prompts[i]);
        owner.emplace_back(job.get(), i);
      }
    }
    ++batches_;
    prompts_ += prompts.size();
    std::vector<lm::Completion> out;
    std::string error;
    try {
      out = model_.complete_streaming(prompts, batch[0]->options, [&](std::size_t k, const std::string& text) {
        auto [job, i] = owner[k];
        {
          std::lock_guard<std::mutex> lock(job->mutex);
          job->so_far[i] = text;
        }
        job->changed.notify_all();
      });
    } catch (const std::exception& e) {
      error = e.what();
    }
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
}

}  // namespace steper::serve
