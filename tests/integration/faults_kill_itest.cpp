// Fault tests, replicas killed: kill -9 one of two bridges
// in a shared-subscription group under load, and kill -9 one of two gateways
// while both have commands in flight.

#include <gtest/gtest.h>

#include "faults_support.hpp"

namespace boxgate::itest::faults {
namespace {

class KillFaults : public ::testing::Test {
 protected:
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
};

// Only the replies the killed bridge held are lost (504 after the 2 s
// timeout); every other command is a 200 with its own reply. Restarted with the
// same flags, the bridge takes its share of the replies again.
TEST_F(KillFaults, KillingOneOfTwoBridgesUnderLoadLosesOnlyItsRepliesAndItRejoins) {
  stack = std::make_unique<Stack>("faults-bridge-kill");
  int gw = stack->add_gateway();
  int br1 = stack->add_bridge({"--share-group", "g1"});
  int br2 = stack->add_bridge({"--share-group", "g1"});
  stack->add_devsim({"--boxes", "32", "--delay-ms", "0"});

  LoadCounts counts;
  double br2_forwarded_before_kill = 0;
  {
    Load load(gw, 8, 32, "timeout_ms=2000");
    // Under load, with both bridges taking a share.
    EXPECT_TRUE(test::eventually(
        [&] {
          return load.snapshot().count(200) >= 100 && metric(br2, "boxgate_replies_forwarded_total").value_or(0) > 0;
        },
        5s))
        << load.snapshot().summary();
    br2_forwarded_before_kill = metric(br2, "boxgate_replies_forwarded_total").value_or(-1);
    const LoadCounts before_kill = load.snapshot();
    stack->bridge(1).kill9();
    report("commands_before_kill", before_kill.total());
    // The point of this pause: the load goes on for as long as the calls in
    // flight at the kill may take to time out (2 s), so their 504s are
    // measured against the calls of the same window.
    std::this_thread::sleep_for(2s);
    counts = load.join();  // the calls in flight finish (at most 2 s more)
  }
  report("bridge2_forwarded_before_kill", br2_forwarded_before_kill);
  report("statuses", counts.summary());
  const int total = counts.total();
  const int ok = counts.count(200);
  const int timeouts = counts.count(504);
  report("total", total);
  report("ok_200", ok);
  report("timeouts_504", timeouts);
  EXPECT_GT(br2_forwarded_before_kill, 0.0) << "bridge 2 had no share before the kill";
  EXPECT_GT(total, 200) << "too little load to say anything";
  EXPECT_EQ(ok + timeouts, total) << "only 200 and 504 are acceptable; " << counts.summary() << "; e.g. "
                                  << (counts.examples.empty() ? "" : counts.examples.front());
  // In flight at the kill: at most the 8 callers' commands whose replies the
  // broker had handed to the dead bridge. Allow a little slack, never more
  // than 2 % of the calls.
  EXPECT_LE(timeouts, 8) << counts.summary();
  EXPECT_LE(timeouts * 50, total) << counts.summary();

  // Restart bridge 2 with the same flags on the same port: it rejoins the group.
  const auto restarted = Clock::now();
  stack->bridge(1).start();
  ASSERT_TRUE(test::wait_ready(br2, 10s)) << stack->bridge(1).log_tail();
  report("bridge2_ready_ms_after_restart", ms_since(restarted));
  const double br1_before = metric(br1, "boxgate_replies_forwarded_total").value_or(-1);
  LoadCounts after;
  {
    Load load(gw, 8, 32, "timeout_ms=2000");
    EXPECT_TRUE(test::eventually([&] { return load.snapshot().total() >= 400; }, 5s))
        << "400 commands did not complete within 5 s after the restart: " << load.snapshot().summary();
    after = load.join();
  }
  // A gateway answers as soon as the PUBLISH reaches it, which can be before
  // the bridge has counted the reply forwarded: poll both counters.
  double br1_share = -1;
  std::optional<double> br2_share;
  EXPECT_TRUE(test::eventually(
      [&] {
        br1_share = metric(br1, "boxgate_replies_forwarded_total").value_or(-1) - br1_before;
        br2_share = metric(br2, "boxgate_replies_forwarded_total");
        return br2_share && *br2_share + br1_share >= after.count(200);
      },
      2s))
      << "the bridges forwarded " << br1_share << " + " << br2_share.value_or(-1) << " replies for "
      << after.count(200) << " answered commands";
  report("after_restart_statuses", after.summary());
  report("after_restart_bridge1_forwarded", br1_share);
  report("after_restart_bridge2_forwarded", br2_share.value_or(-1));
  EXPECT_EQ(after.count(200), after.total()) << after.summary();
  EXPECT_GT(br2_share.value_or(0), 0.0) << "the restarted bridge got no share of the replies";
}

// Commands in flight on both gateways when one is killed: the other's calls
// all complete 200 with their own replies.
TEST_F(KillFaults, KillingOneOfTwoGatewaysLeavesTheOthersCallsUnaffected) {
  stack = std::make_unique<Stack>("faults-gateway-kill");
  int gw1 = stack->add_gateway();
  int gw2 = stack->add_gateway();
  stack->add_bridge();
  // Replies take 200 ms, so each gateway always has commands waiting.
  stack->add_devsim({"--boxes", "32", "--delay-ms", "200"});

  LoadCounts on1, on2;
  {
    Load load1(gw1, 8, 32, "timeout_ms=3000");
    Load load2(gw2, 8, 32, "timeout_ms=3000");
    // Both gateways under load, with commands waiting.
    ASSERT_TRUE(test::eventually(
        [&] {
          return load1.snapshot().count(200) >= 20 && load2.snapshot().count(200) >= 20 &&
                 metric(gw1, "boxgate_commands_pending").value_or(0) > 0 &&
                 metric(gw2, "boxgate_commands_pending").value_or(0) > 0;
        },
        5s))
        << load1.snapshot().summary() << " / " << load2.snapshot().summary();
    report("gateway2_pending_at_kill", metric(gw2, "boxgate_commands_pending").value_or(-1));
    stack->gateway(1).kill9();
    // The surviving gateway goes on serving: 40 more answered after the kill.
    const int answered_at_kill = load1.snapshot().count(200);
    EXPECT_TRUE(test::eventually([&] { return load1.snapshot().count(200) >= answered_at_kill + 40; }, 5s))
        << load1.snapshot().summary();
    on2 = load2.join();
    on1 = load1.join();
  }
  report("surviving_gateway_statuses", on1.summary());
  report("killed_gateway_statuses", on2.summary());
  EXPECT_GT(on1.total(), 20);
  EXPECT_EQ(on1.count(200), on1.total()) << on1.summary() << "; e.g. "
                                         << (on1.examples.empty() ? "" : on1.examples.front());
  EXPECT_EQ(metric(gw1, "boxgate_commands_pending"), 0.0);
  EXPECT_EQ(metric(gw1, R"(boxgate_commands_total{outcome="device_timeout"})"), 0.0);
  report("bridge_unclaimed_replies", metric(stack->bridge_port(), "boxgate_replies_unclaimed_total").value_or(-1));
}

}  // namespace
}  // namespace boxgate::itest::faults
