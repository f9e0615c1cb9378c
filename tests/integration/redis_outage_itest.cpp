// Redis going away and coming back: once the outage is older than
// dependency_grace_ms, commands are refused at once (never queued), readiness
// follows at once, and service resumes on restart.

#include <gtest/gtest.h>

#include <future>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

const std::string kBody = R"({"method":"ping"})";

class RedisOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack = std::make_unique<Stack>("redis");
    gw = stack->add_gateway();
    br = stack->add_bridge();
  }
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
  int gw = 0;
  int br = 0;
};

TEST_F(RedisOutageTest, StoppedRedisGives503AtOnceAndServiceResumesAfterRestart) {
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kBody).status, 200);

  const auto stopped_at = std::chrono::steady_clock::now();
  stack->redis().stop();

  // Within the grace (1 s) a new command waits, then 503 redis_unavailable;
  // after it, refused at once.
  HttpResult r;
  int n = 0;
  bool refused = test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=300"), kBody, {{"X-Request-Id", "outage-" + std::to_string(n++)}});
        return r.status == 503 && r.error_code() == "redis_unavailable" && r.elapsed < 100ms;
      },
      2500ms, 10ms);
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped_at);
  ASSERT_TRUE(refused) << "last answer " << r.status << " " << r.body << "\n" << stack->logs();
  EXPECT_LE(after.count(), 2000);
  std::cerr << "503 redis_unavailable at once " << after.count() << " ms after the stop\n";

  // Refused at once, with the contract's headers and body, and never published.
  const std::size_t published_before = device.commands().size();
  r = post(*c, command_path("box-1"), kBody, {{"X-Request-Id", "refused-1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.error_code(), "redis_unavailable") << r.body;
  EXPECT_LT(r.elapsed.count(), 200) << "answered at once, not after a timeout";
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_EQ(r.header("X-Request-Id"), "refused-1");
  EXPECT_EQ(r.json().value("request_id", ""), "refused-1");
  EXPECT_EQ(r.json().value("box_id", ""), "box-1");

  HttpResult ready = get(gw, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  auto rb = ready.json();
  ASSERT_TRUE(rb.is_object()) << ready.body;
  EXPECT_EQ(rb.value("status", ""), "not_ready") << ready.body;
  EXPECT_EQ(rb.value("redis", ""), "down") << ready.body;
  EXPECT_EQ(rb.value("mqtt", ""), "up") << ready.body;
  EXPECT_TRUE(test::eventually([&] { return get(br, "/readyz").json().value("redis", "") == "down"; }, 3s))
      << "bridge /readyz: " << get(br, "/readyz").body;
  EXPECT_EQ(metric(gw, R"(boxgate_dependency_up{dependency="redis"})"), 0.0);

  // Back on the same port: ready within 5 s, and commands work again.
  const auto restarted_at = std::chrono::steady_clock::now();
  stack->redis().start();
  EXPECT_TRUE(test::wait_ready(gw, 5s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  std::cerr << "gateway ready " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - restarted_at).count()
            << " ms after the restart\n";
  EXPECT_TRUE(test::wait_ready(br, 5s)) << get(br, "/readyz").body;
  HttpResult back = post(*c, command_path("box-1"), kBody, {{"X-Request-Id", "after-restart"}});
  EXPECT_EQ(back.status, 200) << back.body << back.error << "\n" << stack->logs();
  EXPECT_EQ(back.body, R"({"id":"after-restart","result":{"ok":true}})");
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(0), 1.0);

  // Only the accepted commands reached the device.
  for (std::size_t i = published_before; i < device.commands().size(); ++i) {
    EXPECT_EQ(device.commands()[i].topic.find("refused-"), std::string::npos) << device.commands()[i].topic;
  }
}

TEST_F(RedisOutageTest, ReplyStoredWhileSubscriptionWasDownIsDeliveredAfterResubscribe) {
  // A silent device: the test plays the bridge by writing the result key
  // while the gateway's pub/sub connection is cut, so the PUBLISH is missed
  // and only the read after re-subscribing can deliver the reply.
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  auto call = std::async(std::launch::async, [&] {
    auto c = client(gw);
    return post(*c, command_path("box-1", "timeout_ms=8000"), kBody, {{"X-Request-Id", "resub-1"}});
  });
  ASSERT_TRUE(device.wait_for(1, 5s));
  const std::string reply = R"({"id":"resub-1","result":"stored while away"})";
  stack->redis().set("dev/box-1/response/resub-1", reply, 60000);
  const auto killed_at = std::chrono::steady_clock::now();
  EXPECT_GE(stack->redis().client().client_kill_type("pubsub"), 1);

  ASSERT_EQ(call.wait_for(4s), std::future_status::ready) << "not delivered after the reconnect\n" << stack->logs();
  HttpResult r = call.get();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, reply);
  EXPECT_LE(took.count(), 2500) << "the contract asks for about a second after the reconnect";
  std::cerr << "delivered " << took.count() << " ms after the subscriber connection was killed\n";
}

TEST_F(RedisOutageTest, FrozenRedisIsReportedStalledThenDownUntilItAnswersAgain) {
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kBody).status, 200);

  // SIGSTOP: the TCP connections stay open and the kernel still accepts new
  // ones; only an unanswered heartbeat can tell: stalled after
  // redis_stall_after_ms (500), down after redis_dead_after_ms (5000).
  stack->redis().process().signal(SIGSTOP);
  struct Resume {
    test::RedisServer& redis;
    ~Resume() { redis.process().signal(SIGCONT); }
  } resume{stack->redis()};
  const auto frozen_at = std::chrono::steady_clock::now();
  auto redis_state = [&] { return get(gw, "/readyz").json().value("redis", "?"); };
  auto since_frozen = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - frozen_at).count();
  };
  ASSERT_TRUE(test::eventually([&] { return redis_state() == "stalled"; }, 1500ms, 10ms)) << stack->logs();
  std::cerr << "frozen Redis reported stalled " << since_frozen() << " ms after SIGSTOP\n";
  EXPECT_EQ(get(gw, "/readyz").status, 503);
  ASSERT_TRUE(test::eventually([&] { return redis_state() == "down"; }, 7s, 10ms)) << stack->logs();
  std::cerr << "frozen Redis reported down " << since_frozen() << " ms after SIGSTOP\n";
  EXPECT_GE(since_frozen(), 5000) << "torn down before redis_dead_after_ms";

  // While Redis stays frozen it stays down, and commands are refused at once
  // (a reconnect that only completed the TCP handshake is not "up").
  int up_samples = 0, slow_refusals = 0, samples = 0;
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < until) {
    ++samples;
    if (redis_state() != "down") ++up_samples;
    HttpResult r = post(*c, command_path("box-1", "timeout_ms=300"), kBody);
    if (r.status != 503 || r.error_code() != "redis_unavailable" || r.elapsed >= 200ms) ++slow_refusals;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(up_samples, 0) << "of " << samples << " /readyz samples said Redis was up while it was frozen\n"
                           << stack->gateway().log_tail(15);
  EXPECT_EQ(slow_refusals, 0) << "of " << samples << " commands were not refused at once while Redis was frozen";

  stack->redis().process().signal(SIGCONT);
  EXPECT_TRUE(test::wait_ready(gw, 5s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  EXPECT_TRUE(test::wait_ready(br, 5s)) << get(br, "/readyz").body;
  HttpResult back = post(*c, command_path("box-1"), kBody);
  EXPECT_EQ(back.status, 200) << back.body << back.error << "\n" << stack->logs();
}

}  // namespace
}  // namespace boxgate::itest
