#include "boxgate/redis/slot_map.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "resp.hpp"

#include <memory>

using namespace boxgate::redis;

namespace {

using boxgate::test::parse_resp;

std::string node(const std::string& ip, int port, const std::string& id) {
  return "*3\r\n$" + std::to_string(ip.size()) + "\r\n" + ip + "\r\n:" + std::to_string(port) + "\r\n$" +
         std::to_string(id.size()) + "\r\n" + id + "\r\n";
}
std::string entry(int start, int end, const std::string& master, const std::string& replica = "") {
  return std::string("*") + (replica.empty() ? "3" : "4") + "\r\n:" + std::to_string(start) + "\r\n:" +
         std::to_string(end) + "\r\n" + master + replica;
}

const NodeAddress kAsked{"127.0.0.1", 7000};

}  // namespace

// The Redis Cluster specification's test vector, and XMODEM's check value.
TEST(SlotMap, Crc16MatchesTheSpecificationVector) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0x0000);
}

// Slots Redis itself reports (CLUSTER KEYSLOT on 7.0.15).
TEST(SlotMap, KeySlotMatchesRedis) {
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
}

TEST(SlotMap, HashTagsHashOnlyTheTag) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("{user1000}.following"));
  // Only the first {...} counts; an empty tag means no tag.
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot(std::string_view("foo{}{bar}")));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar"), crc16("foo{bar") % 16384);  // no closing brace
}

// A result key and the reply channel of the same name share a slot, so one
// node takes the SET and the SPUBLISH.
TEST(SlotMap, ResultKeyAndChannelShareASlot) {
  const std::string name = "dev/box-1/response/3f0c9a52-8d1e-4a55-9b7e-0d2d7f1b6c11";
  EXPECT_EQ(key_slot(name), key_slot(std::string(name)));
  EXPECT_LT(key_slot(name), kSlotCount);
}

TEST(SlotMap, ParsesNodeAddresses) {
  EXPECT_EQ(parse_node_address("127.0.0.1:7000"), (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(parse_node_address("[::1]:7001"), (NodeAddress{"::1", 7001}));
  EXPECT_EQ(parse_node_address("redis-a:6379"), (NodeAddress{"redis-a", 6379}));
  EXPECT_EQ((NodeAddress{"::1", 7001}).text(), "[::1]:7001");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":7000", "::1:7000", "[::1]7000", "[::1]:", "h:0", "h:65536",
                          "h:70x", "[::1"}) {
    EXPECT_FALSE(parse_node_address(bad)) << bad;
  }
}

TEST(SlotMap, ParsesClusterSlots) {
  auto reply = parse_resp("*3\r\n" + entry(0, 5460, node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7003, "d")) +
                          entry(5461, 10922, node("127.0.0.1", 7001, "b")) +
                          entry(10923, 16383, node("", 7002, "c")));
  auto map = SlotMap::from_cluster_slots(reply.get(), kAsked);
  ASSERT_TRUE(map);
  EXPECT_TRUE(map->complete());
  ASSERT_EQ(map->masters().size(), 3u);
  EXPECT_EQ(*map->master_of(0), (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->master_of(5460), (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->master_of(5461), (NodeAddress{"127.0.0.1", 7001}));
  // An empty IP means the address the client reached the node on.
  EXPECT_EQ(*map->master_of(16383), (NodeAddress{"127.0.0.1", 7002}));
}

TEST(SlotMap, AGapLeavesTheMapIncompleteAndMovedFillsIt) {
  auto reply = parse_resp("*2\r\n" + entry(0, 99, node("127.0.0.1", 7000, "a")) +
                          entry(200, 16383, node("127.0.0.1", 7001, "b")));
  auto map = SlotMap::from_cluster_slots(reply.get(), kAsked);
  ASSERT_TRUE(map);
  EXPECT_EQ(map->covered_slots(), 16384u - 100u);
  EXPECT_EQ(map->master_of(150), nullptr);
  map->move_slot(150, {"127.0.0.1", 7002});
  EXPECT_EQ(*map->master_of(150), (NodeAddress{"127.0.0.1", 7002}));
  EXPECT_EQ(map->masters().size(), 3u);
}

TEST(SlotMap, RefusesMalformedReplies) {
  for (const std::string& bad : std::vector<std::string>{
           "+OK\r\n",
           "*1\r\n:5\r\n",                                                  // entry not an array
           "*1\r\n*2\r\n:0\r\n:5\r\n",                                      // no master
           "*1\r\n" + entry(10, 5, node("127.0.0.1", 7000, "a")),           // end before start
           "*1\r\n" + entry(0, 16384, node("127.0.0.1", 7000, "a")),        // past the last slot
           "*1\r\n" + entry(-1, 5, node("127.0.0.1", 7000, "a")),           // negative
           "*1\r\n*3\r\n$1\r\n0\r\n:5\r\n" + node("127.0.0.1", 7000, "a"),  // start not an integer
       }) {
    auto reply = parse_resp(bad);
    EXPECT_FALSE(SlotMap::from_cluster_slots(reply.get(), kAsked)) << bad;
  }
  EXPECT_FALSE(SlotMap::from_cluster_slots(nullptr, kAsked));
  // A master with port 0 or an unknown address ("?") serves nothing: skipped.
  auto unknown = parse_resp("*1\r\n" + entry(0, 16383, node("?", 7000, "a")));
  auto map = SlotMap::from_cluster_slots(unknown.get(), kAsked);
  ASSERT_TRUE(map);
  EXPECT_EQ(map->covered_slots(), 0u);
}

TEST(SlotMap, ParsesRedirects) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->to, (NodeAddress{"127.0.0.1", 6381}));
  auto ask = parse_redirect("ASK 12182 [::1]:7002");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->to, (NodeAddress{"::1", 7002}));
  for (const char* bad : {"ERR wrong", "MOVED", "MOVED 16384 127.0.0.1:1", "MOVED x 127.0.0.1:1", "ASK 5 nowhere",
                          "MOVED 5"}) {
    EXPECT_FALSE(parse_redirect(bad)) << bad;
  }
}
