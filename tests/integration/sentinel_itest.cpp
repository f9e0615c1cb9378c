// Redis Sentinel with the real daemons: readiness while no
// sentinel knows the master, and failover -- the master killed with SIGKILL
// under load, or frozen with SIGSTOP -- after which both gateway connections
// and the bridge follow the promoted replica. Every figure is printed with
// report(). The resolver's own tests are in sentinel_resolver_itest.cpp.

#include <gtest/gtest.h>

#include "faults_support.hpp"
#include "support/redis_sentinel.hpp"

namespace boxgate::itest::faults {
namespace {

using test::RedisSentinelGroup;


// Mosquitto, a sentinel group and the daemons pointed at the sentinels.
class SentinelFailover : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp = std::make_unique<test::TempDir>("sentinel");
    group = std::make_unique<RedisSentinelGroup>(*tmp);
    mqtt = std::make_unique<test::Mosquitto>(*tmp);
  }
  void TearDown() override {
    for (auto* daemons : {&gateways, &bridges, &devsims}) {
      for (auto& p : *daemons) {
        int status = p.stop();
        EXPECT_EQ(status, 0) << p.name() << " exit status; log tail:\n" << p.log_tail();
        EXPECT_EQ(p.sanitizer_report(), "") << p.name();
      }
      daemons->clear();
    }
    mqtt.reset();
    group.reset();
    tmp.reset();
  }
  std::vector<std::string> sentinel_flags() const {
    return {"--redis-mode", "sentinel", "--redis-sentinels", group->sentinels_flag(), "--redis-backoff-max-ms", "200"};
  }
  int add_gateway() {
    int port = test::free_port();
    gateways.push_back(test::start_gateway(*tmp, port, group->node(0).port(), mqtt->port(), sentinel_flags()));
    if (!test::wait_ready(port, 15s)) throw std::runtime_error("gateway not ready:\n" + gateways.back().log_tail());
    return port;
  }
  int add_bridge() {
    int port = test::free_port();
    bridges.push_back(test::start_bridge(*tmp, port, group->node(0).port(), mqtt->port(), sentinel_flags()));
    if (!test::wait_ready(port, 15s)) throw std::runtime_error("bridge not ready:\n" + bridges.back().log_tail());
    return port;
  }
  std::string logs() {
    std::string out;
    for (auto& p : gateways) out += "--- " + p.name() + "\n" + p.log_tail(25);
    for (auto& p : bridges) out += "--- " + p.name() + "\n" + p.log_tail(15);
    return out + group->logs(8);
  }
  // Kills the master and waits until every sentinel names the replica.
  long long fail_over() {
    const int replica = group->node(1).port();
    killed = Clock::now();
    group->node(0).kill9();
    EXPECT_TRUE(group->wait_master_is(replica, 15s)) << "no failover\n" << group->logs();
    return ms_since(killed);
  }

  std::unique_ptr<test::TempDir> tmp;
  std::unique_ptr<RedisSentinelGroup> group;
  std::unique_ptr<test::Mosquitto> mqtt;
  std::vector<test::Process> gateways, bridges, devsims;
  Clock::time_point killed;
};

TEST_F(SentinelFailover, ReadinessNamesTheMasterProblemWhileNoSentinelKnowsIt) {
  int port = test::free_port();
  std::vector<std::string> flags = sentinel_flags();
  flags.insert(flags.end(), {"--redis-master-name", "nosuchmaster"});
  gateways.push_back(test::start_gateway(*tmp, port, group->node(0).port(), mqtt->port(), flags));
  HttpResult ready;
  ASSERT_TRUE(test::eventually(
      [&] {
        ready = get(port, "/readyz");
        return ready.json().value("redis_error", "") == "sentinels know no master nosuchmaster";
      },
      5s))
      << ready.body;
  EXPECT_EQ(ready.status, 503);
  report("readyz", ready.body);
}

// One caller's outcome: status, its timeout, how long it took, when it
// ended (ms after `origin`, the kill).
struct Call {
  int status;
  long long timeout_ms;
  long long elapsed_ms;
  long long ended_ms;
  long long started_ms() const { return ended_ms - elapsed_ms; }
};

