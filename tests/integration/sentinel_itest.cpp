// Redis Sentinel (issue 13): the resolver against real sentinels (order,
// fallback past dead and silent sentinels, the errors readiness shows), and
// failover under load with the real daemons: the master is killed with
// SIGKILL, the sentinels promote the replica, and both gateway connections
// and the bridge follow. Every figure is printed with report().

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <poll.h>

#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/sentinel_resolver.hpp"
#include "faults_support.hpp"
#include "support/redis_sentinel.hpp"

namespace boxgate::itest::faults {
namespace {

using test::RedisSentinelGroup;

// A loopback port that accepts TCP (the kernel completes the handshake) but
// never answers: a frozen sentinel.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Runs one resolution on a private loop; returns its result and duration.
struct Resolved {
  redis::SentinelResolver::Result result;
  std::vector<RedisAddress> order_after;
  long long ms = -1;
};
Resolved resolve_once(const std::vector<RedisAddress>& sentinels, const std::string& master_name = "mymaster",
                      const std::string& sentinel_password = "") {
  RedisSettings settings;
  settings.sentinel_password = sentinel_password;
  settings.mode = RedisMode::sentinel;
  settings.sentinels = sentinels;
  settings.master_name = master_name;
  settings.sentinel_timeout_ms = 300;
  EventLoop loop;
  redis::SentinelResolver resolver(loop, settings, "test resolver");
  Resolved out;
  const auto started = Clock::now();
  Timer guard(loop, [&loop] { loop.stop(); });  // bounded: a bug cannot hang the test
  guard.start(10s);
  resolver.resolve([&](const redis::SentinelResolver::Result& result) {
    out.result = result;
    out.ms = ms_since(started);
    loop.stop();
  });
  loop.run();
  out.order_after = resolver.order();
  return out;
}

RedisAddress loopback(int port) { return {"127.0.0.1", port}; }

class SentinelResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp = new test::TempDir("sentinel-resolver");
    group = new RedisSentinelGroup(*tmp);
  }
  static void TearDownTestSuite() {
    delete group;
    delete tmp;
    group = nullptr;
    tmp = nullptr;
  }
  static test::TempDir* tmp;
  static RedisSentinelGroup* group;
};
test::TempDir* SentinelResolverTest::tmp = nullptr;
RedisSentinelGroup* SentinelResolverTest::group = nullptr;

// The spec's order: a dead sentinel (refused) and a silent one (timeout) are
// passed over, the first that answers names the master and moves to the front.
TEST_F(SentinelResolverTest, SkipsDeadAndSilentSentinelsAndMovesTheOneThatAnsweredToTheFront) {
  SilentListener silent;
  const int dead = test::free_port();
  const RedisAddress first = loopback(group->sentinel_port(0));
  Resolved r = resolve_once({loopback(dead), loopback(silent.port()), first, loopback(group->sentinel_port(1))});
  ASSERT_TRUE(r.result.master) << r.result.error;
  EXPECT_EQ(*r.result.master, loopback(group->node(0).port()));
  ASSERT_EQ(r.order_after.size(), 4u);
  EXPECT_EQ(r.order_after[0], first) << "the sentinel that answered goes first";
  EXPECT_EQ(r.order_after[1], loopback(dead));
  EXPECT_EQ(r.order_after[2], loopback(silent.port()));
  EXPECT_GE(r.ms, 290) << "the silent sentinel had its whole timeout";
  EXPECT_LT(r.ms, 2000);
  report("resolve_ms_past_dead_and_silent", r.ms);
}

TEST_F(SentinelResolverTest, FirstSentinelDeadSecondAnswers) {
  const int dead = test::free_port();
  Resolved r = resolve_once({loopback(dead), loopback(group->sentinel_port(1))});
  ASSERT_TRUE(r.result.master) << r.result.error;
  EXPECT_EQ(r.result.master->port, group->node(0).port());
  EXPECT_EQ(r.order_after.front(), loopback(group->sentinel_port(1)));
  EXPECT_LT(r.ms, 500) << "a refused connection costs no timeout";
}

TEST_F(SentinelResolverTest, UnknownMasterNameSaysSentinelsKnowNoMaster) {
  Resolved r = resolve_once({loopback(group->sentinel_port(0)), loopback(group->sentinel_port(2))}, "other");
  EXPECT_FALSE(r.result.master);
  EXPECT_EQ(r.result.error, "sentinels know no master other");
}

TEST(SentinelResolver, NoSentinelAnsweringSaysSoAndNamesEachProblem) {
  SilentListener silent;
  const int dead = test::free_port();
  Resolved r = resolve_once({loopback(dead), loopback(silent.port())});
  EXPECT_FALSE(r.result.master);
  EXPECT_EQ(r.result.error.rfind("no sentinel answered: ", 0), 0u) << r.result.error;
  EXPECT_NE(r.result.error.find("127.0.0.1:" + std::to_string(dead)), std::string::npos) << r.result.error;
  EXPECT_NE(r.result.error.find("no answer within 300 ms"), std::string::npos) << r.result.error;
  EXPECT_LT(r.ms, 1500);
}

