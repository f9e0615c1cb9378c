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
    tmp = std::make_unique<test::TempDir>("mqtt-suback");
    std::string acl = tmp->write("dynsec.json", kDenySubscriptions);
    redis = std::make_unique<test::RedisServer>(*tmp);
    mqtt = std::make_unique<test::Mosquitto>(
        *tmp, 0, std::vector<std::string>{std::string("plugin ") + BOXGATE_MOSQUITTO_DYNSEC, "plugin_opt_config_file " + acl});
  }
  void TearDown() override {
    // Daemons first, each must exit 0 on SIGTERM with no sanitizer report.
    for (auto& p : daemons) {
      EXPECT_EQ(p.stop(SIGTERM, 10s), 0) << p.name() << ":\n" << p.log_tail();
      EXPECT_TRUE(p.sanitizer_report().empty()) << p.sanitizer_report();
    }
    daemons.clear();
    mqtt.reset();
    redis.reset();
    tmp.reset();
  }

  // A bridge on this broker; returns its ops port.
  int add_bridge(std::vector<std::string> flags = {}) {
    int port = test::free_port();
    daemons.push_back(test::start_bridge(*tmp, port, redis->port(), mqtt->port(), std::move(flags)));
    return port;
  }

  // The bridge logged the refusal and stays not ready with "mqtt":"down".
  void expect_refused_and_not_ready(int port, Process& bridge, const std::string& reason_code) {
    ASSERT_TRUE(bridge.wait_for_log("refused the subscription", 10s)) << bridge.log_tail();
    EXPECT_TRUE(bridge.wait_for_log("reason code " + reason_code, 0ms)) << bridge.log_tail();
    // Still not ready a second later: no retry loop turns it ready.
    bool ever_ready = test::eventually([&] { return get(port, "/readyz").status == 200; }, 1s, 50ms);
    EXPECT_FALSE(ever_ready) << get(port, "/readyz").body;
    HttpResult ready = get(port, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
    EXPECT_EQ(ready.json().value("redis", ""), "up") << ready.body;
    report("readyz", std::to_string(ready.status) + " " + ready.body);
  }

  std::unique_ptr<test::TempDir> tmp;
  std::unique_ptr<test::RedisServer> redis;
  std::unique_ptr<test::Mosquitto> mqtt;
  std::vector<Process> daemons;
};

TEST_F(SubackRefused, Mqtt5BridgeStaysNotReadyOn0x87) {
  int br = add_bridge();
  expect_refused_and_not_ready(br, daemons.back(), "0x87");

  // The broker itself serves: a gateway, which subscribes to nothing, is ready.
  int gw = test::free_port();
  daemons.push_back(test::start_gateway(*tmp, gw, redis->port(), mqtt->port()));
  EXPECT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << daemons.back().log_tail();
}

TEST_F(SubackRefused, Mqtt311BridgeStaysNotReadyOn0x80) {
  int br = add_bridge({"--mqtt-version", "3", "--share-group", "bridges"});
  expect_refused_and_not_ready(br, daemons.back(), "0x80");
}

}  // namespace
}  // namespace boxgate::itest::faults
