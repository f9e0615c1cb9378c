#pragma once
// Whether bytes still move on a TCP connection, from the kernel's counters.
// A PING queued behind megabytes of SETs (or a GET of a large reply) waits
// long after Redis last answered; the kernel still sees the peer acknowledge
// what we send and send what we read, so the connection is busy, not dead.

#include <cstdint>
#include <optional>

namespace boxgate::redis {

struct TcpProgress {
  std::uint64_t bytes_acked = 0;     // of ours, acknowledged by the peer
  std::uint64_t bytes_received = 0;  // from the peer
  bool operator==(const TcpProgress&) const = default;
};

// nullopt when the socket gives no TCP_INFO (then only replies count).
std::optional<TcpProgress> tcp_progress(int fd);

}  // namespace boxgate::redis
