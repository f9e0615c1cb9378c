// Fault tests, misbehaving devices: duplicate and late
// replies get one response each and are counted; garbage replies are dropped,
// counted, and never stop the bridge from serving.

#include <gtest/gtest.h>

#include "faults_support.hpp"
#include "support/records.hpp"

namespace boxgate::itest::faults {
namespace {


class ReplyFaults : public StackTest {
 protected:
  ReplyFaults() : StackTest("faults-replies") {}
};

TEST_F(ReplyFaults, DuplicateReplyGivesOneResponseAndIsCounted) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);

  auto call = post_async(gw, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "dup-1"}});
  ASSERT_TRUE(device.wait_for(1, 5s)) << stack->logs();
  const std::string first = R"({"id":"dup-1","result":"first"})";
  const std::string second = R"({"id":"dup-1","result":"second"})";
  device.publish("dev/box-1/response/dup-1", first);
  device.publish("dev/box-1/response/dup-1", second);
  HttpResult r = call.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, first);

  // The duplicate is counted where it ended: by the gateway if its
  // subscription was still open, else by the bridge (PUBLISH reached nobody).
  double ignored = 0, unclaimed = 0;
  EXPECT_TRUE(test::eventually(
      [&] {
        ignored = metric(gw, "boxgate_replies_ignored_total").value_or(0);
        unclaimed = metric(br, "boxgate_replies_unclaimed_total").value_or(0);
        return metric(br, "boxgate_replies_forwarded_total") == 2.0 && ignored + unclaimed >= 1.0;
      },
      3s));
  report("gateway_replies_ignored_total", ignored);
  report("bridge_replies_unclaimed_total", unclaimed);
  EXPECT_EQ(ignored + unclaimed, 1.0);
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="ok"})"), 1.0);
  // The result key holds the last reply forwarded (SET overwrites).
  report("result_key_after_duplicate", stack->redis().get("dev/box-1/response/dup-1").value_or("(none)"));
}

// A reply after the 504: counted as unclaimed by the bridge, kept in the
// result key, and handed to a retry with the same X-Request-Id without
// publishing the command again.
TEST_F(ReplyFaults, LateReplyIsCountedStoredAndReturnedToARetry) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);

  HttpResult timed_out;
  {
    auto c = client(gw);
    timed_out = post(*c, command_path("box-1", "timeout_ms=300"), kPing, {{"X-Request-Id", "late-1"}});
  }
  EXPECT_EQ(timed_out.status, 504) << timed_out.body;
  EXPECT_EQ(timed_out.error_code(), "device_timeout");
  report("timeout_answered_after_ms", timed_out.elapsed.count());
  ASSERT_EQ(device.count(), 1u);

  const std::string reply = R"({"id":"late-1","result":"late"})";
  device.publish("dev/box-1/response/late-1", reply);
  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_unclaimed_total") == 1.0; }, 3s))
      << metric(br, "boxgate_replies_unclaimed_total").value_or(-1);
  report("bridge_replies_unclaimed_total", metric(br, "boxgate_replies_unclaimed_total").value_or(-1));
  EXPECT_EQ(stack->redis().get("dev/box-1/response/late-1"), reply);

  auto c = client(gw);
  HttpResult retry = post(*c, command_path("box-1", "timeout_ms=300"), kPing, {{"X-Request-Id", "late-1"}});
  EXPECT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(retry.body, reply);
  report("retry_with_same_id", std::to_string(retry.status) + " in " + std::to_string(retry.elapsed.count()) + " ms");
  EXPECT_FALSE(device.wait_for(2, 300ms)) << "the retry published the command again";
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="replayed"})"), 1.0);
}

// Garbage from devices: not JSON without an id, ids that break the pattern in
// the topic, payloads over max_reply_bytes, and a flood of them. The bridge
// counts each by reason and keeps forwarding real replies.
TEST_F(ReplyFaults, GarbageRepliesAreDroppedCountedAndTheBridgeKeepsServing) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge({"--max-reply-bytes", "1024"});
  stack->add_devsim({"--boxes", "2", "--delay-ms", "0"});
  MqttProbe device(stack->mqtt_port());

  device.publish("dev/b/response", "this is not json");                       // invalid_id
  device.publish("dev/b/response", std::string("\xff\x00\x01{", 4));          // invalid_id
  device.publish("dev/b/response", "");                                       // invalid_id
  device.publish("dev/b/response", R"({"id":"x y"})");                        // invalid_id
  device.publish("dev/b!/response/x", R"({"id":"x"})");                       // invalid_topic
  device.publish("dev/b/response/x y", R"({"id":"x y"})");                    // invalid_topic
  device.publish("dev/" + std::string(200, 'b') + "/response/x", "{}");       // invalid_topic (id too long)
  device.publish("dev/b/response/big", std::string(1025, 'x'));               // too_large
  test::issue_command(stack->redis(), "b", "edge");                         // a gateway sent it
  device.publish("dev/b/response/edge", std::string(1024, 'x'));              // exactly the limit: forwarded
  // A flood: 500 more, alternating reasons, sent without waiting for each ack.
  for (int i = 0; i < 500; ++i) {
    device.publish(i % 2 ? "dev/b/response" : "dev/b*/response/f", i % 2 ? "garbage" : "{}", 0);
  }

  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_received_total") == 509.0; }, 5s))
      << metric(br, "boxgate_replies_received_total").value_or(-1);
  auto dropped = [&](const char* reason) {
    return metric(br, std::string("boxgate_replies_dropped_total{reason=\"") + reason + "\"}").value_or(-1);
  };
  report("dropped_invalid_id", dropped("invalid_id"));
  report("dropped_invalid_topic", dropped("invalid_topic"));
  report("dropped_too_large", dropped("too_large"));
  EXPECT_EQ(dropped("invalid_id"), 4.0 + 250.0);
  EXPECT_EQ(dropped("invalid_topic"), 3.0 + 250.0);
  EXPECT_EQ(dropped("too_large"), 1.0);
  EXPECT_EQ(metric(br, "boxgate_replies_forwarded_total"), 1.0) << "only the 1024-byte reply is valid";
  EXPECT_EQ(stack->redis().get("dev/b/response/edge"), std::string(1024, 'x'));

  // Still alive and serving real commands.
  EXPECT_TRUE(stack->bridge().running());
  EXPECT_EQ(get(br, "/healthz").status, 200);
  EXPECT_EQ(get(br, "/readyz").status, 200);
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1", "timeout_ms=2000"), kPing);
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
  report("real_command_after_garbage", std::to_string(r.status) + " in " + std::to_string(r.elapsed.count()) + " ms");
  // The drop log is rate-limited: 509 drops, a handful of lines.
  std::size_t drop_lines = 0;
  const std::string log = stack->bridge().log();
  for (std::size_t at = 0; (at = log.find("dropped a reply", at)) != std::string::npos; ++at) ++drop_lines;
  report("drop_log_lines", drop_lines);
  EXPECT_LE(drop_lines, 10u);
}

}  // namespace
}  // namespace boxgate::itest::faults
