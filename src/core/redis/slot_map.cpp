#include "boxgate/redis/slot_map.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include "boxgate/config.hpp"

namespace boxgate::redis {

namespace {

constexpr std::array<std::uint16_t, 256> make_crc_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<std::uint16_t, 256> kCrcTable = make_crc_table();

bool is_string(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

// [ip, port, id, ...] of one node in a CLUSTER SLOTS entry.
std::optional<NodeAddress> node_of(const redisReply* node, const NodeAddress& asked) {
  if (!node || node->type != REDIS_REPLY_ARRAY || node->elements < 2) return std::nullopt;
  const redisReply* ip = node->element[0];
  const redisReply* port = node->element[1];
  if (!is_string(ip) || !port || port->type != REDIS_REPLY_INTEGER) return std::nullopt;
  if (port->integer < 1 || port->integer > 65535) return std::nullopt;
  std::string host(ip->str, ip->len);
  if (host == "?") return std::nullopt;  // the node does not know its own address yet
  if (host.empty()) host = asked.host;   // "the address you reached me on"
  return NodeAddress{host, static_cast<int>(port->integer)};
}

}  // namespace

std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (unsigned char c : bytes) crc = static_cast<std::uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xFF]);
  return crc;
}

std::uint16_t key_slot(std::string_view key) noexcept {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    // "{}" is no tag: the whole key is hashed.
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) & (kSlotCount - 1));
}

// One syntax for addresses everywhere (config.hpp's parser: seeds,
// sentinels, MOVED/ASK targets).
std::string NodeAddress::text() const { return to_string(RedisAddress{host, port}); }

std::optional<NodeAddress> parse_node_address(std::string_view text) {
  std::string why;
  std::optional<RedisAddress> address = parse_redis_address(std::string(text), &why);
  if (!address) return std::nullopt;
  return NodeAddress{std::move(address->host), address->port};
}

std::optional<SlotMap> SlotMap::from_cluster_slots(const redisReply* reply, const NodeAddress& asked) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return std::nullopt;
  SlotMap map;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* entry = reply->element[i];
    // [start, end, master, replica...]
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 3) return std::nullopt;
    const redisReply* start = entry->element[0];
    const redisReply* end = entry->element[1];
    if (!start || !end || start->type != REDIS_REPLY_INTEGER || end->type != REDIS_REPLY_INTEGER) return std::nullopt;
    if (start->integer < 0 || end->integer < start->integer || end->integer >= kSlotCount) return std::nullopt;
    auto master = node_of(entry->element[2], asked);
    if (!master) continue;  // a master without an address serves nobody yet
    auto index = static_cast<std::uint16_t>(map.index_of(*master));
    std::fill(map.owner_.begin() + start->integer, map.owner_.begin() + end->integer + 1, index);
  }
  return map;
}

std::size_t SlotMap::index_of(const NodeAddress& node) {
  auto it = std::find(masters_.begin(), masters_.end(), node);
  if (it != masters_.end()) return static_cast<std::size_t>(it - masters_.begin());
  masters_.push_back(node);
  return masters_.size() - 1;
}

const NodeAddress* SlotMap::master_of(std::uint16_t slot) const noexcept {
  if (slot >= kSlotCount || owner_[slot] == kNone) return nullptr;
  return &masters_[owner_[slot]];
}

std::size_t SlotMap::covered_slots() const noexcept {
  return static_cast<std::size_t>(std::count_if(owner_.begin(), owner_.end(), [](auto o) { return o != kNone; }));
}

void SlotMap::move_slot(std::uint16_t slot, const NodeAddress& to) {
  if (slot >= kSlotCount) return;
  owner_[slot] = static_cast<std::uint16_t>(index_of(to));
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect::Kind kind;
  if (error.substr(0, 6) == "MOVED ") {
    kind = Redirect::Kind::moved;
    error.remove_prefix(6);
  } else if (error.substr(0, 4) == "ASK ") {
    kind = Redirect::Kind::ask;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  auto [end, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || end != error.data() + space || slot >= kSlotCount) return std::nullopt;
  auto to = parse_node_address(error.substr(space + 1));
  if (!to) return std::nullopt;
  return Redirect{kind, static_cast<std::uint16_t>(slot), *to};
}

}  // namespace boxgate::redis
