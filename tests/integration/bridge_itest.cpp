// The bridge on its own: what it stores and publishes, what it drops (and
// counts), and that garbage never stalls it.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack = std::make_unique<Stack>("bridge");
    br = stack->add_bridge({"--max-reply-bytes", "64", "--result-ttl-ms", "5000"});
  }
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
  int br = 0;
};

TEST_F(BridgeTest, ForwardsVerbatimDropsInvalidRepliesAndKeepsGoing) {
  test::Subscriber replies(stack->redis().port());
  replies.psubscribe("dev/*");
  MqttProbe device(stack->mqtt_port());

  // Invalid: ids off-pattern in the topic, no/invalid id in the payload, too large.
  device.publish("dev/bad box/response/r1", R"({"id":"r1"})");
  device.publish("dev/box-1/response/bad*id", R"({"id":"x"})");
  device.publish("dev/box-1/response", R"({"result":1})");
  device.publish("dev/box-1/response", R"({"id":"a b"})");
  device.publish("dev/box-1/response", "not json");
  device.publish("dev/box-1/response/big", R"({"id":"big","pad":")" + std::string(100, 'x') + "\"}");
  // Valid, not JSON-normalised on the way: bytes as sent.
  const std::string payload = "{ \"id\":\"ok-1\" , \"result\" :\"\xE2\x9C\x93\" }";
  device.publish("dev/box-1/response/ok-1", payload);
  device.publish("dev/box-2/response", R"({"id":"ok-2"})");

  ASSERT_TRUE(replies.wait_for(2, 3s)) << stack->logs();
  EXPECT_FALSE(replies.wait_for(3, 300ms)) << "an invalid reply was published: " << replies.messages().back().channel;
  auto got = replies.messages();
  EXPECT_EQ(got[0].channel, "dev/box-1/response/ok-1");
  EXPECT_EQ(got[0].payload, payload);
  EXPECT_EQ(got[1].channel, "dev/box-2/response/ok-2");
  EXPECT_EQ(stack->redis().get("dev/box-1/response/ok-1"), payload);
  long long ttl = stack->redis().client().pttl("dev/box-1/response/ok-1");
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5000);

  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_received_total") == 8.0; }, 2s));
  auto dropped = [&](const char* reason) {
    return metric(br, std::string("boxgate_replies_dropped_total{reason=\"") + reason + "\"}").value_or(-1);
  };
  EXPECT_EQ(dropped("invalid_topic"), 2.0);
  EXPECT_EQ(dropped("invalid_id"), 3.0);
  EXPECT_EQ(dropped("too_large"), 1.0);
  EXPECT_EQ(metric(br, "boxgate_replies_forwarded_total"), 2.0);
  EXPECT_EQ(get(br, "/healthz").status, 200);
}

}  // namespace
}  // namespace boxgate::itest
