// Hardening on real processes: the contract's step order, the answer
// at the end of a drain, strict query strings, memory bounded in bytes,
// liveness judged by progress, and large replies end to end.

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "faults_support.hpp"
#include "support/records.hpp"

namespace boxgate::itest {
namespace {

using namespace faults;

constexpr const char* kMethodOnly = R"({"method":"m"})";

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // shadow memory and quarantine make RSS meaningless
#else
constexpr bool kSanitized = false;
#endif

// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
long proc_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// A device that never answers; it records the commands it gets.
std::unique_ptr<MqttProbe> silent_device(int mqtt_port) {
  auto probe = std::make_unique<MqttProbe>(mqtt_port);
  probe->subscribe("dev/+/request/+");
  return probe;
}

// A reply {"id":"<id>","result":"xxx..."} of exactly `bytes` bytes.
std::string reply_of_size(const std::string& id, std::size_t bytes) {
  std::string head = R"({"id":")" + id + R"(","result":")";
  std::string tail = "\"}";
  return head + std::string(bytes - head.size() - tail.size(), 'x') + tail;
}

class HardeningTest : public StackTest {
 protected:
  HardeningTest() : StackTest("hardening") {}
};

// ---- step order ------------------------------------------------------------

TEST_F(HardeningTest, StoredReplyIsAnsweredBeforeEveryRefusal) {
  int gw = stack->add_gateway({"--max-pending", "1"});
  auto device = silent_device(stack->mqtt_port());
  const std::string stored = R"({"id":"kept","result":42})";
  test::plant_stored_reply(stack->redis(), "box-1", "kept", kMethodOnly, stored);
  auto retry = [&] {
    auto c = client(gw);
    return post(*c, command_path("box-1"), kMethodOnly, {{"X-Request-Id", "kept"}});
  };

  // At the limit: one command waits and fills max_pending.
  auto waiting = post_async(gw, command_path("box-2", "timeout_ms=4000"), kMethodOnly);
  ASSERT_TRUE(device->wait_for(1, 3s));
  auto c = client(gw);
  EXPECT_EQ(post(*c, command_path("box-3"), kMethodOnly).error_code(), "too_many_pending");
  HttpResult at_limit = retry();
  EXPECT_EQ(at_limit.status, 200) << at_limit.body;
  EXPECT_EQ(at_limit.body, stored);

  // MQTT down.
  stack->mqtt().stop();
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("mqtt", "") == "down"; }, 5s));
  HttpResult mqtt_down = retry();
  EXPECT_EQ(mqtt_down.status, 200) << mqtt_down.body;
  EXPECT_EQ(mqtt_down.body, stored);

  // Draining: the waiting command keeps the drain going.
  stack->gateway().signal(SIGTERM);
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").json().value("status", "") == "draining"; }, 3s));
  HttpResult draining = retry();
  EXPECT_EQ(draining.status, 200) << draining.body;
  EXPECT_EQ(draining.body, stored);
  auto c2 = client(gw);
  EXPECT_EQ(post(*c2, command_path("box-3"), kMethodOnly).error_code(), "shutting_down");

  EXPECT_EQ(waiting.get().status, 504);
  EXPECT_EQ(stack->gateway().wait_exit(10s), 0) << stack->logs();
  EXPECT_EQ(device->count(), 1u) << "a stored reply is never published again";
}

// ---- the end of a drain ------------------------------------------------------

TEST_F(HardeningTest, DrainEndAnswersPublishedCommandsDeliveredNotRetry) {
  int gw = stack->add_gateway({"--drain-timeout-ms", "300"});
  auto device = silent_device(stack->mqtt_port());
  auto call = post_async(gw, command_path("box-1", "timeout_ms=20000"), kMethodOnly, {{"X-Request-Id", "sent-1"}});
  ASSERT_TRUE(device->wait_for(1, 3s));
  auto signalled = Clock::now();
  stack->gateway().signal(SIGTERM);
  HttpResult r = call.get();
  report("answered_ms_after_sigterm", ms_since(signalled));
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().value("status", ""), "delivered") << r.body;
  EXPECT_EQ(r.json().value("request_id", ""), "sent-1") << r.body;
  EXPECT_EQ(r.header("X-Request-Id"), "sent-1");
  EXPECT_FALSE(r.has_header("Retry-After")) << "a delivered command must not be retried";
  EXPECT_EQ(stack->gateway().wait_exit(10s), 0) << stack->logs();
}

// ---- strict query strings ------------------------------------------------------

