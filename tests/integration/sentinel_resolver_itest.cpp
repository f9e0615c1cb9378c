// Redis Sentinel, in-process: redis::SentinelResolver against
// real sentinels (order, fallback past dead and silent sentinels, AUTH, the
// errors readiness shows), and redis::Commands in sentinel mode on real
// Redis nodes when the named master is, or becomes, a replica (ROLE check,
// -READONLY, heartbeat). The daemons' failover is in sentinel_itest.cpp.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/sentinel_resolver.hpp"
#include "faults_support.hpp"
#include "support/redis_sentinel.hpp"

namespace boxgate::itest::faults {
namespace {

using test::RedisSentinelGroup;
using test::SilentListener;  // a frozen sentinel

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
  // redis::Commands on `settings`, started; `ups` counts its connections.
  std::unique_ptr<redis::Commands> start_commands() {
    auto commands = std::unique_ptr<redis::Commands>(
        new redis::Commands(loop, settings, readiness.dependency("redis"), [this] { ++ups; }, {}));
    commands->start();
    return commands;
  }
  int ups = 0;
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
  auto commands = start_commands();
  ASSERT_TRUE(run_until(loop, [&] { return commands->up(); }, 5s)) << dep.reason();
  demote_a();
  std::optional<redis::Commands::Status> status;
  ASSERT_TRUE(commands->set_and_publish("dev/box-1/response/r1", "x", "x", 60000,
                                       [&](redis::Commands::Status s, long long) { status = s; }));
  ASSERT_TRUE(run_until(loop, [&] { return status.has_value(); }, 5s));
  EXPECT_EQ(*status, redis::Commands::Status::lost) << "a READONLY SET must be sent again, not counted delivered";
  ASSERT_TRUE(run_until(loop, [&] { return ups == 2 && commands->up(); }, 5s)) << dep.reason();
  status.reset();
  ASSERT_TRUE(commands->set_and_publish("dev/box-1/response/r2", "y", "y", 60000,
                                       [&](redis::Commands::Status s, long long) { status = s; }));
  ASSERT_TRUE(run_until(loop, [&] { return status.has_value(); }, 5s));
  EXPECT_EQ(*status, redis::Commands::Status::ok);
  EXPECT_EQ(b->get("dev/box-1/response/r2").value_or(""), "y");
  commands->stop();
}

TEST_F(SentinelDemotion, HeartbeatRoleMovesAnIdleConnectionOffADemotedMaster) {
  settings.heartbeat_ms = 100;
  auto& dep = readiness.dependency("redis");
  auto commands = start_commands();
  ASSERT_TRUE(run_until(loop, [&] { return commands->up(); }, 5s)) << dep.reason();
  demote_a();
  const auto demoted = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return ups == 2 && commands->up(); }, 3s)) << dep.reason();
  report("moved_ms_after_demotion", ms_since(demoted));
  commands->stop();
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

}  // namespace
}  // namespace boxgate::itest::faults
