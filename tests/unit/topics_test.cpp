#include "boxgate/topics.hpp"

#include <gtest/gtest.h>

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
