// What steper serve tells its operator: one access-log line per request and
// counters in Prometheus' text format (GET /metrics).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace steper::serve {

// Cumulative buckets, as Prometheus wants them: count[i] holds the
// observations <= bounds[i]; the last, +Inf, all of them.
template <std::size_t N>
class Histogram {
 public:
  explicit Histogram(const std::array<double, N>& bounds) : bounds_(bounds) {}
  void observe(double v);
  // "# TYPE name histogram" and its _bucket, _sum and _count lines.
  std::string text(const std::string& name, const std::string& help) const;

 private:
  std::array<double, N> bounds_;
  mutable std::mutex mutex_;
  std::array<std::uint64_t, N + 1> count_{};
  double sum_ = 0;
};

// What one request did, for its log line and the counters.
struct RequestRecord {
  std::string id, method, path;
  std::string route;  // the path for a known route, else "other": the counters stay bounded
  int status = 0;
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
  double seconds = 0;
};

class Metrics {
 public:
  void request_done(const RequestRecord& r);
  void batch_done(std::size_t prompts) { batch_sizes_.observe(static_cast<double>(prompts)); }
  // The text of GET /metrics; `queue_depth` and `running` are read by the caller.
  std::string text(std::size_t queue_depth, std::size_t running) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;  // (path, status) -> count
  std::atomic<std::int64_t> prompt_tokens_{0}, completion_tokens_{0};
  Histogram<14> latency_{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}};
  Histogram<8> batch_sizes_{{1, 2, 4, 8, 16, 32, 64, 128}};
};

// "2026-12-03T07:10:00.123Z req-7 POST /v1/completions 200 in=12 out=16 0.052s"
std::string access_log_line(const RequestRecord& r);

}  // namespace steper::serve
