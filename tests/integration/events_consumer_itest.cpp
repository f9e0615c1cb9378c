// Backends consume without loss, as docs/events.md
// shows: a consumer-group consumer of the fleet stream stops (having taken
// some events without acknowledging them), events arrive meanwhile, it
// restarts, reads its pending entries (id 0) then new ones (>), and ends up
// having acknowledged every event exactly once. And two bridges in one
// share group forward each event once.

#include <gtest/gtest.h>

#include <set>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::RedisClient;
using test::RespValue;

const std::string kStream = "dev/events";
const std::string kGroup = "backend";

// The ids and payloads of one XREADGROUP reply.
std::vector<std::pair<std::string, std::string>> read_group(RedisClient& redis, const std::string& consumer,
                                                            const std::string& from) {
  RespValue reply = redis.command({"XREADGROUP", "GROUP", kGroup, consumer, "COUNT", "100", "BLOCK", "1000",
                                   "STREAMS", kStream, from});
  std::vector<std::pair<std::string, std::string>> out;
  if (reply.type != RespValue::Type::array) return out;
  for (const RespValue& stream : reply.elements) {
    for (const RespValue& entry : stream.elements.at(1).elements) {
      std::string payload;
      const auto& fields = entry.elements.at(1).elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "payload") payload = fields[i + 1].str;
      }
      out.emplace_back(entry.elements.at(0).str, payload);
    }
  }
  return out;
}

class EventsConsumerTest : public StackTest {
 protected:
  EventsConsumerTest() : StackTest("events-consumer") {}
};

TEST_F(EventsConsumerTest, ARestartedConsumerGetsEveryEventOnce) {
  int br = stack->add_bridge();
  RedisClient admin(stack->redis().port());
  ASSERT_EQ(admin.command({"XGROUP", "CREATE", kStream, kGroup, "$", "MKSTREAM"}).str, "OK");
  MqttProbe device(stack->mqtt_port());
  std::multiset<std::string> handled;  // payloads acknowledged, with repeats

  for (int i = 0; i < 5; ++i) device.publish("dev/box-1/event/n", "e" + std::to_string(i));
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 5.0; }, 5s));
  {
    // The consumer's first life: takes all 5, acknowledges 3, then dies.
    RedisClient consumer(stack->redis().port());
    auto got = read_group(consumer, "worker-1", ">");
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(consumer.command({"XACK", kStream, kGroup, got[i].first}).integer, 1);
      handled.insert(got[i].second);
    }
  }
  // While it is down.
  for (int i = 5; i < 12; ++i) device.publish("dev/box-2/event/n", "e" + std::to_string(i));
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 12.0; }, 5s));

  // Its second life, as docs/events.md: pending first (id 0), then new (>).
  RedisClient consumer(stack->redis().port());
  auto pending = read_group(consumer, "worker-1", "0");
  ASSERT_EQ(pending.size(), 2u) << "the two it took but never acknowledged";
  auto fresh = read_group(consumer, "worker-1", ">");
  ASSERT_EQ(fresh.size(), 7u);
  for (const auto& batch : {pending, fresh}) {
    for (const auto& [id, payload] : batch) {
      EXPECT_EQ(consumer.command({"XACK", kStream, kGroup, id}).integer, 1) << id;
      handled.insert(payload);
    }
  }
  EXPECT_TRUE(read_group(consumer, "worker-1", "0").empty()) << "nothing left pending";
  EXPECT_TRUE(read_group(consumer, "worker-1", ">").empty()) << "nothing left undelivered";
  ASSERT_EQ(handled.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(handled.count("e" + std::to_string(i)), 1u) << i;
}

TEST_F(EventsConsumerTest, TwoBridgesInAShareGroupForwardEachEventOnce) {
  int br1 = stack->add_bridge({"--share-group", "g1"});
  int br2 = stack->add_bridge({"--share-group", "g1"});
  MqttProbe device(stack->mqtt_port());
  constexpr int kEvents = 200;
  for (int i = 0; i < kEvents; ++i) device.publish("dev/box-" + std::to_string(i % 7) + "/event/n", std::to_string(i));
  auto forwarded = [&] {
    return metric(br1, "boxgate_events_forwarded_total").value_or(0) +
           metric(br2, "boxgate_events_forwarded_total").value_or(0);
  };
  ASSERT_TRUE(test::eventually([&] { return forwarded() >= kEvents; }, 10s)) << forwarded();
  // A fence instead of a pause: markers on a box of their own, published after
  // the events, until each bridge has forwarded one. The broker delivers to
  // each subscriber in order, so a duplicate event would have reached its
  // bridge before that bridge's marker.
  const double before1 = metric(br1, "boxgate_events_forwarded_total").value_or(0);
  const double before2 = metric(br2, "boxgate_events_forwarded_total").value_or(0);
  int markers = 0;
  ASSERT_TRUE(test::eventually(
      [&] {
        device.publish("dev/fence/event/n", std::to_string(markers++));
        return metric(br1, "boxgate_events_forwarded_total").value_or(0) > before1 &&
               metric(br2, "boxgate_events_forwarded_total").value_or(0) > before2;
      },
      5s))
      << "a bridge got no marker";
  ASSERT_TRUE(test::eventually([&] { return forwarded() >= kEvents + markers; }, 5s)) << forwarded();
  EXPECT_EQ(forwarded(), kEvents + markers);
  RedisClient redis(stack->redis().port());
  EXPECT_EQ(redis.command({"XLEN", kStream}).integer, kEvents + markers);
  long long per_box = 0;
  for (int b = 0; b < 7; ++b) per_box += redis.command({"XLEN", "dev/box-" + std::to_string(b) + "/events"}).integer;
  EXPECT_EQ(per_box, kEvents);
  // Both took a share (the broker splits a group's messages).
  EXPECT_GT(metric(br1, "boxgate_events_forwarded_total").value_or(0), 0.0);
  EXPECT_GT(metric(br2, "boxgate_events_forwarded_total").value_or(0), 0.0);
}

}  // namespace
}  // namespace boxgate::itest
