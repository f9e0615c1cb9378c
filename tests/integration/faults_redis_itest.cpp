// Redis going away and coming back, seen from the gateway and the bridge:
// Redis restarted while a command waits, the gateway's subscriber connection
// killed while the device replies, Redis down and back (refused at once past
// dependency_grace_ms, never queued; readiness follows; service resumes),
// Redis frozen (SIGSTOP: stalled, then down, then back), and the bridge's
// queue while Redis is away. Measured figures are printed with report().

#include <gtest/gtest.h>

#include "faults_support.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest::faults {
namespace {


class RedisFaults : public ::testing::Test {
 protected:
  void SetUp() override { stack = std::make_unique<Stack>("faults-redis"); }
  // A gateway and a bridge, a device that answers every command, and a first
  // command answered 200 through them.
  void start_serving() {
    gw = stack->add_gateway();
    br = stack->add_bridge();
    device = std::make_unique<ProbeDevice>(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
    c = client(gw);
    ASSERT_EQ(post(*c, command_path("box-1"), kPing).status, 200) << stack->logs();
  }
  void TearDown() override {
    if (stack) {
      stack->redis().process().signal(SIGCONT);  // never leave a frozen Redis behind
      stack->stop_daemons_and_check();
    }
    device.reset();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
  int gw = 0;
  int br = 0;
  std::unique_ptr<ProbeDevice> device;
  std::unique_ptr<httplib::Client> c;
};

// The device answers only after Redis is back (empty) and the gateway's
// command connection wrote the command's record back, while its subscriber
// and the bridge may still be reconnecting: the reply goes through the
// bridge's queue, and the gateway must get it through its re-subscription
// or the result key read right after it (contract step 4: within about a
// second of the reconnect). The bridge reconnects fast (backoff cap 10 ms), so
// its PUBLISH often comes before the gateway's re-SUBSCRIBE; the three
// reconnect timers race, so the restart is repeated a few times.
TEST_F(RedisFaults, RedisRestartedWhileACommandWaitsStillAnswers200) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge({"--redis-backoff-max-ms", "10"});
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);

  constexpr int kTrials = 5;
  for (int trial = 1; trial <= kTrials; ++trial) {
    const std::string id = "restart-" + std::to_string(trial);
    const std::size_t seen = device.count();
    // A previous trial may have been answered before both Redis connections
    // were back; a command sent then is rightly refused with 503.
    ASSERT_TRUE(test::wait_ready(gw, 5s));
    auto call = post_async(gw, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", id}});
    ASSERT_TRUE(device.wait_for(seen + 1, 5s)) << stack->logs();
    ASSERT_TRUE(test::wait_ready(gw, 5s));

    const std::size_t gw_log = stack->gateway().log_size();
    stack->redis().stop();
    ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("redis", "") == "down"; }, 3s));
    const auto restarted = Clock::now();
    stack->redis().start();  // returns once Redis answers PING; empty (no persistence)
    // The bridge stores a reply only under an existing record: the device
    // answers once the gateway's command connection wrote it back (its
    // subscriber may still be reconnecting).
    ASSERT_TRUE(test::eventually([&] { return stack->redis().get("dev/box-1/command/" + id).has_value(); }, 3s))
        << stack->gateway().log().substr(gw_log);

    const std::string reply = R"({"id":")" + id + R"(","result":"after the restart"})";
    device.publish("dev/box-1/response/" + id, reply, 1);
    // Not in time: wait for the command's own deadline to tell "late" from "lost".
    const bool in_time = call.wait_for(2500ms) == std::future_status::ready;
    ASSERT_EQ(call.wait_for(6s), std::future_status::ready) << "no answer at all\n" << stack->logs();
    HttpResult r = call.get();
    const std::string prefix = "trial_" + std::to_string(trial) + "_";
    report(prefix + "answered_ms_after_redis_restart", ms_since(restarted));
    report(prefix + "outcome", std::to_string(r.status) + (in_time ? " in time" : " LATE (at the command deadline)"));
    EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
    EXPECT_EQ(r.body, reply);
    EXPECT_TRUE(in_time) << "trial " << trial << ": the reply forwarded after the restart reached the caller only "
                         << "at its 5 s deadline (the final result-key read), not within ~1 s of the reconnect.\n"
                         << "gateway log since the stop:\n"
                         << stack->gateway().log().substr(gw_log) << "bridge log tail:\n"
                         << stack->bridge().log_tail(6);
    if (!in_time) break;  // the race is shown; more trials add nothing but time
  }
  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_queued") == 0.0; }, 3s));
}

