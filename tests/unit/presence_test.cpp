// Presence without a network: the status topic and key names, the bridge's
// status payload parser and its latest-wins queue (on a Redis connection
// that is never started, so everything stays queued), and the gateway's
// reading of the stored fields.

#include <gtest/gtest.h>

#include <string>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "devices/presence.hpp"
#include "presence_tracker.hpp"

using namespace boxgate;
using bridge::parse_status_payload;

namespace {

TEST(PresenceTopics, NamesFromTheContract) {
  Topics t("site/a");
  BoxId box = *BoxId::parse("box-7");
  EXPECT_EQ(t.status_topic(box), "site/a/box-7/status");
  EXPECT_EQ(t.status_filter(), "site/a/+/status");
  EXPECT_EQ(t.presence_key(box), "site/a/box-7/presence");
  auto parsed = t.parse_status_topic("site/a/box-7/status");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->str(), "box-7");
}

TEST(PresenceTopics, ShapeAndValidation) {
  Topics t("dev");
  // The shape the bridge dispatches on: one level between prefix and /status.
  for (const char* shaped : {"dev/box-1/status", "dev/bad box/status", "dev//status", "dev/a*b/status"}) {
    EXPECT_TRUE(t.is_status_topic(shaped)) << shaped;
  }
  for (const char* other : {"dev/box-1/response/status", "dev/status", "dev/box-1/status/x", "dev/box-1/statusx",
                            "other/box-1/status", "devx/box-1/status", "dev/box-1/response", ""}) {
    EXPECT_FALSE(t.is_status_topic(other)) << other;
    EXPECT_FALSE(t.parse_status_topic(other)) << other;
  }
  // Shaped but not a valid box id: never a key.
  for (const char* bad : {"dev/bad box/status", "dev//status", "dev/a*b/status", "dev/-x/status"}) {
    EXPECT_FALSE(t.parse_status_topic(bad)) << bad;
  }
}

TEST(StatusPayload, TheTwoWords) {
  EXPECT_EQ(parse_status_payload("online"), true);
  EXPECT_EQ(parse_status_payload("offline"), false);
  for (const char* near : {"Online", "ONLINE", " online", "online\n", "onlin", "offline ", "\"online\"", "1", "true",
                           ""}) {
    EXPECT_EQ(parse_status_payload(near), std::nullopt) << near;
  }
  EXPECT_EQ(parse_status_payload(std::string_view("online\0", 7)), std::nullopt);
}

TEST(StatusPayload, JsonObjectWithOneBooleanOnline) {
  EXPECT_EQ(parse_status_payload(R"({"online":true})"), true);
  EXPECT_EQ(parse_status_payload(R"( {"online" : false, "battery": 71, "fw": {"v": [1, 2]}} )"), false);
  EXPECT_EQ(parse_status_payload(R"({"\u006fnline":true})"), true);  // the key after decoding
  for (const char* bad : {
           R"({"online":"true"})", R"({"online":1})", R"({"online":null})", R"({})", R"({"state":"online"})",
           R"({"x":{"online":true}})",  // nested members do not count
           R"([{"online":true}])", R"("online")", R"(true)",
           R"({"online":true,"online":false})",  // ambiguous: parsers differ on which wins
           R"({"online":true})" "x", R"({"online":tru})", R"({"online":true,})", "\xEF\xBB\xBF{\"online\":true}",
           "{\"online\":true,\"s\":\"\xC3\x28\"}",  // invalid UTF-8
       }) {
    EXPECT_EQ(parse_status_payload(bad), std::nullopt) << bad;
  }
}

TEST(StatusPayload, BoundedInSizeAndDepth) {
  std::string padded = R"({"online":true,"pad":")";
  padded += std::string(bridge::kMaxStatusBytes - padded.size() - 2, 'x') + "\"}";
  ASSERT_EQ(padded.size(), bridge::kMaxStatusBytes);
  EXPECT_EQ(parse_status_payload(padded), true);
  padded.insert(padded.size() - 2, "x");
  EXPECT_EQ(parse_status_payload(padded), std::nullopt);

  auto nested = [](int levels) {
    return R"({"online":true,"a":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  EXPECT_EQ(parse_status_payload(nested(15)), true);  // 16 levels with the object
  EXPECT_EQ(parse_status_payload(nested(16)), std::nullopt);
  // Nesting that would overflow a recursive parser on a small stack: the
  // iterative scan stops it at level 17; a megabyte of it never gets past
  // the size check.
  EXPECT_EQ(parse_status_payload(std::string(4000, '[')), std::nullopt);
  EXPECT_EQ(parse_status_payload(std::string(1 << 20, '{')), std::nullopt);
}

