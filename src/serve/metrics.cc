#include "metrics.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace steper::serve {
namespace {

// Prometheus numbers: integers as integers, others with enough digits.
std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A label value with Prometheus' three escapes.
std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

template <std::size_t N>
void Histogram<N>::observe(double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t i = 0; i < N; ++i) {
    if (v <= bounds_[i]) ++count_[i];
  }
  ++count_[N];
  sum_ += v;
}

template <std::size_t N>
std::string Histogram<N>::text(const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  for (std::size_t i = 0; i < N; ++i) out << name << "_bucket{le=\"" << number(bounds_[i]) << "\"} " << count_[i] << "\n";
  out << name << "_bucket{le=\"+Inf\"} " << count_[N] << "\n";
  out << name << "_sum " << number(sum_) << "\n" << name << "_count " << count_[N] << "\n";
  return out.str();
}

template class Histogram<8>;
template class Histogram<14>;

void Metrics::request_done(const RequestRecord& r) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{r.route, r.status}];
  }
  prompt_tokens_ += r.prompt_tokens;
  completion_tokens_ += r.completion_tokens;
  latency_.observe(r.seconds);
}

std::string Metrics::text(std::size_t queue_depth, std::size_t running) const {
  std::ostringstream out;
  out << "# HELP steper_requests_total Requests answered, by path and HTTP status.\n# TYPE steper_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, n] : requests_) {
      out << "steper_requests_total{path=\"" << label(key.first) << "\",status=\"" << key.second << "\"} " << n << "\n";
    }
  }
  out << "# HELP steper_prompt_tokens_total Prompt tokens of answered requests.\n# TYPE steper_prompt_tokens_total counter\n"
      << "steper_prompt_tokens_total " << prompt_tokens_.load() << "\n";
  out << "# HELP steper_generation_tokens_total Tokens generated for answered requests.\n"
      << "# TYPE steper_generation_tokens_total counter\nsteper_generation_tokens_total " << completion_tokens_.load() << "\n";
  out << "# HELP steper_queue_depth Requests waiting for the model.\n# TYPE steper_queue_depth gauge\nsteper_queue_depth "
      << queue_depth << "\n";
  out << "# HELP steper_running_prompts Prompts the model is decoding now.\n# TYPE steper_running_prompts gauge\n"
      << "steper_running_prompts " << running << "\n";
  out << batch_sizes_.text("steper_batch_size", "Prompts decoded together, per batch.");
  out << latency_.text("steper_request_duration_seconds", "Time from a request's arrival to its last byte.");
  return out.str();
}

std::string access_log_line(const RequestRecord& r) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // The path is the client's: printable ASCII only, so that it cannot forge lines.
  std::string path = r.path.substr(0, 200);
  for (char& c : path) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  char line[1024];
  std::snprintf(line, sizeof line, "%s.%03dZ %s %s %s %d in=%lld out=%lld %.3fs", stamp, static_cast<int>(ms), r.id.c_str(),
                r.method.c_str(), path.c_str(), r.status, static_cast<long long>(r.prompt_tokens),
                static_cast<long long>(r.completion_tokens), r.seconds);
  return line;
}

}  // namespace steper::serve