// Redis restarted without persistence forgets the records of the commands in
// flight, and the bridge stores a reply only under an existing record. The
// gateway writes them back when its command connection is back, so a reply
// the device sends after that is stored and reaches the caller. The reply is
// larger than reply_inline_max_bytes: without its record it would not even be
// published, only dropped (a 504 at the deadline).
TEST_F(RedisFaults, RecordsLostInARestartWithoutPersistenceAreWrittenBackAndTheReplyArrives) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge({"--reply-inline-max-bytes", "1024"});
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  const std::string id = "no-persistence";
  const std::string record = "dev/box-1/command/" + id;
  auto call = post_async(gw, command_path("box-1", "timeout_ms=8000"), kPing, {{"X-Request-Id", id}});
  ASSERT_TRUE(device.wait_for(1, 5s)) << stack->logs();
  const std::optional<std::string> as_sent = stack->redis().get(record);
  ASSERT_TRUE(as_sent);

  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("redis", "") == "down"; }, 3s));
  const auto restarted = Clock::now();
  stack->redis().start();  // empty: the test Redis runs with --save "" and no AOF
  ASSERT_TRUE(test::wait_ready(gw, 5s)) << get(gw, "/readyz").body;
  ASSERT_TRUE(test::wait_ready(br, 5s)) << get(br, "/readyz").body;
  // Written back on the reconnect, as it was at send time (without it the
  // reply below is dropped: 504 at the deadline).
  EXPECT_TRUE(test::eventually([&] { return stack->redis().get(record).has_value(); }, 3s))
      << "the record Redis lost was not written back\n" << stack->gateway().log_tail(10);
  report("record_back_ms_after_redis_restart", ms_since(restarted));
  EXPECT_EQ(stack->redis().get(record), as_sent);
  EXPECT_EQ(metric(gw, "boxgate_command_records_restored_total"), 1.0);

  const std::string reply = R"({"id":")" + id + R"(","data":")" + std::string(4096, 'r') + R"("})";
  device.publish("dev/box-1/response/" + id, reply, 1);
  ASSERT_EQ(call.wait_for(3s), std::future_status::ready) << "no answer within 3 s of the reply\n" << stack->logs();
  HttpResult r = call.get();
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
  EXPECT_EQ(r.body, reply);
  EXPECT_EQ(metric(br, R"(boxgate_replies_dropped_total{reason="unsolicited"})"), 0.0);
}

// The hard variant of contract step 4: the gateway's pub/sub connection is
// killed and the reply is PUBLISHed in the gap, before the gateway has
// subscribed again, so the message reaches nobody. Only the read of the
// result key after re-subscribing can deliver it.
TEST_F(RedisFaults, ReplyPublishedWhileGatewaySubscriberIsDownIsRecoveredFromTheResultKey) {
  int gw = stack->add_gateway();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  test::RedisMonitor monitor(stack->redis().port());
  test::RedisClient admin(stack->redis().port());

  // The first reconnect is immediate, so the gap after CLIENT KILL is short:
  // the reply is stored and published in the same transaction as the kill,
  // so it lands in the gap every time (PUBLISH reaches 0 subscribers).
  const std::string id = "gap-1";
  const std::string channel = "dev/box-1/response/" + id;
  const std::size_t commands_before = device.count();
  auto call = post_async(gw, command_path("box-1", "timeout_ms=8000"), kPing, {{"X-Request-Id", id}});
  ASSERT_TRUE(device.wait_for(commands_before + 1, 5s)) << stack->logs();
  ASSERT_EQ(admin.pubsub_numsub(channel), 1);

  const auto killed = Clock::now();
  const std::string reply = R"({"id":")" + id + R"(","result":"published in the gap"})";
  ASSERT_EQ(admin.command({"MULTI"}).str, "OK");
  admin.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  admin.command({"SET", channel, reply, "PX", "60000"});
  admin.command({"PUBLISH", channel, reply});
  test::RespValue exec = admin.command({"EXEC"});
  ASSERT_EQ(exec.elements.size(), 3u);
  EXPECT_GE(exec.elements[0].integer, 1) << "the gateway's subscriber was killed";
  EXPECT_EQ(exec.elements[2].integer, 0) << "the reply was published while nobody listened";

  ASSERT_EQ(call.wait_for(6s), std::future_status::ready) << "reply lost\n" << stack->logs();
  HttpResult r = call.get();
  const long long took = ms_since(killed);
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
  EXPECT_EQ(r.body, reply);
  // The order Redis saw: PUBLISH before the second SUBSCRIBE, then the GET.
  int subscribes = 0;
  std::string order;
  for (const auto& line : monitor.lines()) {
    if (line.find("\"" + channel + "\"") == std::string::npos) continue;
    if (line.find("\"subscribe\"") != std::string::npos || line.find("\"SUBSCRIBE\"") != std::string::npos) {
      order += subscribes++ ? "resubscribe " : "subscribe ";
    } else if (line.find("\"PUBLISH\"") != std::string::npos || line.find("\"publish\"") != std::string::npos) {
      order += "publish ";
    } else if (line.find("\"GET\"") != std::string::npos || line.find("\"get\"") != std::string::npos) {
      order += "get ";
    }
  }
  report("redis_saw", order);
  report("answered_ms_after_kill", took);
  EXPECT_NE(order.find("publish resubscribe"), std::string::npos) << order;
  EXPECT_LE(took, 2500) << "the contract asks for about a second after the reconnect";
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="redis_subscriber"})").value_or(0), 1.0);
}

