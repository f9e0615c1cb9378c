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

// Every Redis socket (hiredis connections and shard links): keepalive and a
// 2 s TCP user timeout, so a dead peer host is noticed within ~2 s even on a
// connection that cannot PING; TCP_NODELAY, so a pipeline leaves at once.
void tune_socket(int fd);

}  // namespace boxgate::redis
