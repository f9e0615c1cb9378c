// libboxgate-device's message handling without MQTT: reading commands,
// writing replies, choosing the reply topic, the duplicate cache and the
// outbox's overflow policy.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "device/command_codec.hpp"
#include "device/outbox.hpp"
#include "device/reply_cache.hpp"

namespace boxgate::device {
namespace {

RequestId req(const char* id) { return *RequestId::parse(id); }
BoxId box(const char* id) { return *BoxId::parse(id); }

TEST(DeviceCodec, ReadsMethodAndParams) {
  ParsedCommand c = parse_command(R"({"id":"r1","method":"set","params":{"level":3}})");
  EXPECT_EQ(c.problem, "");
  EXPECT_EQ(c.method, "set");
  EXPECT_EQ(c.params, nlohmann::json({{"level", 3}}));
  ParsedCommand bare = parse_command(R"({"id":"r1","method":7})");
  EXPECT_EQ(bare.problem, "");
  EXPECT_EQ(bare.method, "") << "a method that is not a string is no method";
  EXPECT_TRUE(bare.params.is_null());
  EXPECT_EQ(parse_command("[1,2]").problem, "") << "not an object: no method, still JSON";
}

TEST(DeviceCodec, RefusesWhatIsNotJsonOrTooDeepWithoutRecursing) {
  EXPECT_NE(parse_command("{\"method\":").problem.find("not JSON"), std::string::npos);
  EXPECT_NE(parse_command("\xff").problem, "");
  std::string deep(100000, '[');
  EXPECT_NE(parse_command(deep).problem.find("deeper than 64"), std::string::npos);
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(parse_command(ok).problem, "");
}

TEST(DeviceCodec, RepliesCarryTheIdFirst) {
  EXPECT_EQ(result_reply(req("r-1"), {{"pong", true}}), R"({"id":"r-1","result":{"pong":true}})");
  EXPECT_EQ(error_reply(req("r-1"), "busy", "try later"),
            R"({"id":"r-1","error":{"code":"busy","message":"try later"}})");
  // Invalid UTF-8 in a result is replaced, never thrown.
  EXPECT_NO_THROW(result_reply(req("r-1"), std::string("\xff\xfe")));
}

TEST(DeviceCodec, ReplyTopicHonoursOnlyTheBoxsOwnResponseTopic) {
  Topics topics("dev");
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::nullopt), "dev/b1/response/r1");
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::string("dev/b1/response/r1")), "dev/b1/response/r1");
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::string("dev/b1/response")), "dev/b1/response");
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::string("dev/b2/response/r1")), "dev/b1/response/r1")
      << "another box's topic is never used";
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::string("dev/b1/status")), "dev/b1/response/r1");
  EXPECT_EQ(reply_topic(topics, box("b1"), req("r1"), std::string("elsewhere/x")), "dev/b1/response/r1");
}

TEST(DeviceReplyCache, ADuplicateIsNeverRunTwice) {
  ReplyCache cache(4, 1024);
  EXPECT_EQ(cache.admit("a"), ReplyCache::Seen::new_command);
  EXPECT_EQ(cache.admit("a"), ReplyCache::Seen::running) << "still running: ignored, its reply is coming";
  cache.answered("a", {"t", "reply-a", "corr"});
  EXPECT_EQ(cache.admit("a"), ReplyCache::Seen::answered);
  ASSERT_NE(cache.reply("a"), nullptr);
  EXPECT_EQ(cache.reply("a")->payload, "reply-a");
  EXPECT_EQ(cache.reply("a")->correlation, "corr");
}

TEST(DeviceReplyCache, BoundedByEntriesAndBytesOldestFirst) {
  ReplyCache cache(3, 100);
  for (const char* id : {"a", "b", "c", "d"}) {
    cache.admit(id);
    cache.answered(id, {"t", "0123456789", ""});
  }
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.admit("a"), ReplyCache::Seen::new_command) << "the oldest went first";
  ReplyCache small(10, 30);
  small.admit("x");
  small.answered("x", {"t", std::string(100, 'x'), ""});
  EXPECT_EQ(small.admit("x"), ReplyCache::Seen::answered_not_kept) << "too large to keep, still never run again";
  EXPECT_EQ(small.bytes(), 0u);
  for (const char* id : {"p", "q", "r"}) {
    small.admit(id);
    small.answered(id, {"t", std::string(12, 'y'), ""});
  }
  EXPECT_LE(small.bytes(), 30u);
}

Outgoing message(Outgoing::Kind kind, std::size_t payload_bytes) {
  return Outgoing{kind, "t", std::string(payload_bytes, 'p'), {}, {}, false};
}

TEST(DeviceOutbox, EventsAreRefusedWhenFullRepliesEvictTheOldestEvent) {
  Outbox outbox(3, 1000);
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::telemetry, 10)));
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::reply, 10)));
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::telemetry, 20)));
  EXPECT_FALSE(outbox.push(message(Outgoing::Kind::telemetry, 5))) << "full: a new event is refused";
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::reply, 30))) << "a reply evicts the oldest event";
  EXPECT_EQ(outbox.evicted(), 1u);
  EXPECT_EQ(outbox.pop().payload.size(), 10u);  // the first reply
  EXPECT_EQ(outbox.pop().payload.size(), 20u);  // the newer event stayed
  EXPECT_EQ(outbox.pop().payload.size(), 30u);
  EXPECT_TRUE(outbox.empty());
  EXPECT_EQ(outbox.bytes(), 0u);
}

TEST(DeviceOutbox, RepliesAloneFillItByBytes) {
  Outbox outbox(100, 50);
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::reply, 30)));
  EXPECT_FALSE(outbox.push(message(Outgoing::Kind::reply, 30))) << "no event to evict: refused";
  EXPECT_TRUE(outbox.push(message(Outgoing::Kind::status, 10)));
  Outgoing again = message(Outgoing::Kind::reply, 5);
  again.payload = "again";
  EXPECT_TRUE(outbox.push(again, /*front=*/true));
  EXPECT_EQ(outbox.pop().payload, "again") << "a message that lost its PUBACK goes first";
}

}  // namespace
}  // namespace boxgate::device