TEST_F(HardeningTest, QueryStringsAreReadStrictly) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  struct Case {
    std::string query;
    std::string code;
  };
  const std::vector<Case> refused{
      {"timeout_ms=%35", "invalid_timeout"},       {"timeout_ms=1%30", "invalid_timeout"},
      {"timeout_ms=5&timeout_ms=9", "invalid_timeout"}, {"timeout_ms", "invalid_timeout"},
      {"timeout_ms=+5", "invalid_timeout"},        {"timeout_ms=5%00", "invalid_timeout"},
      {"timeout=5000", "invalid_query"},           {"timeout_ms=100&debug=1", "invalid_query"},
      {"timeout%5Fms=100", "invalid_query"},       {"=5", "invalid_query"},
  };
  auto c = client(gw);
  for (const Case& k : refused) {
    HttpResult r = post(*c, command_path("box-1", k.query), kMethodOnly);
    EXPECT_EQ(r.status, 400) << k.query << ": " << r.body;
    EXPECT_EQ(r.error_code(), k.code) << k.query << ": " << r.body;
  }
  EXPECT_EQ(device.commands().size(), 0u) << "nothing is published for a refused query";
  for (const std::string ok : {"timeout_ms=2000&", "&timeout_ms=2000", ""}) {
    HttpResult r = post(*c, command_path("box-1", ok), kMethodOnly);
    EXPECT_EQ(r.status, 200) << ok << ": " << r.body;
  }
}

// ---- memory bounded in bytes -----------------------------------------------

// 40 commands of 1 MiB against an 8 MiB budget, sent one after another (so
// uploads do not pile up in the kernel): 7 fit, the rest get 429 at once, and
// the gateway's peak RSS grows by about the budget, not by 40 MiB.
TEST_F(HardeningTest, PendingBytesBoundTheGatewaysMemory) {
  constexpr std::size_t kMiB = 1 << 20;
  int gw = stack->add_gateway({"--max-pending-bytes", std::to_string(8 * kMiB), "--max-body-bytes",
                               std::to_string(kMiB + 4096), "--drain-timeout-ms", "300"});
  auto device = silent_device(stack->mqtt_port());
  const long rss_before = proc_kib(stack->gateway().pid(), "VmRSS");
  const std::string body = R"({"method":"blob","data":")" + std::string(kMiB - 32, 'b') + "\"}";

  std::vector<std::future<HttpResult>> accepted;
  int refused = 0;
  for (int i = 0; i < 40; ++i) {
    std::size_t published = device->count();
    auto call = post_async(gw, command_path("box-" + std::to_string(i), "timeout_ms=15000"), body);
    bool got = test::eventually(
        [&] { return device->count() > published || call.wait_for(0s) == std::future_status::ready; }, 5s, 5ms);
    ASSERT_TRUE(got) << "command " << i << " neither published nor answered";
    if (device->count() > published) {
      accepted.push_back(std::move(call));
      continue;
    }
    HttpResult r = call.get();
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.error_code(), "too_many_pending") << r.body;
    EXPECT_LT(r.elapsed.count(), 1000) << "refused at once";
    ++refused;
  }
  report("accepted", accepted.size());
  report("refused", refused);
  EXPECT_EQ(accepted.size(), 7u) << "8 MiB / (1 MiB + 4 KiB) per command";
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="too_many_bytes"})").value_or(-1), refused);

  const long peak = proc_kib(stack->gateway().pid(), "VmHWM");
  report("rss_before_kib", rss_before);
  report("peak_rss_kib", peak);
  if (!kSanitized) {
    EXPECT_LT(peak - rss_before, static_cast<long>((8 + 24) * 1024))
        << "peak RSS grew by more than the 8 MiB budget + 24 MiB overhead";
  }
  stack->stop_daemons_and_check();  // answers the waiting calls (202 delivered)
  for (auto& call : accepted) EXPECT_EQ(call.get().status, 202);
}