// Redis stopped: /readyz says so at once; new commands wait out the grace
// (1 s), then are refused at once with 503 redis_unavailable and the
// contract's headers, and never published; after Redis comes back on the same
// port, commands are served again within 0.5 s.
TEST_F(RedisFaults, RedisDownGives503QuicklyAndServiceResumesWithin5s) {
  ASSERT_NO_FATAL_FAILURE(start_serving());
  const auto stopped = Clock::now();
  stack->redis().stop();
  HttpResult r;
  ASSERT_TRUE(eventually_refused(*c, "redis_unavailable", 1500ms, r))
      << r.status << " " << r.body << r.error << "\n" << stack->logs();
  report("first_503_ms_after_stop", ms_since(stopped));
  // Once the outage is older than the grace, refusals are immediate.
  ASSERT_TRUE(eventually_refused(*c, "redis_unavailable", 2500ms, r, 100ms, "timeout_ms=300", 10ms))
      << "last answer " << r.status << " " << r.body << "\n" << stack->logs();
  report("refused_at_once_ms_after_stop", ms_since(stopped));
  EXPECT_LE(ms_since(stopped), 2000);

  // Refused at once, with the contract's headers and body, and never published.
  const std::size_t published_before = device->commands().size();
  r = post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "refused-1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.error_code(), "redis_unavailable") << r.body;
  EXPECT_LT(r.elapsed.count(), 100) << "refused at once";
  report("refusal_latency_ms", r.elapsed.count());
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

  // The point of this wait: an outage longer than a moment, so the reconnect
  // backoff grows and the 0.5 s bound below covers a grown backoff.
  std::this_thread::sleep_for(1500ms);
  const auto restarted = Clock::now();
  stack->redis().start();
  long long first_200 = -1;
  EXPECT_TRUE(test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=2000"), kPing);
        if (r.status == 200 && first_200 < 0) first_200 = ms_since(restarted);
        return r.status == 200;
      },
      5s, 20ms))
      << r.status << " " << r.body << r.error << "\n" << stack->logs();
  report("first_200_ms_after_restart", first_200);
  EXPECT_GE(first_200, 0);
  EXPECT_LE(first_200, 500) << "the first reconnect after a loss is immediate, the backoff cap 500 ms";
  EXPECT_TRUE(test::wait_ready(gw, 5s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  EXPECT_TRUE(test::wait_ready(br, 5s)) << get(br, "/readyz").body;
  HttpResult back = post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "after-restart"}});
  EXPECT_EQ(back.status, 200) << back.body << back.error << "\n" << stack->logs();
  EXPECT_EQ(back.body, R"({"id":"after-restart","result":{"ok":true}})");
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(0), 1.0);

  // The refused command never reached the device.
  const auto published = device->commands();
  for (std::size_t i = published_before; i < published.size(); ++i) {
    EXPECT_EQ(published[i].topic.find("refused-"), std::string::npos) << published[i].topic;
  }
}

