// The MQTT broker going away: the broker restarted under a running stack
// (readiness says so at once; past the grace commands are refused at once
// with 503 mqtt_unavailable; gateway, bridge and devsim all reconnect and
// resubscribe), and a gateway started while its broker is down.

#include <gtest/gtest.h>

#include "faults_support.hpp"

namespace boxgate::itest::faults {
namespace {


class MqttFaults : public StackTest {
 protected:
  MqttFaults() : StackTest("faults-mqtt") {}
};

// Default reconnect settings everywhere (backoff cap 5 s): the stack serves
// again within 10 s of the broker's restart on the same port.
TEST_F(MqttFaults, BrokerRestartedCommandsSucceedAgainWithin10s) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  stack->add_devsim({"--boxes", "4", "--delay-ms", "0"});
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kPing).status, 200) << stack->logs();

  const auto stopped = Clock::now();
  stack->mqtt().stop();
  HttpResult r;
  EXPECT_TRUE(eventually_refused(*c, "mqtt_unavailable", 2s, r)) << r.status << " " << r.body << r.error;
  report("first_503_ms_after_broker_stop", ms_since(stopped));
  // Once the outage is older than the grace, refusals are immediate, carry
  // the contract's headers, and leave no subscription in Redis. Waiting for
  // that also keeps the broker down past the grace (1 s), long enough for a
  // few reconnect attempts to fail.
  EXPECT_TRUE(eventually_refused(*c, "mqtt_unavailable", 4s, r, 100ms, "timeout_ms=300", 20ms))
      << r.status << " " << r.body << "\n" << stack->logs();
  r = post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "no-broker"}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.error_code(), "mqtt_unavailable") << r.body;
  EXPECT_LT(r.elapsed.count(), 200) << "answered at once";
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_EQ(r.header("X-Request-Id"), "no-broker");
  EXPECT_TRUE(stack->redis().pubsub_channels("dev/*/response/*").empty());
  for (int port : {gw, br}) {
    HttpResult ready = get(port, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
  }

  const auto restarted = Clock::now();
  stack->mqtt().start();
  long long first_200 = -1;
  int attempts = 0;
  EXPECT_TRUE(test::eventually(
      [&] {
        ++attempts;
        r = post(*c, command_path("box-" + std::to_string(attempts % 4 + 1), "timeout_ms=1000"), kPing);
        if (r.status == 200) first_200 = ms_since(restarted);
        return r.status == 200;
      },
      10s, 20ms))
      << r.status << " " << r.body << r.error << "\n" << stack->logs();
  report("first_200_ms_after_broker_restart", first_200);
  EXPECT_GE(first_200, 0);
  EXPECT_LE(first_200, 10000);
  report("gateway_ready_after_restart", get(gw, "/readyz").status);
  report("bridge_ready_after_restart", get(br, "/readyz").status);
  EXPECT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  EXPECT_TRUE(test::wait_ready(br, 10s)) << get(br, "/readyz").body;

  // Every box answers: devsim resubscribed all of them, the bridge its filters.
  for (int box = 1; box <= 4; ++box) {
    r = post(*c, command_path("box-" + std::to_string(box), "timeout_ms=2000"), kPing);
    EXPECT_EQ(r.status, 200) << "box-" << box << ": " << r.body << r.error;
  }
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="mqtt"})").value_or(0), 1.0);
  EXPECT_GE(metric(br, R"(boxgate_reconnects_total{dependency="mqtt"})").value_or(0), 1.0);
}

// A gateway started while the broker is down: ready never, commands refused at
// once with 503 mqtt_unavailable (nothing queued), and serving as soon as the
// broker appears.
TEST_F(MqttFaults, GatewayWithBrokerDownAnswers503MqttUnavailableAtOnce) {
  stack->mqtt().stop();
  int gw = stack->add_gateway({}, /*wait_ready=*/false);

  HttpResult ready = get(gw, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
  EXPECT_EQ(ready.json().value("status", ""), "not_ready") << ready.body;
  report("readyz_with_broker_down", std::to_string(ready.status) + " " + ready.body);

  auto c = client(gw);
  // Redis is up: wait for it so the refusal is MQTT's, not Redis's. Then the
  // first command waits out the grace (the broker may be about to come up);
  // once the outage is older than it, refusals are immediate.
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("redis", "") == "up"; }, 5s));
  HttpResult first = post(*c, command_path("box-1", "timeout_ms=5000"), kPing);
  EXPECT_EQ(first.error_code(), "mqtt_unavailable") << first.body;
  report("first_refusal_ms", first.elapsed.count());
  EXPECT_LE(first.elapsed.count(), 1500) << "held at most dependency_grace_ms";
  const long long slowest = slowest_of_refusals(*c, command_path("box-1", "timeout_ms=5000"), "mqtt_unavailable");
  report("slowest_of_10_refusals_ms", slowest);
  EXPECT_LT(slowest, 100);
  EXPECT_EQ(metric(gw, "boxgate_commands_pending"), 0.0);
  EXPECT_TRUE(stack->redis().pubsub_channels("dev/*/response/*").empty()) << "a refused command left a subscription";

  const auto started = Clock::now();
  stack->mqtt().start();
  EXPECT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  report("ready_ms_after_broker_start", ms_since(started));
}

}  // namespace
}  // namespace boxgate::itest::faults