// Commands from one keep-alive client per entry of `timeouts_ms` (its
// commands' timeout_ms), until join(); every outcome kept.
class TimedLoad {
 public:
  TimedLoad(int port, const std::vector<long long>& timeouts_ms, Clock::time_point origin) {
    for (std::size_t t = 0; t < timeouts_ms.size(); ++t) {
      workers_.emplace_back([this, port, t, origin, timeout = timeouts_ms[t]] {
        auto c = client(port);
        const std::string path = command_path("box-" + std::to_string(t % 4 + 1), "timeout_ms=" + std::to_string(timeout));
        while (!stop_) {
          HttpResult r = post(*c, path, kPing);
          long long ended = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - origin).count();
          {
            std::lock_guard lock(mu_);
            calls_.push_back({r.status, timeout, r.elapsed.count(), ended});
          }
          if (r.status == -1) c = client(port);
          if (r.status != 200) std::this_thread::sleep_for(20ms);  // a caller's back-off: no busy loop of refusals
        }
      });
    }
  }
  ~TimedLoad() { join(); }
  std::vector<Call> join() {
    stop_ = true;
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    std::lock_guard lock(mu_);
    return calls_;
  }
  // 200s of commands sent after `ms`.
  std::size_t ok_after(long long ms) {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const Call& c : calls_) n += c.status == 200 && c.started_ms() > ms;
    return n;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Call> calls_;
  std::vector<std::thread> workers_;
};

// What the calls that ended after the kill add up to.
struct Window {
  int ok = 0, unavailable = 0, timed_out = 0, other = 0;
  long long slowest_503 = 0, worst_overrun = -1000000, last_failure = -1, recovered = -1;
};
Window tally(const std::vector<Call>& calls) {
  Window w;
  for (const Call& c : calls) {  // in the order they ended
    if (c.ended_ms < 0) continue;  // before the kill
    w.worst_overrun = std::max(w.worst_overrun, c.elapsed_ms - c.timeout_ms);
    if (c.status == 200) {
      ++w.ok;
      if (w.recovered < 0 && c.started_ms() > 0) w.recovered = c.ended_ms;
      continue;
    }
    c.status == 503 ? ++w.unavailable : c.status == 504 ? ++w.timed_out : ++w.other;
    if (c.status == 503) w.slowest_503 = std::max(w.slowest_503, c.elapsed_ms);
    w.last_failure = c.ended_ms;
    w.recovered = -1;  // a failure after a 200: not recovered yet
  }
  return w;
}

// Steady load; kill -9 the master. Every call ends by its own timeout (none
// hangs), the ones that fail in the window are 503 at once after the grace
// (or 504 at their own deadline), and commands are answered 200 again
// within 10 s of the kill. Half the callers give 1 s timeouts, so some are
// free to send new commands while the failover is under way.
TEST_F(SentinelFailover, MasterKilledUnderLoadCallsFailFastAndServiceIsBackWithin10s) {
  int gw = add_gateway();
  int br = add_bridge();
  devsims.push_back(test::start_devsim(*tmp, mqtt->port(), {"--box-list", "box-1,box-2,box-3,box-4", "--delay-ms", "50"}));
  ASSERT_EQ(post(*client(gw), command_path("box-1"), kPing).status, 200) << logs();

  const auto origin = Clock::now() + 1s;  // the kill, below
  TimedLoad load(gw, {3000, 3000, 3000, 3000, 1000, 1000, 1000, 1000}, origin);
  std::this_thread::sleep_until(origin);
  const long long failover_ms = fail_over();
  // Back: commands sent after the sentinels switched are answered 200.
  const bool back = test::eventually([&] { return load.ok_after(failover_ms) >= 8; }, 10s, 20ms);
  // Some more calls on the new master.
  if (back) test::eventually([&] { return load.ok_after(failover_ms) >= 16; }, 5s, 20ms);
  Window w = tally(load.join());

  report("sentinels_switched_ms_after_kill", failover_ms);
  report("window_ok", w.ok);
  report("window_503", w.unavailable);
  report("window_504", w.timed_out);
  report("window_other", w.other);
  report("slowest_503_ms", w.slowest_503);
  report("worst_call_ms_past_its_timeout", w.worst_overrun);
  report("last_failure_ms_after_kill", w.last_failure);
  report("recovered_ms_after_kill", w.recovered);
  EXPECT_TRUE(back) << "no 200 within 10 s of the kill\n" << logs();
  EXPECT_EQ(w.other, 0) << logs();
  EXPECT_LE(w.worst_overrun, 500) << "a call outlived its timeout";
  EXPECT_LE(w.slowest_503, 1500) << "a refusal comes after the grace (1 s), not at the timeout";
  EXPECT_GE(w.recovered, 0);
  EXPECT_LE(w.recovered, 10000);
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="redis"})").value_or(0), 1.0);
  EXPECT_GE(metric(gw, R"(boxgate_reconnects_total{dependency="redis_subscriber"})").value_or(0), 1.0);
  EXPECT_GE(metric(br, R"(boxgate_reconnects_total{dependency="redis"})").value_or(0), 1.0);
  EXPECT_EQ(get(gw, "/readyz").status, 200);
}

