// W3C trace context: a valid traceparent on a command
// reaches the device as an MQTT v5 user property and is logged with the
// request id; an invalid one is dropped (the command still runs); a device
// reply's traceparent user property is logged by the bridge.

#include <gtest/gtest.h>

#include <future>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

const std::string kTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const std::string kReplyTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

class TraceTest : public StackTest {
 protected:
  TraceTest() : StackTest("trace") {}
};

std::string property(const MqttMessage& m, const std::string& name) {
  for (const auto& [k, v] : m.user_properties) {
    if (k == name) return v;
  }
  return "(none)";
}

TEST_F(TraceTest, TraceparentTravelsToTheDeviceAndBackIntoTheLogs) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/box-1/request/+", 1);
  auto c = client(gw);

  auto call = std::async(std::launch::async, [&] {
    auto cc = client(gw);
    return post(*cc, command_path("box-1", "timeout_ms=5000"), R"({"method":"ping"})",
                {{"X-Request-Id", "tr-1"}, {"traceparent", kTrace}});
  });
  ASSERT_TRUE(device.wait_for(1, 5s)) << stack->logs();
  MqttMessage command = device.messages()[0];
  EXPECT_EQ(property(command, "traceparent"), kTrace);
  test::MqttPublishOptions reply_options;
  reply_options.user_properties = {{"traceparent", kReplyTrace}};
  device.publish("dev/box-1/response/tr-1", R"({"id":"tr-1","result":1})", 1, reply_options);
  HttpResult r = call.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(stack->gateway().wait_for_log("request tr-1: traceparent " + kTrace, 5s))
      << stack->gateway().log_tail();
  EXPECT_TRUE(stack->bridge().wait_for_log("reply on dev/box-1/response/tr-1 carries traceparent " + kReplyTrace, 5s))
      << stack->bridge().log_tail();

  // Malformed ones are dropped, never passed on; the command still runs.
  device.clear();
  for (const std::string& bad : {std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),  // upper case
                                 std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),  // zero id
                                 std::string("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),  // version ff
                                 kTrace + "-x", std::string("garbage")}) {
    SCOPED_TRACE(bad);
    HttpResult timeout = post(*c, command_path("box-1", "timeout_ms=200"), R"({"method":"ping"})",
                              {{"traceparent", bad}});
    EXPECT_EQ(timeout.status, 504) << timeout.body;
  }
  ASSERT_TRUE(device.wait_for(5, 5s));
  for (const MqttMessage& m : device.messages()) EXPECT_EQ(property(m, "traceparent"), "(none)");
  EXPECT_TRUE(stack->gateway().wait_for_log("invalid traceparent dropped", 1s));
}

}  // namespace
}  // namespace boxgate::itest
