// MQTT 3.1.1 (mqtt_version 3) end to end: the gateway publishes
// without v5 properties, the bridge subscribes (shared group) and forwards,
// and a 3.1.1 device gets the command and its reply reaches the caller.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

TEST(MqttV311Test, CommandRoundTripWithoutV5Properties) {
  Stack stack("mqtt-v311");
  const std::vector<std::string> v3{"--mqtt-version", "3"};
  int gw = stack.add_gateway(v3);
  std::vector<std::string> bridge_flags = v3;
  bridge_flags.insert(bridge_flags.end(), {"--share-group", "bridges"});
  stack.add_bridge(bridge_flags);
  ProbeDevice device(stack.mqtt_port(), "dev/+/request/+", ProbeDevice::echo());

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-3"), R"({"method":"ping"})", {{"X-Request-Id", "v311"}});
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack.logs();
  EXPECT_EQ(r.body, R"({"id":"v311","result":{"ok":true}})");

  auto commands = device.commands();
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].topic, "dev/box-3/request/v311");
  EXPECT_EQ(commands[0].qos, 1);
  EXPECT_EQ(commands[0].response_topic, "") << "a 3.1.1 publish carries no v5 properties";
  EXPECT_FALSE(commands[0].message_expiry_interval.has_value());
  stack.stop_daemons_and_check();
}

}  // namespace
}  // namespace boxgate::itest
