#include "interrupt.h"

#include <atomic>
#include <csignal>

namespace steper::cli {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
extern "C" void on_signal(int signal) {
  g_signal = signal;
  g_stop = true;
}
}  // namespace

StopOnInterrupt::StopOnInterrupt() {
  g_stop = false;
  previous_int_ = std::signal(SIGINT, on_signal);
  previous_term_ = std::signal(SIGTERM, on_signal);
}

StopOnInterrupt::~StopOnInterrupt() {
  std::signal(SIGINT, previous_int_);
  std::signal(SIGTERM, previous_term_);
}

bool StopOnInterrupt::stop_requested() { return g_stop.load(); }

int StopOnInterrupt::last_signal() { return g_signal.load(); }

}  // namespace steper::cli