// A frozen master (SIGSTOP) keeps every socket open: without a hint the
// connections would wait for redis_dead_after_ms (5 s) to give it up. The
// sentinels' +switch-master moves them as soon as the replica is promoted.
TEST_F(SentinelFailover, FrozenMasterIsLeftOnTheSwitchMasterHintBeforeTheHeartbeatGivesUp) {
  int gw = add_gateway();
  add_bridge();
  devsims.push_back(test::start_devsim(*tmp, mqtt->port(), {"--box-list", "box-1"}));
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), kPing).status, 200) << logs();

  const int replica = group->node(1).port();
  killed = Clock::now();
  group->node(0).process().signal(SIGSTOP);
  const bool switched = group->wait_master_is(replica, 15s);
  const long long switched_ms = ms_since(killed);
  HttpResult r;
  const bool back = test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=1000"), kPing);
        return r.status == 200;
      },
      8s, 20ms);
  const long long back_ms = ms_since(killed);
  group->node(0).process().signal(SIGCONT);  // never leave it frozen; Sentinel makes it a replica
  report("sentinels_switched_ms_after_sigstop", switched_ms);
  report("first_200_ms_after_sigstop", back_ms);
  ASSERT_TRUE(switched) << group->logs();
  EXPECT_TRUE(back) << r.status << " " << r.body << "\n" << logs();
  EXPECT_LT(back_ms, switched_ms + 1500) << "the hint, not the 5 s heartbeat, moved the connections\n" << logs();
  EXPECT_NE(gateways[0].log().find("sentinel says master mymaster switched to"), std::string::npos);
}

// A command waits; its reply is stored (replicated, never published) and
// the master dies. Only the gateway's re-read of the result key after it
// subscribed again on the new master can answer it (contract step 4).
TEST_F(SentinelFailover, WaitingCommandIsAnsweredFromTheResultKeyOnTheNewMaster) {
  int gw = add_gateway();
  MqttProbe device(mqtt->port());
  device.subscribe("dev/+/request/+", 1);
  const std::string id = "failover-1";
  const std::string key = "dev/box-1/response/" + id;
  auto call = post_async(gw, command_path("box-1", "timeout_ms=15000"), kPing, {{"X-Request-Id", id}});
  ASSERT_TRUE(device.wait_for(1, 5s)) << logs();

  const std::string reply = R"({"id":")" + id + R"(","result":"stored before the failover"})";
  group->node(0).set(key, reply, 60000);
  ASSERT_TRUE(test::eventually([&] { return group->node(1).get(key) == reply; }, 3s)) << "not replicated";
  const long long failover_ms = fail_over();
  ASSERT_EQ(call.wait_for(10s), std::future_status::ready) << "no answer\n" << logs();
  HttpResult r = call.get();
  report("sentinels_switched_ms_after_kill", failover_ms);
  report("answered_ms_after_kill", ms_since(killed));
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << logs();
  EXPECT_EQ(r.body, reply);
}

// Queued commands ride through a failover: the replica that takes over
// holds the box's queue (replicated like every key), and the box's wake
// after it sends them, in order, from the new master.
TEST_F(SentinelFailover, QueuedCommandsSurviveAFailoverAndGoOutInOrder) {
  int gw = add_gateway();
  add_bridge();
  MqttProbe status(mqtt->port());
  test::MqttPublishOptions retained;
  retained.retained = true;
  auto online = [&] { return test::get(gw, device_path("box-f")).json().value("online", true); };
  status.publish("dev/box-f/status", "offline", 1, retained);
  ASSERT_TRUE(test::eventually([&] { return !online(); }, 10s)) << logs();
  for (const char* id : {"f-1", "f-2"}) {
    HttpResult r = test::post(*client(gw), command_path("box-f", "ttl_ms=60000"), kPing,
                              {{"X-Request-Id", id}, {"Prefer", "respond-async"}});
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json().value("state", ""), "queued");
  }
  ASSERT_TRUE(test::eventually(
      [&] { return group->node(1).client().command({"LLEN", "dev/box-f/queue{dev/box-f}"}).integer == 2; }, 3s))
      << "not replicated";
  fail_over();
  ASSERT_TRUE(test::wait_ready(gw, 15s)) << logs();

  ProbeDevice device(mqtt->port(), "dev/box-f/request/+", ProbeDevice::echo());
  status.publish("dev/box-f/status", "online", 1, retained);
  ASSERT_TRUE(device.probe().wait_for(2, 15s)) << logs();
  std::vector<std::string> ids;
  for (const MqttMessage& m : device.commands()) ids.push_back(last_level(m.topic));
  EXPECT_EQ(ids, (std::vector<std::string>{"f-1", "f-2"}));
}

}  // namespace
}  // namespace boxgate::itest::faults