// Redis stopped, devices send 20 replies of 1 MiB to a bridge allowed 4 MiB:
// 4 are held and forwarded once Redis is back, 16 are dropped and counted.
// Redis comes back empty (no persistence): the gateway still waiting for the
// 20 commands writes their records back on its reconnect. The bridge is held
// (SIGSTOP) until it has, so its flush cannot overtake the gateway's
// reconnect (a reply that does is not stored: docs/security.md).
TEST_F(HardeningTest, BridgeHoldsAtMostQueueMaxBytes) {
  constexpr std::size_t kMiB = 1 << 20;
  int gw = stack->add_gateway({"--drain-timeout-ms", "300"});
  int br = stack->add_bridge({"--queue-max-bytes", std::to_string(4 * kMiB), "--max-reply-bytes",
                              std::to_string(kMiB)});
  auto device = silent_device(stack->mqtt_port());
  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(post_async(gw, command_path("box-1", "timeout_ms=30000"), kMethodOnly,
                               {{"X-Request-Id", "big-" + std::to_string(i)}}));
  }
  ASSERT_TRUE(device->wait_for(20, 10s)) << stack->logs();
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return get(br, "/readyz").json().value("redis", "") == "down"; }, 5s));
  const long rss_before = proc_kib(stack->bridge().pid(), "VmRSS");
  for (int i = 0; i < 20; ++i) {
    std::string id = "big-" + std::to_string(i);
    device->publish("dev/box-1/response/" + id, reply_of_size(id, kMiB));
  }
  const std::string full = R"(boxgate_replies_dropped_total{reason="queue_full"})";
  ASSERT_TRUE(test::eventually([&] { return metric(br, full).value_or(0) == 16; }, 10s))
      << metric(br, full).value_or(-1);
  EXPECT_EQ(metric(br, "boxgate_replies_held_bytes").value_or(-1), 4.0 * kMiB);
  const long peak = proc_kib(stack->bridge().pid(), "VmHWM");
  report("peak_rss_growth_kib", peak - rss_before);
  if (!kSanitized) {
    EXPECT_LT(peak - rss_before, static_cast<long>((4 + 24) * 1024));
  }

  ASSERT_TRUE(stack->restart_redis_holding_the_bridge(20))
      << "records written back: " << metric(gw, "boxgate_command_records_restored_total").value_or(-1);
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_forwarded_total").value_or(0) == 4; }, 10s))
      << stack->logs();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(stack->redis().get("dev/box-1/response/big-" + std::to_string(i)));
  EXPECT_FALSE(stack->redis().get("dev/box-1/response/big-4"));
  EXPECT_EQ(metric(br, "boxgate_replies_held_bytes").value_or(-1), 0);
  for (int i = 0; i < 4; ++i) {
    HttpResult r = calls[i].get();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, reply_of_size("big-" + std::to_string(i), kMiB));
  }
  stack->stop_daemons_and_check();  // answers the 16 still waiting (202 delivered)
  for (int i = 4; i < 20; ++i) EXPECT_EQ(calls[i].get().status, 202);
}

TEST_F(HardeningTest, BridgeStoppingWithRedisAwayLogsEveryReplyItHeld) {
  stack->add_bridge({"--drain-timeout-ms", "300"});
  MqttProbe device(stack->mqtt_port());
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return get(stack->bridge_port(), "/readyz").status == 503; }, 5s));
  for (int i = 0; i < 3; ++i) device.publish("dev/box-1/response/left-" + std::to_string(i), R"({"r":1})");
  ASSERT_TRUE(test::eventually(
      [&] { return metric(stack->bridge_port(), "boxgate_replies_queued").value_or(0) == 3; }, 5s));
  EXPECT_EQ(stack->bridge().stop(SIGTERM, 10s), 0);
  std::string log = stack->bridge().log_tail(50);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(log.find("key dev/box-1/response/left-" + std::to_string(i)), std::string::npos) << log;
  }
  EXPECT_NE(log.find("3 replies not forwarded at exit"), std::string::npos) << log;
}

// ---- liveness judged by progress ---------------------------------------------

// Three 1.5 MiB replies through a 1 MB/s link: the PING behind them waits
// seconds, far beyond redis_dead_after_ms=500, yet bytes keep moving, so
// Redis is not declared dead and nothing is sent twice.
TEST_F(HardeningTest, BusyRedisOnASlowLinkIsNotDeclaredDead) {
  test::ThrottleProxy link(stack->redis().port(), 1'000'000);
  int br = stack->add_bridge({"--redis-port", std::to_string(link.port()), "--redis-dead-after-ms", "500",
                              "--redis-heartbeat-ms", "100"});
  MqttProbe device(stack->mqtt_port());
  for (int i = 0; i < 3; ++i) test::issue_command(stack->redis(), "box-1", "slow-" + std::to_string(i));
  auto started = Clock::now();
  for (int i = 0; i < 3; ++i) {
    std::string id = "slow-" + std::to_string(i);
    device.publish("dev/box-1/response/" + id, reply_of_size(id, 1536 * 1024));
  }
  bool forwarded = test::eventually(
      [&] { return metric(br, "boxgate_replies_forwarded_total").value_or(0) == 3; }, 20s, 100ms);
  report("forwarded_ms", ms_since(started));
  ASSERT_TRUE(forwarded) << stack->logs();
  EXPECT_EQ(metric(br, R"(boxgate_reconnects_total{dependency="redis"})").value_or(-1), 0) << stack->logs();
  EXPECT_EQ(link.connections(), 1u) << "the connection was never dropped";
}

