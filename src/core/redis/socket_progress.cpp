// linux/tcp.h, not glibc's netinet/tcp.h: only the kernel's struct tcp_info
// has the byte counters (Linux 4.1+).
#include "boxgate/redis/socket_progress.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace boxgate::redis {

std::optional<TcpProgress> tcp_progress(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  return TcpProgress{info.tcpi_bytes_acked, info.tcpi_bytes_received};
}

void tune_socket(int fd) {
  int on = 1, idle = 1, interval = 1, count = 1;
  unsigned int user_timeout_ms = 2000;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

}  // namespace boxgate::redis
