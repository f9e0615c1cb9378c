#pragma once
// A Redis MONITOR connection for tests: records every command the server
// processes (from all clients), so a test can assert that something was NOT
// done (e.g. no SUBSCRIBE for an invalid request), which PUBSUB CHANNELS can
// only show for the instant it is asked.
//
// Callers: any test thread. Lines are read on a background thread and kept in
// a mutex-guarded list; the destructor shuts the socket down and joins the
// thread. The constructor returns once Redis answered MONITOR with +OK (5 s),
// else throws std::runtime_error.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/redis.hpp"

namespace boxgate::test {

using namespace std::chrono_literals;

class RedisMonitor {
 public:
  // `credentials`: AUTH first (a server with an ACL needs a user allowed MONITOR).
  explicit RedisMonitor(int port, const RedisCredentials& credentials = {});
  ~RedisMonitor();
  RedisMonitor(const RedisMonitor&) = delete;
  RedisMonitor& operator=(const RedisMonitor&) = delete;

  // Every MONITOR line so far, e.g.
  //   1700000000.123456 [0 127.0.0.1:40000] "subscribe" "dev/box-1/response/x"
  std::vector<std::string> lines() const;
  // The lines whose command name (first quoted word) equals `command`,
  // case-insensitively ("subscribe", "publish", ...).
  std::vector<std::string> commands(const std::string& command) const;
  // True once a line containing `needle` has arrived.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) const;

 private:
  void run();

  int fd_ = -1;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool ok_ = false;
  int oks_needed_ = 1;  // +OK of AUTH (when sent), then of MONITOR
  bool closed_ = false;
  std::thread reader_;
};

}  // namespace boxgate::test
