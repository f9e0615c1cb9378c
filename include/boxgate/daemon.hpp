#pragma once
// What every boxgate daemon's main() does the same way: option parsing with
// the contract's exit codes, the fd limit, and SIGTERM/SIGINT on the loop.

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/options.hpp"

struct event;

namespace boxgate {

// Loads the options. Returns an exit status when main() should exit now:
// 0 after --help/--version, 2 after a bad value (the key is named on stderr).
std::optional<int> load_options_or_exit(Options& options, int argc, char** argv);

// Raises RLIMIT_NOFILE to its hard limit: each waiting caller holds a socket.
void raise_fd_limit();

// Logs a warning for every secret the configuration leaves readable by others
// (Options::secret_file_warnings). Call once logging is set up.
void warn_about_exposed_secrets(const Options& options);
// Logs a warning when group or others may write `path` (`what` names it in
// the line, `why` says what that allows).
void warn_if_writable_by_others(const std::string& path, const std::string& what, const std::string& why);

// Runs `on_signal` on the loop thread for each of `signals` that arrives
// (libevent's signal events: the handler itself only wakes the loop). Loop
// thread only.
class SignalWatch {
 public:
  SignalWatch(EventLoop& loop, std::initializer_list<int> signals, std::function<void()> on_signal);
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

 private:
  static void on_event(int, short, void* self);
  std::function<void()> on_signal_;
  std::vector<event*> events_;
};

// SIGTERM and SIGINT: a daemon's shutdown. SIGPIPE is ignored (a client that
// leaves must not kill the process).
class ShutdownSignals : public SignalWatch {
 public:
  ShutdownSignals(EventLoop& loop, std::function<void()> on_signal);
};

// SIGHUP: a reload (the gateway reads its token file again).
class HangupSignal : public SignalWatch {
 public:
  HangupSignal(EventLoop& loop, std::function<void()> on_signal);
};

// Drain: what SIGTERM/SIGINT start. Reports "draining" on /readyz at once,
// runs stop_intake, then checks remaining() every 20 ms until it is 0 or
// `timeout` passed, runs give_up(left) if work is left, and ends the loop
// shortly after so the last replies can leave. Loop thread only; a second
// signal changes nothing.
class Drain {
 public:
  struct Work {
    std::string what;                               // "commands in flight", for the log
    std::function<void()> stop_intake;
    std::function<std::size_t()> remaining;         // may also push work forward
    std::function<void(std::size_t left)> give_up;
  };

  Drain(EventLoop& loop, ops::Readiness& readiness, std::chrono::milliseconds timeout, Work work);
  void begin();

 private:
  void check();

  EventLoop& loop_;
  ops::Readiness& readiness_;
  std::chrono::milliseconds timeout_;
  Work work_;
  std::chrono::steady_clock::time_point deadline_;
  Timer poll_;
};

}  // namespace boxgate
