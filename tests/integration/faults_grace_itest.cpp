// Riding through dependency blips (issue 14, points 1-3) on real processes:
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
  std::this_thread::sleep_for(500ms);  // a little steady load after the blip
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
  std::this_thread::sleep_for(1s);
  LoadCounts counts = load.join();
  report("answers", counts.summary());
  EXPECT_EQ(counts.count(200), counts.total()) << counts.summary() << "\n"
                                                << (counts.examples.empty() ? "" : counts.examples[0]);
  EXPECT_EQ(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(-1), 0)
      << "a 1.5 s stall must not tear the connections down";
}

}  // namespace
}  // namespace boxgate::itest::faults
