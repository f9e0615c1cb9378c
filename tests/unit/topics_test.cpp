#include "boxgate/topics.hpp"

#include <gtest/gtest.h>

#include "boxgate/redis/slot_map.hpp"

using namespace boxgate;

namespace {
BoxId box(const char* s) { return *BoxId::parse(s); }
RequestId req(const char* s) { return *RequestId::parse(s); }
}  // namespace

TEST(Topics, BuildsEveryNameFromTheContract) {
  Topics t("dev");
  EXPECT_EQ(t.request_topic(box("b1"), req("r1")), "dev/b1/request/r1");
  EXPECT_EQ(t.device_request_filter(box("b1")), "dev/b1/request/+");
  EXPECT_EQ(t.response_channel(box("b1"), req("r1")), "dev/b1/response/r1");
  EXPECT_EQ(t.response_topic_without_id(box("b1")), "dev/b1/response");
  EXPECT_EQ(t.reply_filter_with_id(""), "dev/+/response/+");
  EXPECT_EQ(t.reply_filter_without_id(""), "dev/+/response");
  EXPECT_EQ(t.reply_filter_with_id("bridges"), "$share/bridges/dev/+/response/+");
}

TEST(Topics, ParsesBothReplyForms) {
  Topics t("site/a");
  auto with_id = t.parse_reply_topic("site/a/box-7/response/r-9");
  ASSERT_TRUE(with_id);
  EXPECT_EQ(with_id->box.str(), "box-7");
  ASSERT_TRUE(with_id->request);
  EXPECT_EQ(with_id->request->str(), "r-9");
  auto without = t.parse_reply_topic("site/a/box-7/response");
  ASSERT_TRUE(without);
  EXPECT_FALSE(without->request);
}

TEST(Topics, RejectsForeignOrMalformedTopics) {
  Topics t("dev");
  for (const char* bad : {"other/b/response/r", "dev/b/request/r", "dev//response/r", "dev/b/response/",
                          "dev/b/response/r/extra", "dev/b+/response/r", "dev/b/responses", "dev/b",
                          "devx/b/response/r", "dev"}) {
    EXPECT_FALSE(t.parse_reply_topic(bad)) << bad;
  }
  EXPECT_TRUE(t.parse_request_topic("dev/b/request/r"));
  EXPECT_FALSE(t.parse_request_topic("dev/b/request"));
}

TEST(Topics, PrefixMustBeIdSegments) {
  EXPECT_TRUE(is_valid_prefix("dev"));
  EXPECT_TRUE(is_valid_prefix("a/b.c"));
  EXPECT_FALSE(is_valid_prefix(""));
  EXPECT_FALSE(is_valid_prefix("a/"));
  EXPECT_FALSE(is_valid_prefix("a/+"));
  EXPECT_FALSE(is_valid_prefix("#"));
  EXPECT_THROW(Topics("dev/#"), std::invalid_argument);
}

// The bridge names a stream and its byte count in one script: in a Redis
// Cluster both must hash to one slot, whatever the prefix and box.
TEST(Topics, StreamByteCountSharesItsStreamsSlot) {
  for (const char* prefix : {"dev", "a/b.c", "x:y-z"}) {
    Topics t(prefix);
    for (const char* b : {"b1", "box-1", "Box_9.x:y"}) {
      std::string stream = t.box_events_stream(box(b));
      EXPECT_EQ(redis::key_slot(t.events_bytes_key(stream)), redis::key_slot(stream)) << stream;
    }
    std::string fleet = t.fleet_events_stream();
    EXPECT_EQ(redis::key_slot(t.events_bytes_key(fleet)), redis::key_slot(fleet)) << fleet;
  }
  EXPECT_EQ(Topics("dev").events_bytes_key("dev/b1/events"), "dev/b1/events/bytes{dev/b1/events}");
}
