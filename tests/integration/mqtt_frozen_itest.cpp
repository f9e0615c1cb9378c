// The MQTT broker frozen with SIGSTOP: its TCP connections stay
// open and the kernel still accepts new ones, so only MQTT itself can tell.
// - keep-alive: /readyz says "mqtt":"down" within about 2 x keep-alive,
//   commands fail fast with 503 mqtt_unavailable, and both daemons serve
//   again after SIGCONT;
// - flow control: while the broker acknowledges nothing, the gateway accepts
//   no more than mqtt_max_unacked commands and answers the rest 503 at once.
// Every figure is printed with report().

#include <gtest/gtest.h>

#include <csignal>

#include "faults_support.hpp"

namespace boxgate::itest::faults {
namespace {

constexpr int kKeepaliveS = 5;  // libmosquitto's smallest keep-alive

class FrozenBroker : public ::testing::Test {
 protected:
  void SetUp() override { stack = std::make_unique<Stack>("mqtt-frozen"); }
  void TearDown() override {
    if (stack) {
      resume();  // never leave a frozen broker behind
      stack->stop_daemons_and_check();
    }
    stack.reset();
  }
  void freeze() { stack->mqtt().process().signal(SIGSTOP); }
  void resume() { stack->mqtt().process().signal(SIGCONT); }

  // True once /readyz on `port` is 503 with "mqtt":"down".
  static bool mqtt_down(int port) {
    HttpResult ready = get(port, "/readyz");
    return ready.status == 503 && ready.json().value("mqtt", "") == "down";
  }

  std::unique_ptr<Stack> stack;
};

TEST_F(FrozenBroker, NotReadyWithinTwiceTheKeepAliveCommandsFailFastThenServesAfterSigcont) {
  const std::vector<std::string> flags{"--mqtt-keepalive-s", std::to_string(kKeepaliveS), "--mqtt-backoff-max-ms",
                                       "500"};
  int gw = stack->add_gateway(flags);
  int br = stack->add_bridge(flags);
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kPing).status, 200) << stack->logs();

  const auto frozen = Clock::now();
  freeze();
  // libmosquitto sends PINGREQ after keep-alive seconds without a packet from
  // the broker and gives up one keep-alive later; its clock counts whole
  // seconds and our timer looks every 500 ms, hence the second of slack.
  const auto limit = std::chrono::milliseconds(2 * kKeepaliveS * 1000 + 1000);
  EXPECT_TRUE(test::eventually([&] { return mqtt_down(gw); }, limit + 2s, 50ms))
      << get(gw, "/readyz").body << "\n" << stack->logs();
  const long long gateway_ms = ms_since(frozen);
  report("gateway_mqtt_down_ms_after_sigstop", gateway_ms);
  EXPECT_LE(gateway_ms, limit.count());
  EXPECT_TRUE(test::eventually([&] { return mqtt_down(br); }, 3s, 50ms)) << get(br, "/readyz").body;
  report("bridge_mqtt_down_ms_after_sigstop", ms_since(frozen));

  // For dependency_grace_ms after the loss a new command waits for the
  // broker; past it, a broker that is really gone is refused at once.
  const auto detected = Clock::now();
  ASSERT_TRUE(test::eventually([&] { return ms_since(detected) > 1100; }, 2s));
  long long slowest = 0;
  for (int i = 0; i < 5; ++i) {
    HttpResult r = post(*c, command_path("box-1", "timeout_ms=5000"), kPing);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.error_code(), "mqtt_unavailable") << r.body;
    slowest = std::max<long long>(slowest, r.elapsed.count());
  }
  report("slowest_of_5_refusals_while_frozen_ms", slowest);
  EXPECT_LT(slowest, 100);

  const auto resumed = Clock::now();
  resume();
  EXPECT_TRUE(test::wait_ready(gw, 15s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  report("gateway_ready_ms_after_sigcont", ms_since(resumed));
  EXPECT_TRUE(test::wait_ready(br, 15s)) << get(br, "/readyz").body << "\n" << stack->logs();
  report("bridge_ready_ms_after_sigcont", ms_since(resumed));
  HttpResult r;
  EXPECT_TRUE(test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=1000"), kPing);
        return r.status == 200;
      },
      15s, 20ms))
      << r.status << " " << r.body << r.error << "\n" << stack->logs();
  report("first_200_ms_after_sigcont", ms_since(resumed));
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="mqtt"})").value_or(0), 1.0);
}

TEST_F(FrozenBroker, UnacknowledgedPublishesAreBoundedAndTheRestAnswered503AtOnce) {
  constexpr int kBound = 20;
  // A long keep-alive: the broker is not given up during this test, so only
  // the bound can refuse.
  int gw = stack->add_gateway({"--mqtt-max-unacked", std::to_string(kBound), "--mqtt-keepalive-s", "60"});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kPing).status, 200) << stack->logs();

  freeze();
  std::vector<std::future<HttpResult>> waiting;
  for (int i = 0; i < kBound; ++i) {
    waiting.push_back(post_async(gw, command_path("box-" + std::to_string(i % 5 + 1), "timeout_ms=2000"), kPing));
  }
  // Admitted in order, so their subscriptions are confirmed (and their
  // commands published) before any later command's.
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_commands_pending") == kBound; }, 5s))
      << metric(gw, "boxgate_commands_pending").value_or(-1) << "\n" << stack->logs();

  const long long slowest = slowest_of_refusals(*c, command_path("box-9", "timeout_ms=2000"), "mqtt_unavailable");
  report("slowest_of_10_refusals_over_the_bound_ms", slowest);
  EXPECT_LT(slowest, 100);
  EXPECT_EQ(metric(gw, "boxgate_commands_pending"), kBound) << "a refused command must not wait";

  // The accepted ones reached the socket, not the device: they time out.
  std::map<int, int> statuses;
  for (auto& f : waiting) statuses[f.get().status]++;
  report("timed_out_of_the_accepted", statuses[504]);
  EXPECT_EQ(statuses[504], kBound) << "statuses: 200:" << statuses[200] << " 503:" << statuses[503];
  EXPECT_TRUE(stack->gateway().wait_for_log("not yet acknowledged", 0ms)) << stack->logs();

  const auto resumed = Clock::now();
  resume();
  HttpResult r;
  EXPECT_TRUE(test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=1000"), kPing);
        return r.status == 200;
      },
      10s, 20ms))
      << r.status << " " << r.body << r.error << "\n" << stack->logs();
  report("first_200_ms_after_sigcont", ms_since(resumed));
}

}  // namespace
}  // namespace boxgate::itest::faults
