#include "support/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace boxgate::test {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool try_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = loopback(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

bool port_bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = loopback(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

int free_port() {
  // 10000-22767: below Linux's ephemeral range (32768-60999 by default), so
  // no outgoing connection of a parallel test (ctest -j) takes the port
  // between this pick and the daemon's bind, as a kernel-chosen port 0 could
  // be; a Redis Cluster bus port (port + 10000) stays below it too. Each test
  // process starts at its own pid-derived place and walks on, so parallel
  // tests rarely try the same port, and a port someone holds is skipped.
  constexpr int kFirst = 10000, kCount = 12768;
  static std::atomic<long long> next{static_cast<long long>(::getpid()) * 7919};
  for (int tries = 0; tries < kCount; ++tries) {
    int port = kFirst + static_cast<int>(next++ % kCount);
    if (port_bindable(port)) return port;
  }
  throw std::runtime_error("free_port: no port of 10000-22767 is free on 127.0.0.1");
}

int connect_loopback(int port, const std::string& who, ConnectOptions options) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(who + ": socket: " + std::strerror(errno));
  if (options.receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer, sizeof options.receive_buffer);
  }
  if (options.no_delay) {
    int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(who + ": connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
  }
  return fd;
}

bool wait_for_port(int port, std::chrono::milliseconds timeout) {
  return eventually([port] { return try_connect(port); }, timeout, 10ms);
}

bool port_closed(int port) { return !try_connect(port); }

SilentListener::SilentListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
}

SilentListener::~SilentListener() { ::close(fd_); }

bool SilentListener::pending_connection() const {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace boxgate::test
