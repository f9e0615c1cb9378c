#pragma once
// ThrottleProxy: a TCP relay on 127.0.0.1 that forwards to another loopback
// port at a bounded rate in each direction -- a slow link between a daemon and
// Redis, on real sockets.
//
// Callers: the test thread constructs and destroys it. It runs an accept
// thread and two pump threads per connection; the destructor closes every
// socket and joins them all. Rate: bytes per second per direction and
// connection, sent in slices of at most 16 KiB.

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace boxgate::test {

class ThrottleProxy {
 public:
  ThrottleProxy(int target_port, std::size_t bytes_per_second);
  ~ThrottleProxy();
  ThrottleProxy(const ThrottleProxy&) = delete;
  ThrottleProxy& operator=(const ThrottleProxy&) = delete;

  int port() const { return port_; }
  std::size_t connections() const { return accepted_.load(); }

 private:
  void accept_loop();
  void pump(int from, int to);

  int target_port_;
  std::size_t rate_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> accepted_{0};
  std::mutex mutex_;  // guards fds_ and pumps_
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace boxgate::test
