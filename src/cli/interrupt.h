// Ctrl-C (SIGINT) and SIGTERM during long jobs: instead of dying mid-write,
// the job sees stop_requested(), saves its work and ends cleanly.
#pragma once

namespace steper::cli {

// Installs the handlers for its lifetime and restores the previous ones.
class StopOnInterrupt {
 public:
  StopOnInterrupt();
  ~StopOnInterrupt();
  StopOnInterrupt(const StopOnInterrupt&) = delete;
  StopOnInterrupt& operator=(const StopOnInterrupt&) = delete;
  static bool stop_requested();
  // The signal that asked for the stop (SIGINT or SIGTERM), 0 for none; it
  // outlives the handlers, for the exit code (128 + signal, as a shell does).
  static int last_signal();

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

}  // namespace steper::cli
