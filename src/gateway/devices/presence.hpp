#pragma once
// PresenceReader: a box's presence as the bridge keeps it in Redis
// (docs/contract.md, "Presence"): the hash {prefix}/{box}/presence with
// `online` ("1"/"0") and `since` (ms since epoch of the last change).
//
// Thread ownership: loop thread only, like the redis::Commands connection it
// reads on (the gateway's command connection; one HMGET per read, pipelined
// with whatever else this loop iteration sends). Every callback runs exactly
// once on the loop thread when read() returned true.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/ids.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"

namespace boxgate::gateway {

struct Presence {
  bool online = false;
  std::int64_t since_ms = 0;  // when it changed to `online`, ms since the epoch (UTC)
  friend bool operator==(const Presence&, const Presence&) = default;
};

// The presence the two hash fields hold (nullopt each when absent): both
// absent, or either malformed (online not "1"/"0", since not 1..18 decimal
// digits), is nullopt -- nothing usable is stored. Pure.
std::optional<Presence> presence_from_fields(std::optional<std::string_view> online,
                                             std::optional<std::string_view> since);

// "2024-05-01T12:34:56.789Z": RFC 3339, UTC, milliseconds. Pure.
std::string rfc3339_utc_ms(std::int64_t ms_since_epoch);

class PresenceReader {
 public:
  // ok=false: Redis failed (connection lost, error reply); ok=true with
  // nullopt: no presence stored for the box.
  using ReadCallback = std::function<void(bool ok, std::optional<Presence> presence)>;

  PresenceReader(const Topics& topics, redis::Commands& redis) : topics_(topics), redis_(redis) {}

  // false when Redis is not up (not connected, or stalled): the callback is
  // then not called, and the caller answers at once rather than wait.
  bool read(const BoxId& box, ReadCallback done);

 private:
  const Topics& topics_;
  redis::Commands& redis_;
};

}  // namespace boxgate::gateway
