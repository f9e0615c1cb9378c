#pragma once
// What every boxgate daemon's main() does the same way: option parsing with
// the contract's exit codes, the fd limit, and SIGTERM/SIGINT on the loop.

#include <functional>
#include <optional>

#include "boxgate/loop/event_loop.hpp"
#include "boxgate/options.hpp"

struct event;

namespace boxgate {

// Loads the options. Returns an exit status when main() should exit now:
// 0 after --help/--version, 2 after a bad value (the key is named on stderr).
std::optional<int> load_options_or_exit(Options& options, int argc, char** argv);

// Raises RLIMIT_NOFILE to its hard limit: each waiting caller holds a socket.
void raise_fd_limit();

// Runs `on_signal` on the loop thread for each SIGTERM or SIGINT. SIGPIPE is
// ignored (a client that leaves must not kill the process). Loop thread only.
class ShutdownSignals {
 public:
  ShutdownSignals(EventLoop& loop, std::function<void()> on_signal);
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

 private:
  static void on_event(int, short, void* self);
  std::function<void()> on_signal_;
  event* term_ = nullptr;
  event* int_ = nullptr;
};

}  // namespace boxgate
