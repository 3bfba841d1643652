// A progress line for long work, on stderr: redrawn in place on a terminal
// (at most 10 times a second), one plain line every 10 seconds otherwise so
// that CI logs stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace steper::cli {

// Rate and time left, measured from the first report this process saw. A
// resumed job starts part-way: counting the earlier part as this process's
// work would promise a finish far too soon.
class Pace {
 public:
  // The first call sets the base; later ones leave it.
  void observe(std::uint64_t done, double fraction, double seconds);
  double per_second(std::uint64_t done, double seconds) const;
  // < 0 until some progress has been measured past the base.
  double seconds_left(double fraction, double seconds) const;

 private:
  bool based_ = false;
  std::uint64_t done0_ = 0;
  double fraction0_ = 0, seconds0_ = 0;
};

class Progress {
 public:
  // `unit` names what is counted ("docs", "questions"); "" shows no count
  // or rate, only the fraction and `extra`. Nothing is printed when !enabled.
  Progress(std::string label, std::string unit, bool enabled);
  // `fraction` of the work done in [0, 1], or < 0 when unknown (no ETA).
  void update(std::uint64_t done, double fraction, const std::string& extra = "");
  // Prints the final line: count, rate and elapsed time.
  void finish(std::uint64_t done);
  // Ends a half-drawn terminal line without claiming completion.
  void abandon();
  double seconds() const;

 private:
  void draw(std::uint64_t done, double fraction, bool final);
  std::string extra_;
  Pace pace_;

  std::string label_, unit_;
  bool enabled_, tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// "3.2k", "1.5M": counts and rates at a glance.
std::string human_count(double n);
// "45s", "3m07s", "2h05m".
std::string human_duration(double seconds);

}  // namespace steper::cli
