#include "support/throttle_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

#include "support/net.hpp"

namespace boxgate::test {

namespace {
constexpr std::size_t kSlice = 16 * 1024;
}

ThrottleProxy::ThrottleProxy(int target_port, std::size_t bytes_per_second)
    : target_port_(target_port), rate_(bytes_per_second) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("ThrottleProxy: cannot listen");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

ThrottleProxy::~ThrottleProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : pumps_) t.join();
  for (int fd : fds_) ::close(fd);
}

void ThrottleProxy::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int upstream;
    try {
      upstream = connect_loopback(target_port_, "ThrottleProxy target");
    } catch (const std::exception&) {
      ::close(client);
      continue;
    }
    ++accepted_;
    std::lock_guard lock(mutex_);
    fds_.push_back(client);
    fds_.push_back(upstream);
    pumps_.emplace_back([this, client, upstream] { pump(client, upstream); });
    pumps_.emplace_back([this, client, upstream] { pump(upstream, client); });
  }
}

// Copies from -> to, one slice per (slice / rate) seconds. On EOF or error it
// shuts both sockets down so the other direction ends too.
void ThrottleProxy::pump(int from, int to) {
  using Clock = std::chrono::steady_clock;
  const auto per_slice = std::chrono::microseconds(static_cast<long long>(kSlice * 1'000'000 / rate_));
  auto next = Clock::now();
  char buf[kSlice];
  while (!stop_) {
    pollfd p{from, POLLIN, 0};
    int ready = ::poll(&p, 1, 50);
    if (ready == 0) continue;
    if (ready < 0) break;
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n <= 0) break;
    std::this_thread::sleep_until(next);
    next = std::max(next, Clock::now()) + per_slice * n / static_cast<long long>(kSlice);
    for (ssize_t sent = 0; sent < n;) {
      ssize_t m = ::send(to, buf + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
      if (m <= 0) {
        n = -1;
        break;
      }
      sent += m;
    }
    if (n < 0) break;
  }
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

}  // namespace boxgate::test