// Sentinels with their own password (requirepass): redis_sentinel_password
// is sent as AUTH first; none or a wrong one is named in the error.
TEST(SentinelResolverAuth, SentinelPasswordIsSentAndARefusalIsNamed) {
  test::TempDir tmp("sentinel-auth");
  RedisSentinelGroup group(tmp, 2, "mymaster", "sentinel-secret");
  const std::vector<RedisAddress> both = {loopback(group.sentinel_port(0)), loopback(group.sentinel_port(1))};
  Resolved ok = resolve_once(both, "mymaster", "sentinel-secret");
  ASSERT_TRUE(ok.result.master) << ok.result.error;
  EXPECT_EQ(ok.result.master->port, group.node(0).port());

  Resolved none = resolve_once(both);
  EXPECT_FALSE(none.result.master);
  EXPECT_NE(none.result.error.find("NOAUTH"), std::string::npos) << none.result.error;
  Resolved wrong = resolve_once(both, "mymaster", "not-it");
  EXPECT_FALSE(wrong.result.master);
  EXPECT_NE(wrong.result.error.find("refused AUTH: WRONGPASS"), std::string::npos) << wrong.result.error;
  EXPECT_EQ(wrong.result.error.find("not-it"), std::string::npos) << "the password is never repeated";
}

// A stand-in sentinel that names whichever port the test sets: it lets a
// test put a real Redis under the connection that the "sentinels" call the
// master while it is not (or no longer) one. Answers every request on a
// connection with that address, then closes it; runs on its own thread.
class NamingSentinel {
 public:
  explicit NamingSentinel(int master_port) : master_port_(master_port) {
    thread_ = std::thread([this] { serve(); });
  }
  ~NamingSentinel() {
    stop_ = true;
    thread_.join();
  }
  int port() const { return listener_.port(); }
  void name(int master_port) { master_port_ = master_port; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept(listener_fd(), nullptr, nullptr);
      if (fd < 0) continue;
      pollfd in{fd, POLLIN, 0};
      char buf[4096];
      if (::poll(&in, 1, 1000) > 0 && ::recv(fd, buf, sizeof buf, 0) > 0) {
        std::string port = std::to_string(master_port_.load());
        std::string reply = "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(port.size()) + "\r\n" + port + "\r\n";
        ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  }
  int listener_fd() const { return listener_.fd(); }

  SilentListener listener_;
  std::atomic<int> master_port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs `loop` on this thread until `done()` holds (checked every 10 ms) or
// the timeout passes; true when it held.
bool run_until(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  bool held = false;
  Timer check(loop, [&] {
    held = done();
    if (held || Clock::now() >= deadline) loop.stop();
  });
  check.start(10ms, true);
  loop.run();
  return held;
}

// Two real Redis: A the master, B its replica; the stand-in sentinel names A.
// Then B is promoted and A demoted under the live connection (as a failover
// that does not kill clients would leave it): a write answered -READONLY is
// reported lost (so the bridge sends it again) and the connection moves to
// B; with no writes, the heartbeat's ROLE moves it too.
class SentinelDemotion : public ::testing::Test {
 protected:
  void SetUp() override {
    // No 10 s wait for a lagging replica at teardown (Redis 7's shutdown-timeout).
    a = std::make_unique<test::RedisServer>(tmp, 0, std::vector<std::string>{"--shutdown-timeout", "0"});
    b = std::make_unique<test::RedisServer>(
        tmp, 0, std::vector<std::string>{"--shutdown-timeout", "0", "--replicaof", "127.0.0.1", std::to_string(a->port())});
    sentinel = std::make_unique<NamingSentinel>(a->port());
    settings.mode = RedisMode::sentinel;
    settings.sentinels = {loopback(sentinel->port())};
    settings.backoff_max_ms = 50;
  }
  void demote_a() {
    ASSERT_EQ(b->client().command({"REPLICAOF", "NO", "ONE"}).str, "OK");
    ASSERT_EQ(a->client().command({"REPLICAOF", "127.0.0.1", std::to_string(b->port())}).str, "OK");
    sentinel->name(b->port());
  }
  test::TempDir tmp{"sentinel-demotion"};
  std::unique_ptr<test::RedisServer> a, b;
  std::unique_ptr<NamingSentinel> sentinel;
  RedisSettings settings;
  EventLoop loop;
  ops::Metrics metrics;
  ops::Readiness readiness{metrics};
};

TEST_F(SentinelDemotion, WriteAnsweredReadonlyIsLostAndTheConnectionMovesToTheNewMaster) {
  settings.heartbeat_ms = 60000;  // only the READONLY reply may move it
  auto& dep = readiness.dependency("redis");
  int ups = 0;
  redis::Commands commands(loop, settings, dep, [&] { ++ups; }, {});
  commands.start();
  ASSERT_TRUE(run_until(loop, [&] { return commands.up(); }, 5s)) << dep.reason();
  demote_a();
  std::optional<redis::Commands::Status> status;
  ASSERT_TRUE(commands.set_and_publish("dev/box-1/response/r1", "x", "x", 60000,
                                       [&](redis::Commands::Status s, long long) { status = s; }));
  ASSERT_TRUE(run_until(loop, [&] { return status.has_value(); }, 5s));
  EXPECT_EQ(*status, redis::Commands::Status::lost) << "a READONLY SET must be sent again, not counted delivered";
  ASSERT_TRUE(run_until(loop, [&] { return ups == 2 && commands.up(); }, 5s)) << dep.reason();
  status.reset();
  ASSERT_TRUE(commands.set_and_publish("dev/box-1/response/r2", "y", "y", 60000,
                                       [&](redis::Commands::Status s, long long) { status = s; }));
  ASSERT_TRUE(run_until(loop, [&] { return status.has_value(); }, 5s));
  EXPECT_EQ(*status, redis::Commands::Status::ok);
  EXPECT_EQ(b->get("dev/box-1/response/r2").value_or(""), "y");
  commands.stop();
}

TEST_F(SentinelDemotion, HeartbeatRoleMovesAnIdleConnectionOffADemotedMaster) {
  settings.heartbeat_ms = 100;
  auto& dep = readiness.dependency("redis");
  int ups = 0;
  redis::Commands commands(loop, settings, dep, [&] { ++ups; }, {});
  commands.start();
  ASSERT_TRUE(run_until(loop, [&] { return commands.up(); }, 5s)) << dep.reason();
  demote_a();
  const auto demoted = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return ups == 2 && commands.up(); }, 3s)) << dep.reason();
  report("moved_ms_after_demotion", ms_since(demoted));
  commands.stop();
}