// Redis frozen with SIGSTOP: the TCP connections stay open and the kernel
// still accepts new ones; only an unanswered heartbeat can tell. The gateway
// reports "stalled" after redis_stall_after_ms (500; not ready within 2 s),
// "down" after redis_dead_after_ms (5000), stays down (commands refused at
// once) while Redis stays frozen, and is ready again after SIGCONT.
TEST_F(RedisFaults, FrozenRedisIsReportedStalledThenDownUntilItAnswersAgain) {
  ASSERT_NO_FATAL_FAILURE(start_serving());
  const auto frozen = Clock::now();
  stack->redis().process().signal(SIGSTOP);  // TearDown sends SIGCONT whatever happens
  HttpResult ready;
  ASSERT_TRUE(test::eventually(
      [&] {
        ready = get(gw, "/readyz");
        return ready.status == 503;
      },
      2s, 10ms))
      << ready.status << " " << ready.body << "\n" << stack->logs();
  report("not_ready_ms_after_sigstop", ms_since(frozen));
  EXPECT_LE(ms_since(frozen), 2000);
  EXPECT_EQ(ready.json().value("redis", ""), "stalled") << ready.body;
  HttpResult r = post(*c, command_path("box-1", "timeout_ms=1000"), kPing);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.error_code(), "redis_unavailable") << r.body;
  report("command_while_stalled", std::to_string(r.status) + " " + r.error_code() + " in " +
                                      std::to_string(r.elapsed.count()) + " ms");

  auto redis_state = [&] { return get(gw, "/readyz").json().value("redis", "?"); };
  ASSERT_TRUE(test::eventually([&] { return redis_state() == "down"; }, 7s, 10ms)) << stack->logs();
  report("down_ms_after_sigstop", ms_since(frozen));
  EXPECT_GE(ms_since(frozen), 5000) << "torn down before redis_dead_after_ms";

  // While Redis stays frozen it stays down, and commands are refused at once
  // (a reconnect that only completed the TCP handshake is not "up"). What is
  // proven is that nothing changes within the window: sampled every 50 ms.
  int up_samples = 0, slow_refusals = 0, samples = 0;
  const auto until = Clock::now() + 2500ms;
  while (Clock::now() < until) {
    ++samples;
    if (redis_state() != "down") ++up_samples;
    r = post(*c, command_path("box-1", "timeout_ms=300"), kPing);
    if (r.status != 503 || r.error_code() != "redis_unavailable" || r.elapsed >= 200ms) ++slow_refusals;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(up_samples, 0) << "of " << samples << " /readyz samples said Redis was up while it was frozen\n"
                           << stack->gateway().log_tail(15);
  EXPECT_EQ(slow_refusals, 0) << "of " << samples << " commands were not refused at once while Redis was frozen";

  const auto resumed = Clock::now();
  stack->redis().process().signal(SIGCONT);
  EXPECT_TRUE(test::wait_ready(gw, 5s)) << get(gw, "/readyz").body << "\n" << stack->logs();
  report("ready_ms_after_sigcont", ms_since(resumed));
  EXPECT_TRUE(test::wait_ready(br, 5s)) << get(br, "/readyz").body;
  r = post(*c, command_path("box-1"), kPing);
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
}

// The bridge while Redis is down: replies wait in its queue and are flushed
// when Redis is back (result keys exist, queue gauge back to 0). Redis comes
// back empty; the gateway waiting for the commands writes their records back
// before the bridge (held meanwhile) flushes.
TEST_F(RedisFaults, BridgeQueuesRepliesWhileRedisIsDownAndFlushesThemOnReturn) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  constexpr int kReplies = 50;

  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < kReplies; ++i) {
    calls.push_back(post_async(gw, command_path("box-q", "timeout_ms=30000"), kPing,
                               {{"X-Request-Id", "q-" + std::to_string(i)}}));
  }
  ASSERT_TRUE(device.wait_for(kReplies, 10s)) << stack->logs();
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return get(br, "/readyz").json().value("redis", "") == "down"; }, 3s));
  for (int i = 0; i < kReplies; ++i) {
    device.publish("dev/box-q/response/q-" + std::to_string(i), R"({"id":"q-)" + std::to_string(i) + R"(","n":1})");
  }
  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_queued") == double(kReplies); }, 3s))
      << "queued: " << metric(br, "boxgate_replies_queued").value_or(-1);
  report("queued_while_down", metric(br, "boxgate_replies_queued").value_or(-1));
  EXPECT_EQ(metric(br, "boxgate_replies_forwarded_total"), 0.0);

  const auto restarted = Clock::now();
  ASSERT_TRUE(stack->restart_redis_holding_the_bridge(kReplies))
      << "records written back: " << metric(gw, "boxgate_command_records_restored_total").value_or(-1);
  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_forwarded_total") == double(kReplies); }, 5s))
      << "forwarded: " << metric(br, "boxgate_replies_forwarded_total").value_or(-1) << "\n" << stack->logs();
  report("flushed_ms_after_restart", ms_since(restarted));
  EXPECT_EQ(metric(br, "boxgate_replies_queued"), 0.0);
  int keys = 0;
  for (int i = 0; i < kReplies; ++i) {
    auto value = stack->redis().get("dev/box-q/response/q-" + std::to_string(i));
    if (value == R"({"id":"q-)" + std::to_string(i) + R"(","n":1})") ++keys;
  }
  EXPECT_EQ(keys, kReplies);
  report("result_keys_present", keys);
  EXPECT_EQ(metric(br, R"(boxgate_replies_dropped_total{reason="queue_full"})"), 0.0);
  for (auto& call : calls) EXPECT_EQ(call.get().status, 200);
}

}  // namespace
}  // namespace boxgate::itest::faults
