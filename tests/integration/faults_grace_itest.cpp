// Riding through dependency blips on real processes:
// a Redis restarted at once and a Redis frozen for 1.5 s cost callers a short
// wait, not an error; readiness still turns 503 at once, so a load balancer
// steers new traffic away meanwhile.

#include "faults_support.hpp"

namespace boxgate::itest::faults {
namespace {

class GraceFaults : public StackTest {
 protected:
  GraceFaults() : StackTest("grace") {}
  void SetUp() override {
    StackTest::SetUp();
    gw = stack->add_gateway();
    stack->add_bridge();
    device = std::make_unique<ProbeDevice>(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  }
  // Polls /readyz until it reports `state` for Redis.
  bool redis_becomes(const std::string& state, std::chrono::milliseconds within) {
    return test::eventually([&] { return get(gw, "/readyz").json().value("redis", "") == state; }, within, 5ms);
  }
  // A little steady load after the blip: 50 more commands answered.
  void steady_load_after(const Load& load) {
    const int answered = load.snapshot().count(200);
    EXPECT_TRUE(test::eventually([&] { return load.snapshot().count(200) >= answered + 50; }, 5s))
        << load.snapshot().summary() << "\n" << stack->logs();
  }
  int gw = 0;
  std::unique_ptr<ProbeDevice> device;
};

TEST_F(GraceFaults, RedisRestartedAtOnceIsRiddenThrough) {
  Load load(gw, 4, 8, "timeout_ms=3000");
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) > 50; }, 5s)) << stack->logs();
  stack->redis().kill9();
  EXPECT_TRUE(redis_becomes("down", 1s)) << "readiness turns 503 at once";
  // The load's callers are all waiting on their commands: one more arrives
  // in the gap and must be held, not refused.
  auto in_gap = post_async(gw, command_path("box-1", "timeout_ms=3000"), R"({"method":"gap"})");
  ASSERT_TRUE(test::eventually(
      [&] { return metric(gw, "boxgate_commands_held_in_grace_total").value_or(0) >= 1; }, 1s, 5ms));
  stack->redis().start();  // returns once Redis answers PING
  const auto back = Clock::now();
  const int before = load.snapshot().count(200);
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) > before; }, 3s)) << stack->logs();
  report("first_200_ms_after_redis_returned", ms_since(back));
  EXPECT_LE(ms_since(back), 500);
  steady_load_after(load);
  LoadCounts counts = load.join();
  report("answers", counts.summary());
  EXPECT_EQ(counts.count(200), counts.total()) << counts.summary() << "\n"
                                                << (counts.examples.empty() ? "" : counts.examples[0]);
  HttpResult held = in_gap.get();
  EXPECT_EQ(held.status, 200) << held.body;
  report("held_command_answered_ms", held.elapsed.count());
}

TEST_F(GraceFaults, RedisFrozenForOneAndAHalfSecondsLosesNothing) {
  Load load(gw, 4, 8, "timeout_ms=4000");
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) > 50; }, 5s)) << stack->logs();
  stack->redis().process().signal(SIGSTOP);
  struct Resume {
    test::RedisServer& redis;
    ~Resume() { redis.process().signal(SIGCONT); }
  } resume{stack->redis()};
  const auto frozen = Clock::now();
  EXPECT_TRUE(redis_becomes("stalled", 1400ms)) << "a late PING marks Redis stalled";
  report("stalled_ms_after_sigstop", ms_since(frozen));
  EXPECT_EQ(get(gw, "/readyz").status, 503);
  ASSERT_TRUE(test::eventually([&] { return ms_since(frozen) >= 1500; }, 2s));
  stack->redis().process().signal(SIGCONT);
  EXPECT_TRUE(redis_becomes("up", 1s));
  report("ready_ms_after_sigcont", ms_since(frozen) - 1500);
  steady_load_after(load);
  LoadCounts counts = load.join();
  report("answers", counts.summary());
  EXPECT_EQ(counts.count(200), counts.total()) << counts.summary() << "\n"
                                                << (counts.examples.empty() ? "" : counts.examples[0]);
  EXPECT_EQ(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(-1), 0)
      << "a 1.5 s stall must not tear the connections down";
}

// The broker restarted at once: the gateway and the bridge reconnect in
// milliseconds (first attempt immediate), a command that arrives in the gap
// waits and is then published, and nothing is refused. The devices (devsim,
// paho) need about a second more to reconnect (paho.mqtt.c's connect of a
// second client in a process waits on a missed wake-up, upstream #1430/#1039),
// so end-to-end 200s are reported, and the daemons' own readiness is bounded.
TEST(GraceMqttFaults, BrokerRestartedAtOnceIsRiddenThrough) {
  Stack stack("grace-mqtt");
  int gw = stack.add_gateway();
  int br = stack.add_bridge();
  stack.add_devsim({"--box-list", "box-1,box-2,box-3,box-4,box-5,box-6,box-7,box-8"});
  auto c = client(gw);
  ASSERT_TRUE(test::eventually([&] { return post(*c, command_path("box-1"), R"({"m":1})").status == 200; }, 10s))
      << stack.logs();
  Load load(gw, 4, 8, "timeout_ms=3000");
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) > 50; }, 5s)) << stack.logs();

  stack.mqtt().kill9();
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("mqtt", "") == "down"; }, 1s, 5ms));
  auto in_gap = post_async(gw, command_path("box-2", "timeout_ms=3000"), R"({"method":"gap"})");
  ASSERT_TRUE(test::eventually(
      [&] { return metric(gw, "boxgate_commands_held_in_grace_total").value_or(0) >= 1; }, 1s, 5ms));
  stack.mqtt().start();  // returns once the broker listens
  const auto back = Clock::now();
  EXPECT_TRUE(test::eventually([&] { return get(gw, "/readyz").status == 200; }, 2s, 5ms));
  report("gateway_ready_ms_after_broker_returned", ms_since(back));
  EXPECT_LE(ms_since(back), 500);
  EXPECT_TRUE(test::eventually([&] { return get(br, "/readyz").status == 200; }, 2s, 5ms));
  report("bridge_ready_ms_after_broker_returned", ms_since(back));
  EXPECT_LE(ms_since(back), 500);

  HttpResult held = in_gap.get();
  // 200, or 504 if the devices were not back in time: published either way.
  EXPECT_TRUE(held.status == 200 || held.error_code() == "device_timeout") << held.body << "\n" << stack.logs(12);
  const int before = load.snapshot().count(200);
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) > before; }, 5s)) << stack.logs();
  report("first_load_200_ms_after_broker_returned", ms_since(back));
  LoadCounts counts = load.join();
  report("answers", counts.summary());
  // Commands the broker held when it died are lost with it (504 at their
  // timeout); nothing is refused.
  EXPECT_EQ(counts.count(503), 0) << counts.summary() << "\n"
                                 << (counts.examples.empty() ? "" : counts.examples[0]) << "\n"
                                 << stack.logs(20);
  stack.stop_daemons_and_check();
}

}  // namespace
}  // namespace boxgate::itest::faults
