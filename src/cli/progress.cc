#include "progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace steper::cli {
namespace {
using Clock = std::chrono::steady_clock;
constexpr double kTtyInterval = 0.1;
constexpr double kLogInterval = 10.0;
constexpr int kBarWidth = 24;
}  // namespace

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  else if (n >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  else if (n >= 100 || n == std::floor(n)) std::snprintf(buf, sizeof buf, "%.0f", n);
  else std::snprintf(buf, sizeof buf, "%.1f", n);
  return buf;
}

std::string human_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

void Pace::observe(std::uint64_t done, double fraction, double seconds) {
  if (based_) return;
  based_ = true;
  done0_ = done, fraction0_ = fraction, seconds0_ = seconds;
}

double Pace::per_second(std::uint64_t done, double seconds) const {
  const double span = seconds - seconds0_;
  return based_ && span > 0 && done >= done0_ ? static_cast<double>(done - done0_) / span : 0;
}

double Pace::seconds_left(double fraction, double seconds) const {
  const double moved = fraction - fraction0_;
  if (!based_ || fraction < 0 || moved < 1e-3) return -1;
  return (seconds - seconds0_) * (1 - fraction) / moved;
}

Progress::Progress(std::string label, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), enabled_(enabled), tty_(::isatty(2) == 1),
      start_(Clock::now()), last_(start_) {}

double Progress::seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

void Progress::update(std::uint64_t done, double fraction, const std::string& extra) {
  if (!enabled_) return;
  pace_.observe(done, fraction, seconds());
  extra_ = extra;
  double since = std::chrono::duration<double>(Clock::now() - last_).count();
  if (since < (tty_ ? kTtyInterval : kLogInterval)) return;
  last_ = Clock::now();
  draw(done, fraction, false);
}

void Progress::finish(std::uint64_t done) {
  if (!enabled_) return;
  pace_.observe(0, 0, 0);  // no report came: the whole run is the span
  draw(done, 1.0, true);
}

void Progress::abandon() {
  if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

void Progress::draw(std::uint64_t done, double fraction, bool final) {
  double elapsed = seconds();
  double rate = pace_.per_second(done, elapsed);
  std::string line = label_ + " ";
  if (fraction >= 0) {
    fraction = std::min(1.0, fraction);
    if (tty_) {
      int filled = static_cast<int>(fraction * kBarWidth);
      line += "[" + std::string(static_cast<std::size_t>(filled), '#') +
              std::string(static_cast<std::size_t>(kBarWidth - filled), '.') + "] ";
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", fraction * 100);
    line += pct;
  }
  if (!unit_.empty()) line += human_count(static_cast<double>(done)) + " " + unit_ + "  " + human_count(rate) + " " + unit_ + "/s  ";
  line += extra_;
  if (final) {
    line += "  in " + human_duration(elapsed);
  } else if (double left = pace_.seconds_left(fraction, elapsed); left >= 0) {
    line += "  ETA " + human_duration(left);
  }
  drawn_ = !final;
  if (tty_) std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace steper::cli
