// The MQTT broker going away: readiness says so at once; past the grace,
// commands are refused at once with 503 mqtt_unavailable; both daemons recover.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

TEST(MqttOutageTest, StoppedBrokerGives503AndServiceResumesAfterRestart) {
  Stack stack("mqtt");
  int gw = stack.add_gateway({"--mqtt-backoff-max-ms", "500"});
  int br = stack.add_bridge({"--mqtt-backoff-max-ms", "500"});
  auto c = client(gw);

  stack.mqtt().stop();
  HttpResult r;
  EXPECT_TRUE(test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=300"), "{}");
        return r.status == 503 && r.error_code() == "mqtt_unavailable" && r.elapsed < 100ms;
      },
      4s, 20ms))
      << r.status << " " << r.body << "\n" << stack.logs();
  r = post(*c, command_path("box-1"), "{}", {{"X-Request-Id", "no-broker"}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.error_code(), "mqtt_unavailable") << r.body;
  EXPECT_LT(r.elapsed.count(), 200) << "answered at once";
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_EQ(r.header("X-Request-Id"), "no-broker");
  EXPECT_TRUE(stack.redis().pubsub_channels("dev/*").empty());
  for (int port : {gw, br}) {
    HttpResult ready = get(port, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
  }

  stack.mqtt().start();
  EXPECT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack.logs();
  EXPECT_TRUE(test::wait_ready(br, 10s)) << get(br, "/readyz").body;
  // The bridge subscribed again: a command completes end to end.
  ProbeDevice device(stack.mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  HttpResult back = post(*c, command_path("box-1"), "{}", {{"X-Request-Id", "back"}});
  EXPECT_EQ(back.status, 200) << back.body << back.error << "\n" << stack.logs();
  EXPECT_EQ(back.body, R"({"id":"back","result":{"ok":true}})");
  stack.stop_daemons_and_check();
}

}  // namespace
}  // namespace boxgate::itest
