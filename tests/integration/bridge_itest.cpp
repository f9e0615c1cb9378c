// The bridge on its own: what it stores and publishes, what it drops (and
// counts), and that garbage never stalls it.

#include <gtest/gtest.h>

#include "faults_support.hpp"
#include "support/records.hpp"

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
  // Valid, not JSON-normalised on the way: bytes as sent (ids a gateway issued).
  test::issue_command(stack->redis(), "box-1", "ok-1");
  test::issue_command(stack->redis(), "box-2", "ok-2");
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

// Result keys under ids in the store, by the admin's SCAN.
std::vector<std::string> result_keys(test::RedisServer& redis) {
  std::vector<std::string> keys;
  auto client = redis.client();
  std::string cursor = "0";
  do {
    auto reply = client.command({"SCAN", cursor, "MATCH", "dev/*/response/*", "COUNT", "1000"});
    cursor = reply.elements.at(0).str;
    for (const auto& key : reply.elements.at(1).elements) keys.push_back(key.str);
  } while (cursor != "0");
  return keys;
}

double dropped_unsolicited(int bridge_port) {
  return metric(bridge_port, R"(boxgate_replies_dropped_total{reason="unsolicited"})").value_or(-1);
}

// A reply is stored only under an id a gateway issued (its command record
// exists), so a device cannot fill Redis with replies nobody asked for; the
// reply to a real command is stored, and so is one after its timeout.
TEST(BridgeReplyGuard, StoresRepliesOnlyUnderIssuedIdsLateOnesToo) {
  Stack stack("bridge-guard");
  int gw = stack.add_gateway();
  int br = stack.add_bridge();
  MqttProbe device(stack.mqtt_port());
  device.subscribe("dev/+/request/+", 1);

  // Unsolicited: 20 replies of 100 kB (stored, they would sit 60 s each),
  // with an id in the topic or only in the payload.
  for (int i = 0; i < 20; ++i) {
    std::string id = "forged-" + std::to_string(i);
    std::string reply = R"({"id":")" + id + R"(","pad":")" + std::string(100000, 'x') + "\"}";
    device.publish(i % 2 ? "dev/box-1/response/" + id : "dev/box-1/response", reply);
  }
  ASSERT_TRUE(test::eventually([&] { return dropped_unsolicited(br) == 20.0; }, 10s))
      << dropped_unsolicited(br) << stack.logs();
  EXPECT_EQ(result_keys(stack.redis()), std::vector<std::string>{});
  EXPECT_EQ(metric(br, "boxgate_replies_forwarded_total"), 0.0);

  // A real command: its reply is stored and answers the caller.
  auto call = faults::post_async(gw, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "real-1"}});
  ASSERT_TRUE(device.wait_for(1, 5s)) << stack.logs();
  const std::string real = R"({"id":"real-1","result":"ok"})";
  device.publish("dev/box-1/response/real-1", real);
  HttpResult answered = call.get();
  EXPECT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(answered.body, real);
  EXPECT_EQ(stack.redis().get("dev/box-1/response/real-1"), real);

  // A late reply (after the gateway's 504) finds its record: stored, and the
  // status shows it as late.
  auto c = client(gw);
  HttpResult timed_out = post(*c, command_path("box-1", "timeout_ms=200"), kPing, {{"X-Request-Id", "late-2"}});
  EXPECT_EQ(timed_out.status, 504) << timed_out.body;
  const std::string late = R"({"id":"late-2","result":"late"})";
  device.publish("dev/box-1/response/late-2", late);
  EXPECT_TRUE(test::eventually([&] { return stack.redis().get("dev/box-1/response/late-2") == late; }, 5s));
  HttpResult status = get(gw, "/v1/devices/box-1/commands/late-2");
  ASSERT_EQ(status.status, 200) << status.body;
  auto doc = nlohmann::json::parse(status.body);
  EXPECT_EQ(doc.value("state", ""), "succeeded") << status.body;
  EXPECT_EQ(doc.value("late", false), true) << status.body;
  EXPECT_EQ(dropped_unsolicited(br), 20.0);
  stack.stop_daemons_and_check();
}

// Redis restarted without persistence lost the records of waiting commands;
// their gateways write them back once they reconnect, which may be after the
// bridge did. A reply arriving in that gap waits for its record (checked
// again for a moment) instead of being dropped as unsolicited.
TEST(BridgeReplyGuard, AReplyWaitsBrieflyForARecordLostInARedisRestart) {
  Stack stack("bridge-guard-restart");
  int br = stack.add_bridge();
  MqttProbe device(stack.mqtt_port());
  stack.redis().kill9();
  stack.redis().start();
  ASSERT_TRUE(test::eventually([&] { return get(br, "/readyz").status == 200; }, 5s)) << stack.logs();
  const std::string reply = R"({"id":"back-1","result":"ok"})";
  device.publish("dev/box-1/response/back-1", reply);
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_received_total") == 1.0; }, 5s));
  test::issue_command(stack.redis(), "box-1", "back-1");  // the gateway writing its record back
  EXPECT_TRUE(test::eventually([&] { return stack.redis().get("dev/box-1/response/back-1") == reply; }, 3s))
      << stack.logs();
  EXPECT_EQ(dropped_unsolicited(br), 0.0);
  stack.stop_daemons_and_check();
}

// A device choosing how often the bridge logs: a burst of unsolicited
// replies, each with a traceparent, gives a few lines, not one per reply.
TEST(BridgeReplyGuard, BurstOfUnsolicitedRepliesLogsBoundedLines) {
  Stack stack("bridge-log-burst");
  int br = stack.add_bridge();
  MqttProbe device(stack.mqtt_port());
  test::MqttPublishOptions traced;
  traced.user_properties = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  constexpr int kBurst = 300;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kBurst; ++i) {
    device.publish("dev/box-1/response/burst-" + std::to_string(i), "{}", 1, traced);
  }
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_received_total") == double(kBurst); }, 10s))
      << stack.logs();
  EXPECT_TRUE(test::eventually([&] { return dropped_unsolicited(br) == double(kBurst); }, 10s))
      << dropped_unsolicited(br);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  std::string log = stack.bridge().log();
  auto count = [&log](const std::string& needle) {
    std::size_t n = 0;
    for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  // At most one line of each kind a second (and one to start).
  const std::size_t bound = static_cast<std::size_t>(seconds) + 2;
  EXPECT_GE(count(": unsolicited"), 1u) << log;
  EXPECT_LE(count(": unsolicited"), bound) << log;
  EXPECT_GE(count("carries traceparent"), 1u) << log;
  EXPECT_LE(count("carries traceparent"), bound) << log;
  stack.stop_daemons_and_check();
}

}  // namespace
}  // namespace boxgate::itest