// The tracker on a Redis connection that never starts: nothing leaves, so
// the queue's bound and its latest-wins rule show in backlog() and metrics.
class PresenceQueue : public ::testing::Test {
 protected:
  PresenceQueue()
      : topics("dev"),
        readiness(metrics),
        redis(loop, RedisSettings{}, readiness.dependency("redis"), {}, {}),
        tracker(topics, {2}, redis, metrics) {}
  double series(const std::string& name) {
    std::string text = metrics.render();
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
  }

  EventLoop loop;
  Topics topics;
  ops::Metrics metrics;
  ops::Readiness readiness;
  redis::Commands redis;
  bridge::PresenceTracker tracker;
};

TEST_F(PresenceQueue, KeepsOnlyTheLatestPerBoxAndBoundsTheBoxes) {
  tracker.accept("dev/box-1/status", "online");
  tracker.accept("dev/box-1/status", "offline");
  tracker.accept("dev/box-1/status", R"({"online":true})");
  EXPECT_EQ(tracker.backlog(), 1u);
  EXPECT_EQ(series("boxgate_presence_superseded_total"), 2);
  tracker.accept("dev/box-2/status", "offline");
  EXPECT_EQ(tracker.backlog(), 2u);
  tracker.accept("dev/box-3/status", "offline");  // a third box: over capacity
  EXPECT_EQ(tracker.backlog(), 2u);
  EXPECT_EQ(series(R"(boxgate_presence_dropped_total{reason="queue_full"})"), 1);
  tracker.accept("dev/box-2/status", "online");  // a queued box still takes its newer state
  EXPECT_EQ(tracker.backlog(), 2u);
  EXPECT_EQ(series("boxgate_presence_queued"), 2);

  tracker.accept("dev/bad box/status", "online");
  tracker.accept("dev/box-1/status", "maybe");
  tracker.accept("dev/box-1/status", std::string(bridge::kMaxStatusBytes + 1, ' '));
  EXPECT_EQ(series(R"(boxgate_presence_dropped_total{reason="invalid_topic"})"), 1);
  EXPECT_EQ(series(R"(boxgate_presence_dropped_total{reason="invalid_payload"})"), 1);
  EXPECT_EQ(series(R"(boxgate_presence_dropped_total{reason="too_large"})"), 1);
  EXPECT_EQ(series("boxgate_presence_received_total"), 9);
  EXPECT_EQ(tracker.backlog(), 2u);

  tracker.abandon();
  EXPECT_EQ(tracker.backlog(), 0u);
  EXPECT_EQ(series(R"(boxgate_presence_dropped_total{reason="shutdown"})"), 2);
  EXPECT_EQ(series(R"(boxgate_presence_updates_total{state="online"})"), 0);
}

TEST(PresenceFields, OnlyWellFormedFieldsMakeAPresence) {
  using gateway::Presence;
  using gateway::presence_from_fields;
  EXPECT_EQ(presence_from_fields("1", "1714566896789"), (Presence{true, 1714566896789}));
  EXPECT_EQ(presence_from_fields("0", "0"), (Presence{false, 0}));
  EXPECT_EQ(presence_from_fields(std::nullopt, std::nullopt), std::nullopt);
  EXPECT_EQ(presence_from_fields("1", std::nullopt), std::nullopt);
  EXPECT_EQ(presence_from_fields(std::nullopt, "5"), std::nullopt);
  for (const char* online : {"", "2", "true", "01", " 1"}) EXPECT_EQ(presence_from_fields(online, "5"), std::nullopt);
  for (const char* since : {"", "-1", "+5", "5 ", "1e3", "0x10", "1234567890123456789"}) {
    EXPECT_EQ(presence_from_fields("1", since), std::nullopt) << since;
  }
}

TEST(PresenceFields, Rfc3339UtcWithMilliseconds) {
  EXPECT_EQ(gateway::rfc3339_utc_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(gateway::rfc3339_utc_ms(1714566896789), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(gateway::rfc3339_utc_ms(951782400005), "2000-02-29T00:00:00.005Z");
}

}  // namespace