// A 4 MiB stored reply read by the gateway through a 1 MB/s link.
TEST_F(HardeningTest, LargeGetOnASlowLinkIsNotDeclaredDead) {
  test::ThrottleProxy link(stack->redis().port(), 1'000'000);
  int gw = stack->add_gateway({"--redis-port", std::to_string(link.port()), "--redis-dead-after-ms", "500",
                               "--redis-heartbeat-ms", "100"});
  const std::string stored = reply_of_size("big-get", 4 << 20);
  test::plant_stored_reply(stack->redis(), "box-1", "big-get", kMethodOnly, stored);
  auto c = client(gw);
  c->set_read_timeout(std::chrono::seconds(20));
  HttpResult r = post(*c, command_path("box-1"), kMethodOnly, {{"X-Request-Id", "big-get"}});
  report("answered_ms", r.elapsed.count());
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 200) << stack->logs();
  EXPECT_EQ(r.body.size(), stored.size());
  EXPECT_EQ(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(-1), 0) << stack->logs();
}

// ---- large replies end to end ------------------------------------------------

// 8 concurrent 16 MiB replies to one gateway: 128 MiB would overflow Redis's
// 32 MB pub/sub output limit and cut the gateway's subscriptions; as stored-
// reply notices they arrive whole and the subscriber stays connected.
TEST_F(HardeningTest, EightConcurrentSixteenMiBRepliesArriveWhole) {
  constexpr std::size_t kSize = 16 << 20;
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", [](const MqttMessage& m) {
    std::string id = last_level(m.topic);
    return std::make_optional(std::make_pair(response_topic_for(m.topic), reply_of_size(id, kSize)));
  });
  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(post_async(gw, command_path("box-" + std::to_string(i), "timeout_ms=30000"), kMethodOnly,
                               {{"X-Request-Id", "huge-" + std::to_string(i)}}));
  }
  for (int i = 0; i < 8; ++i) {
    HttpResult r = calls[i].get();
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200) << stack->logs();
    EXPECT_EQ(r.body, reply_of_size("huge-" + std::to_string(i), kSize));
  }
  EXPECT_EQ(metric(gw, R"(boxgate_reconnects_total{dependency="redis_subscriber"})").value_or(-1), 0);
  EXPECT_EQ(stack->redis().client().command({"CONFIG", "GET", "client-output-buffer-limit"}).type,
            test::RespValue::Type::array);
}

// A 16 MiB reply to a client that reads at ~6 MB/s takes seconds to flow out,
// far longer than http_idle_timeout_ms=500: it must arrive whole.
TEST_F(HardeningTest, SlowReaderGetsALargeReplyWhole) {
  int gw = stack->add_gateway({"--http-idle-timeout-ms", "500"});
  const std::string stored = reply_of_size("slow-read", 16 << 20);
  test::plant_stored_reply(stack->redis(), "box-1", "slow-read", kMethodOnly, stored);
  int fd = test::connect_loopback(gw, "slow reader", {.receive_buffer = 64 * 1024});
  std::string request = std::string("POST ") + command_path("box-1") +
                        " HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-read\r\nContent-Type: application/json\r\n"
                        "Content-Length: " + std::to_string(std::string(kMethodOnly).size()) + "\r\n\r\n" + kMethodOnly;
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string got;
  auto started = Clock::now();
  char buf[64 * 1024];
  while (ms_since(started) < 30000) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    auto head_end = got.find("\r\n\r\n");
    if (head_end != std::string::npos && got.size() - head_end - 4 >= stored.size()) break;
    std::this_thread::sleep_for(10ms);  // ~64 KiB per 10 ms
  }
  ::close(fd);
  report("read_ms", ms_since(started));
  auto head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << got.substr(0, 200);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(got.size() - head_end - 4, stored.size()) << "the reply was cut";
  EXPECT_GT(ms_since(started), 1000) << "the client did read slowly";
}

}  // namespace
}  // namespace boxgate::itest
