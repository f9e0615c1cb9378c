#pragma once
// The Redis Cluster key space: which of the 16384 hash slots a key (or a
// shard channel, which hashes the same way) falls in, and which master
// serves each slot. Pure values and functions: no I/O, no threads.
//
// The map is read from a CLUSTER SLOTS reply. The reply comes from Redis, not
// from a caller, but it is still checked like untrusted input: every type,
// every range, with loops over a tree of fixed depth (no recursion).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace boxgate::redis {

inline constexpr std::uint16_t kSlotCount = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the Redis
// Cluster specification's key checksum. crc16("123456789") == 0x31C3.
std::uint16_t crc16(std::string_view bytes) noexcept;

// The slot of a key or shard channel: crc16 of the whole name, or of the
// first non-empty `{...}` hash tag in it, modulo 16384.
std::uint16_t key_slot(std::string_view key) noexcept;

struct NodeAddress {
  std::string host;  // an IP literal as Redis announces it (no brackets for IPv6)
  int port = 0;
  bool operator==(const NodeAddress&) const = default;
  // host:port, or [host]:port for IPv6.
  std::string text() const;
};

// "host:port" or "[v6]:port" (a seed of redis_nodes, or the target of a
// MOVED/ASK error); nullopt when it is neither.
std::optional<NodeAddress> parse_node_address(std::string_view text);

// The slots-to-master map of one cluster view.
class SlotMap {
 public:
  // From a CLUSTER SLOTS reply. `asked` is the node that answered: Redis
  // announces an empty IP for "the address you reached me on". nullopt when
  // the reply is not a well-formed CLUSTER SLOTS answer.
  static std::optional<SlotMap> from_cluster_slots(const redisReply* reply, const NodeAddress& asked);

  // The master of `slot`, or nullptr when no node serves it.
  const NodeAddress* master_of(std::uint16_t slot) const noexcept;
  // Every master the map has named (each once; after move_slot() one may
  // be left serving no slot until the next refresh replaces the map).
  const std::vector<NodeAddress>& masters() const noexcept { return masters_; }
  // Slots with a master; kSlotCount when the whole key space is served.
  std::size_t covered_slots() const noexcept;
  bool complete() const noexcept { return covered_slots() == kSlotCount; }
  // A MOVED error says where one slot lives now, ahead of the next refresh.
  void move_slot(std::uint16_t slot, const NodeAddress& to);

  bool operator==(const SlotMap&) const = default;

 private:
  std::size_t index_of(const NodeAddress& node);

  static constexpr std::uint16_t kNone = 0xFFFF;
  std::vector<NodeAddress> masters_;
  std::vector<std::uint16_t> owner_ = std::vector<std::uint16_t>(kSlotCount, kNone);
};

// The error of a command sent to the wrong node: "MOVED <slot> <host:port>"
// (the slot lives there now) or "ASK <slot> <host:port>" (this key is being
// migrated there: send ASKING, then the command, to that node once).
struct Redirect {
  enum class Kind { moved, ask };
  Kind kind;
  std::uint16_t slot;
  NodeAddress to;
};
std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace boxgate::redis
