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

}  // namespace boxgate::redis
