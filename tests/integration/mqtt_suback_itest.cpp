// A broker that refuses the bridge's subscriptions: the bridge is
// connected but must stay not ready, and say why in its log. mosquitto 2.0's
// acl_file never refuses a SUBSCRIBE, so the broker runs the dynamic-security
// plugin with subscriptions denied by default: it answers SUBACK 0x87 (Not
// authorized) in MQTT 5 and 0x80 (Failure) in 3.1.1. Publishing stays
// allowed, so a gateway (it subscribes to nothing) is ready on the same broker.

#include <gtest/gtest.h>

#include "faults_support.hpp"
#include "support/fixtures.hpp"

#ifndef BOXGATE_MOSQUITTO_DYNSEC
#define BOXGATE_MOSQUITTO_DYNSEC ""
#endif

namespace boxgate::itest::faults {
namespace {

const char* kDenySubscriptions = R"({
  "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true,
                       "subscribe": false, "unsubscribe": true},
  "clients": [], "groups": [], "roles": []
})";

class SubackRefused : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(BOXGATE_MOSQUITTO_DYNSEC).empty()) {
      GTEST_SKIP() << "mosquitto_dynamic_security.so not found at configure time";
    }
    // The plugin's config file must exist before the Stack starts the broker,
    // so it goes in a directory of its own, which outlives the Stack.
    config = std::make_unique<test::TempDir>("mqtt-suback-dynsec");
    stack = std::make_unique<Stack>(
        StackOptions{.tag = "mqtt-suback",
                     .mqtt_config = {std::string("plugin ") + BOXGATE_MOSQUITTO_DYNSEC,
                                     "plugin_opt_config_file " + config->write("dynsec.json", kDenySubscriptions)}});
  }
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
    config.reset();
  }

  // The bridge logged the refusal and stays not ready with "mqtt":"down".
  void expect_refused_and_not_ready(int port, Process& bridge, const std::string& reason_code) {
    ASSERT_TRUE(bridge.wait_for_log("refused the subscription", 10s)) << bridge.log_tail();
    EXPECT_TRUE(bridge.wait_for_log("reason code " + reason_code, 0ms)) << bridge.log_tail();
    // The point of this window: no retry loop turns it ready within a second.
    bool ever_ready = test::eventually([&] { return get(port, "/readyz").status == 200; }, 1s, 50ms);
    EXPECT_FALSE(ever_ready) << get(port, "/readyz").body;
    HttpResult ready = get(port, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
    EXPECT_EQ(ready.json().value("redis", ""), "up") << ready.body;
    report("readyz", std::to_string(ready.status) + " " + ready.body);
  }

  std::unique_ptr<test::TempDir> config;
  std::unique_ptr<Stack> stack;
};

TEST_F(SubackRefused, Mqtt5BridgeStaysNotReadyOn0x87) {
  int br = stack->add_bridge({}, /*wait_ready=*/false);
  expect_refused_and_not_ready(br, stack->bridge(), "0x87");

  // The broker itself serves: a gateway, which subscribes to nothing, is ready.
  int gw = stack->add_gateway({}, /*wait_ready=*/false);
  EXPECT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
}

TEST_F(SubackRefused, Mqtt311BridgeStaysNotReadyOn0x80) {
  int br = stack->add_bridge({"--mqtt-version", "3", "--share-group", "bridges"}, /*wait_ready=*/false);
  expect_refused_and_not_ready(br, stack->bridge(), "0x80");
}

}  // namespace
}  // namespace boxgate::itest::faults
