// What Redis and the configuration hand the topology code: addresses
// (redis_nodes, redis_sentinels, the target of a MOVED/ASK error), the
// MOVED/ASK error itself, and the key a slot is computed from. Properties:
// an address that parses prints back to text that parses to the same
// address, with a port in 1..65535; a redirect names a slot below 16384 and
// a parsable node; key_slot equals an independent bit-by-bit CRC16/XMODEM of
// the key's hash tag (the spec's rule, written out here once more).

#include <string>
#include <string_view>

#include "boxgate/config.hpp"
#include "boxgate/redis/slot_map.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {
namespace {

std::uint16_t crc16_bitwise(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (unsigned char byte : bytes) {
    crc = static_cast<std::uint16_t>(crc ^ (byte << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc;
}

// The Redis Cluster spec: the bytes between the first '{' and the first '}'
// after it, when there are any; else the whole key.
std::string_view hashed_part(std::string_view key) {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

void check_address(std::string_view text) {
  std::string why;
  auto address = parse_redis_address(std::string(text), &why);
  auto node = redis::parse_node_address(text);
  check(address.has_value() == node.has_value(), "the two address parsers disagree");
  if (!address) {
    check(!why.empty(), "a refused address has no reason");
    return;
  }
  check(address->port >= 1 && address->port <= 65535, "port out of range");
  check(!address->host.empty(), "empty host");
  auto again = parse_redis_address(to_string(*address), &why);
  check(again && *again == *address, "an address does not survive printing");
  check(node->text() == to_string(*address), "the two printers disagree");
}

}  // namespace

int redis_address(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_address(text);
  if (auto redirect = redis::parse_redirect(text)) {
    check(redirect->slot < redis::kSlotCount, "redirect slot out of range");
    check(redis::parse_node_address(redirect->to.text()).has_value(), "redirect target does not print back");
  }
  check(redis::key_slot(text) == crc16_bitwise(hashed_part(text)) % redis::kSlotCount,
        "key_slot differs from the spec's CRC16 of the hash tag");
  return 0;
}

}  // namespace boxgate::fuzz