// The stand-in names a replica: never up, and readiness says why.
TEST_F(SentinelDemotion, AReplicaNamedAsMasterIsNeverUsedAndReadinessSaysWhy) {
  sentinel->name(b->port());
  auto& dep = readiness.dependency("redis");
  redis::Commands commands(loop, settings, dep, {}, {});
  commands.start();
  const std::string expected = "127.0.0.1:" + std::to_string(b->port()) + " is not the master (role slave)";
  EXPECT_TRUE(run_until(loop, [&] { return dep.reason() == expected; }, 3s)) << dep.reason();
  EXPECT_FALSE(run_until(loop, [&] { return commands.up(); }, 500ms));
  commands.stop();
}

// An ACL user without +role cannot pass the sentinel-mode handshake:
// readiness names the refusal instead of a bare "down".
TEST_F(SentinelDemotion, AUserThatMayNotRunRoleIsNeverUpAndReadinessSaysWhy) {
  ASSERT_EQ(a->client().command({"ACL", "SETUSER", "norole", "on", ">pw", "~*", "&*", "+@all", "-role"}).str, "OK");
  settings.username = "norole";
  settings.password = "pw";
  auto& dep = readiness.dependency("redis");
  redis::Commands commands(loop, settings, dep, {}, {});
  commands.start();
  const std::string expected = "127.0.0.1:" + std::to_string(a->port()) + " answered ROLE with NOPERM";
  EXPECT_TRUE(run_until(loop, [&] { return dep.reason().rfind(expected, 0) == 0; }, 3s)) << dep.reason();
  EXPECT_FALSE(commands.up());
  commands.stop();
}

// ------------------------------------------------------------ with the daemons

const std::string kBody = R"({"method":"ping"})";

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
          HttpResult r = post(*c, path, kBody);
          long long ended = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - origin).count();
          {
            std::lock_guard lock(mu_);
            calls_.push_back({r.status, timeout, r.elapsed.count(), ended});
          }
          if (r.status == -1) c = client(port);
          if (r.status != 200) std::this_thread::sleep_for(20ms);  // no busy loop of refusals
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
  ASSERT_EQ(post(*client(gw), command_path("box-1"), kBody).status, 200) << logs();

  const auto origin = Clock::now() + 1s;  // the kill, below
  TimedLoad load(gw, {3000, 3000, 3000, 3000, 1000, 1000, 1000, 1000}, origin);
  std::this_thread::sleep_until(origin);
  const long long failover_ms = fail_over();
  // Back: commands sent after the sentinels switched are answered 200.
  const bool back = test::eventually([&] { return load.ok_after(failover_ms) >= 8; }, 10s, 20ms);
  std::this_thread::sleep_for(500ms);  // some calls on the new master
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
  ASSERT_EQ(post(*c, command_path("box-1"), kBody).status, 200) << logs();

  const int replica = group->node(1).port();
  killed = Clock::now();
  group->node(0).process().signal(SIGSTOP);
  const bool switched = group->wait_master_is(replica, 15s);
  const long long switched_ms = ms_since(killed);
  HttpResult r;
  const bool back = test::eventually(
      [&] {
        r = post(*c, command_path("box-1", "timeout_ms=1000"), kBody);
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
  auto call = post_async(gw, command_path("box-1", "timeout_ms=15000"), kBody, {{"X-Request-Id", id}});
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

}  // namespace
}  // namespace boxgate::itest::faults
