// Redis Cluster, in-process: redis::Commands in redis_mode cluster keeps the
// order of one slot's commands when they are answered MOVED, ASK or
// TRYAGAIN, against a real 3-master cluster (tests/support/redis_cluster).
//
// Every redirect is forced, not hoped for. The test thread runs the loop
// (run_until) and changes the cluster with a synchronous admin connection
// only while the loop is stopped, so the client cannot have seen the change
// when its commands leave: its map is stale (MOVED) or the slot is half
// migrated (ASK, TRYAGAIN) for each of them. Later commands of the slot are
// given from the callback of a "probe": a command of another slot on the
// same node, written right after the redirected ones. hiredis runs the
// callbacks of one connection in reply order, so the probe's runs after the
// client has handled the redirect before it and before the ones after it --
// exactly when a client that re-sends a redirected command on its own lets
// the newer commands overtake it. The server's INFO errorstats show that
// each redirect happened.

#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "itest_env.hpp"
#include "support/redis_cluster.hpp"

namespace boxgate::itest::cluster_order {
namespace {

// One answer the client handed back, in the order the callbacks ran.
struct Answer {
  std::string key;
  std::string value;  // what the command pushed
  int type = 0;       // REDIS_REPLY_*; 0: lost (nullptr)
  long long integer = 0;
  std::string text;   // an error's text
};

class ClusterOrder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp = new test::TempDir("cluster-order");
    // No replicas: every test moves slots between masters, none fails over.
    cluster = new test::RedisCluster(*tmp, test::RedisCluster::Options{3, 0, 1000});
  }
  static void TearDownTestSuite() {
    delete cluster;
    delete tmp;
    cluster = nullptr;
    tmp = nullptr;
  }

  void SetUp() override {
    settings.mode = RedisMode::cluster;
    settings.mode_name = "cluster";
    for (int port : cluster->master_ports()) settings.nodes.push_back("127.0.0.1:" + std::to_string(port));
    settings.backoff_max_ms = 50;
    commands = std::make_unique<redis::Commands>(loop, settings, readiness.dependency("redis"), nullptr, nullptr);
    commands->start();
    ASSERT_TRUE(run_until(loop, [&] { return commands->up(); }, 10s)) << readiness.dependency("redis").reason();
  }
  void TearDown() override {
    if (commands) commands->stop();
  }

  // RPUSH key value; its answer goes to answers_ (and then to `then`).
  void push(const std::string& key, const std::string& value, std::function<void()> then = nullptr) {
    ++submitted_;
    ASSERT_TRUE(commands->run({"RPUSH", key, value}, [this, key, value, then](const redisReply* reply) {
      record(key, value, reply);
      if (then) then();
    }));
  }
  // Any command, recorded under `key` (value empty).
  void send(const std::vector<std::string_view>& argv, const std::string& key, std::function<void()> then = nullptr) {
    ++submitted_;
    ASSERT_TRUE(commands->run(argv, [this, key, then](const redisReply* reply) {
      record(key, "", reply);
      if (then) then();
    }));
  }
  void record(const std::string& key, const std::string& value, const redisReply* reply) {
    Answer a{key, value, reply ? reply->type : 0, 0, ""};
    if (reply && reply->type == REDIS_REPLY_INTEGER) a.integer = reply->integer;
    if (reply && (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STRING)) {
      a.text.assign(reply->str, reply->len);
    }
    answers_.push_back(std::move(a));
  }
  // Starts the record over (after a test's set-up commands).
  void forget_answers() {
    answers_.clear();
    submitted_ = 0;
  }
  bool all_answered(std::chrono::milliseconds timeout = 10s) {
    return run_until(loop, [&] { return answers_.size() == submitted_; }, timeout);
  }
  // The answers of `key`'s RPUSHes, in callback order.
  std::vector<const Answer*> answers_of(const std::string& key) const {
    std::vector<const Answer*> out;
    for (const Answer& a : answers_) {
      if (a.key == key && !a.value.empty()) out.push_back(&a);
    }
    return out;
  }
  // Every RPUSH of `key` answered, in the order given, each with the list's
  // length after it: `before` + its place.
  void expect_pushes_answered_in_order(const std::string& key, const std::vector<std::string>& values,
                                       long long before) {
    auto got = answers_of(key);
    ASSERT_EQ(got.size(), values.size()) << key;
    for (std::size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(got[i]->value, values[i]) << key << ": answer " << i << " is not the command given " << i << "th";
      EXPECT_EQ(got[i]->type, REDIS_REPLY_INTEGER) << key << " " << got[i]->value << ": " << got[i]->text;
      EXPECT_EQ(got[i]->integer, before + static_cast<long long>(i) + 1) << key << " " << got[i]->value;
    }
  }

  // The list at `key`, from the master of its slot (after any migration).
  std::vector<std::string> list(const std::string& key) {
    test::RespValue r =
        cluster->node_on(cluster->master_of_slot(cluster->keyslot(key))).client().command({"LRANGE", key, "0", "-1"});
    std::vector<std::string> out;
    for (const test::RespValue& e : r.elements) out.push_back(e.str);
    return out;
  }
  // Deletes `keys` (of one slot) on the slot's master: each test starts from
  // empty lists, also when repeated (--gtest_repeat) or after an earlier
  // test moved the slot.
  static void fresh(const std::vector<std::string>& keys) {
    std::vector<std::string> del{"DEL"};
    del.insert(del.end(), keys.begin(), keys.end());
    cluster->node_on(cluster->master_of_slot(cluster->keyslot(keys.at(0)))).client().command(del);
  }
  // errorstat_<name> of the node on `port` (INFO errorstats), 0 when none yet.
  static long long errorstat(int port, const std::string& name) {
    std::string info = cluster->node_on(port).client().command({"INFO", "errorstats"}).str;
    const std::string field = "errorstat_" + name + ":count=";
    auto at = info.find(field);
    return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + field.size());
  }
  static int other_master(int port) {
    for (int p : cluster->master_ports()) {
      if (p != port) return p;
    }
    throw std::runtime_error("no other master");
  }
  // A key whose slot `port` serves, other than `slot`.
  static std::string key_on(int port, const std::string& prefix, int slot) {
    for (int i = 0; i < 1000; ++i) {
      std::string key = prefix + "-" + std::to_string(i);
      int s = cluster->keyslot(key);
      if (s != slot && cluster->master_of_slot(s) == port) return key;
    }
    throw std::runtime_error("no key of " + prefix + " on " + std::to_string(port));
  }
  static std::vector<std::string> numbers(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
    return out;
  }
  static std::vector<std::string> joined(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  static test::TempDir* tmp;
  static test::RedisCluster* cluster;

  RedisSettings settings;
  EventLoop loop;
  ops::Metrics metrics;
  ops::Readiness readiness{metrics};
  std::unique_ptr<redis::Commands> commands;
  std::vector<Answer> answers_;
  std::size_t submitted_ = 0;
};
test::TempDir* ClusterOrder::tmp = nullptr;
test::RedisCluster* ClusterOrder::cluster = nullptr;

constexpr int kN = 50;

// MOVED: the slot moves for real while the client's map still names its old
// master. kN RPUSHes leave for the old master in one loop iteration, with a
// probe (another slot of that master) in their middle; all kN come back
// MOVED. The probe's callback gives kN/2 more, and the first RPUSH's answer
// kN/2 more: each must be written after the redirected ones, not straight
// to the new master the first MOVED named.
TEST_F(ClusterOrder, MovedSlotKeepsTheOrderOfItsCommands) {
  const std::string key = "order-moved";
  const int slot = cluster->keyslot(key);
  const int from = cluster->master_of_slot(slot);
  const int to = other_master(from);
  const std::string probe = key_on(from, "probe-moved", slot);
  fresh({key});

  const std::vector<std::string> warm{"w0", "w1", "w2"};
  for (const std::string& v : warm) push(key, v);
  ASSERT_TRUE(all_answered());
  const long long moved_before = errorstat(from, "MOVED");

  cluster->migrate_slot(slot, to);  // the loop is stopped: the client's map still says `from`

  for (int i = 0; i < kN / 2; ++i) {
    push(key, std::to_string(i), i == 0 ? std::function<void()>([&] {
      for (int j = kN + kN / 2; j < 2 * kN; ++j) push(key, std::to_string(j));
    })
                                        : nullptr);
  }
  send({"GET", probe}, probe, [&] {
    for (int j = kN; j < kN + kN / 2; ++j) push(key, std::to_string(j));
  });
  for (int i = kN / 2; i < kN; ++i) push(key, std::to_string(i));
  ASSERT_TRUE(all_answered()) << answers_.size() << " of " << submitted_ << " answered";

  EXPECT_GE(errorstat(from, "MOVED") - moved_before, kN) << "every RPUSH of the first batch was answered MOVED";
  EXPECT_EQ(cluster->master_of_slot(slot), to);
  const std::vector<std::string> pushed = numbers(0, 2 * kN);
  expect_pushes_answered_in_order(key, joined(warm, pushed), 0);
  EXPECT_EQ(list(key), joined(warm, pushed)) << "each value once, in the order given";
}

// ASK: the slot is half migrated. {ask}a was moved to the importing node
// (the source answers ASK), {ask}b is still on the source (answered
// directly), {ask}c exists nowhere (a new key: its first command, and every
// one after, is answered ASK). Interleaved RPUSHes of the three in one loop
// iteration, and as many again from the callback of b's first answer
// (which runs while a's and c's ASKs are still coming): each key's list is in
// the order given. (A client that re-sends an ASKed command at once keeps
// this order too -- ASK leaves the map alone and the source answers in order
// -- so this case guards the waiting behind redirects from breaking it.)
TEST_F(ClusterOrder, AskedKeysKeepTheirOrderBesideKeysTheSourceStillServes) {
  const std::string a = "{ask}a", b = "{ask}b", c = "{ask}c";
  const int slot = cluster->keyslot(a);
  const int from = cluster->master_of_slot(slot);
  const int to = other_master(from);
  fresh({a, b, c});
  push(a, "w");
  push(b, "w");
  ASSERT_TRUE(all_answered());
  const long long ask_before = errorstat(from, "ASK");

  cluster->begin_migration(slot, to);
  cluster->migrate_keys(slot, to, {a});

  bool more_given = false;
  auto more = [&] {
    if (more_given) return;
    more_given = true;
    for (int i = kN; i < 2 * kN; ++i) {
      for (const std::string* k : {&a, &b, &c}) push(*k, std::to_string(i));
    }
  };
  for (int i = 0; i < kN; ++i) {
    push(a, std::to_string(i));
    push(b, std::to_string(i), more);
    push(c, std::to_string(i));
  }
  ASSERT_TRUE(all_answered()) << answers_.size() << " of " << submitted_ << " answered";
  EXPECT_TRUE(more_given);
  EXPECT_GE(errorstat(from, "ASK") - ask_before, 2 * kN) << "a's and c's first batch was answered ASK";
  EXPECT_EQ(cluster->master_of_slot(slot), from) << "still migrating while the commands ran";

  cluster->finish_migration(slot, to);
  const std::vector<std::string> pushed = numbers(0, 2 * kN);
  expect_pushes_answered_in_order(a, joined({"w"}, pushed), 0);
  expect_pushes_answered_in_order(b, joined({"w"}, pushed), 0);
  expect_pushes_answered_in_order(c, pushed, 0);
  EXPECT_EQ(list(a), joined({"w"}, pushed));
  EXPECT_EQ(list(b), joined({"w"}, pushed));
  EXPECT_EQ(list(c), pushed);
}

// TRYAGAIN: Redis answers a multi-key command TRYAGAIN while its slot is
// migrating and only some of its keys have moved -- every time, until the
// migration ends. A script pushes "1" onto {try}b (still on the source) and
// names {try}a (already moved) as its second key.
class ClusterOrderTryagain : public ClusterOrder {
 protected:
  static constexpr const char* kScript = "return redis.call('RPUSH', KEYS[1], ARGV[1])";
  void SetUp() override {
    ClusterOrder::SetUp();
    slot = cluster->keyslot(a);
    from = cluster->master_of_slot(slot);
    to = other_master(from);
    probe = key_on(from, "probe-try", slot);
    fresh({a, b});
    push(b, "0");
    push(a, "x");
    ASSERT_TRUE(all_answered());
    cluster->begin_migration(slot, to);
    cluster->migrate_keys(slot, to, {a});
    tryagain_before = tryagains();
    forget_answers();
  }
  void TearDown() override {
    ClusterOrder::TearDown();
    if (cluster->master_of_slot(slot) == from) cluster->finish_migration(slot, to);
  }
  long long tryagains() { return errorstat(from, "TRYAGAIN") + errorstat(to, "TRYAGAIN"); }
  // The script, then the probe, in one loop iteration; the probe's callback
  // (which runs once the script's first TRYAGAIN was handled) gives kN more
  // RPUSHes of b: "2".."kN+1".
  void script_then_later_pushes() {
    send({"EVAL", kScript, "2", b, a, "1"}, "script");
    send({"GET", probe}, probe, [this] {
      probe_answered = true;
      for (int i = 2; i < kN + 2; ++i) push(b, std::to_string(i));
    });
  }
  const Answer* script_answer() const {
    for (const Answer& x : answers_) {
      if (x.key == "script") return &x;
    }
    return nullptr;
  }

  const std::string a = "{try}a", b = "{try}b";
  int slot = 0, from = 0, to = 0;
  std::string probe;
  long long tryagain_before = 0;
  bool probe_answered = false;
};

// The script is answered TRYAGAIN twice (the second time after a retry, when
// the later RPUSHes are already waiting), then the migration ends and it
// runs: "1" lands between "0" and "2", and the RPUSHes given after it are
// answered after it.
TEST_F(ClusterOrderTryagain, RetriedCommandKeepsItsPlaceInItsSlot) {
  script_then_later_pushes();
  // A retry comes 25 ms after the first TRYAGAIN, the next 50 ms after the
  // second; stopping the loop between them leaves the script waiting while
  // the migration ends.
  ASSERT_TRUE(run_until(loop, [&] { return probe_answered && tryagains() - tryagain_before >= 2; }, 5s))
      << tryagains() - tryagain_before << " TRYAGAIN answers";
  cluster->finish_migration(slot, to);
  ASSERT_TRUE(all_answered()) << answers_.size() << " of " << submitted_ << " answered";

  const Answer* script = script_answer();
  ASSERT_NE(script, nullptr);
  EXPECT_EQ(script->type, REDIS_REPLY_INTEGER) << script->text;
  EXPECT_EQ(script->integer, 2) << "the script's push is the second of {try}b";
  expect_pushes_answered_in_order(b, numbers(2, kN + 2), 2);
  EXPECT_EQ(list(b), numbers(0, kN + 2));
}

// The migration never ends while the script retries: it is answered
// TRYAGAIN at last (kMaxAttempts), and only then do the RPUSHes given after
// it run, in order.
TEST_F(ClusterOrderTryagain, CommandGivenUpAfterRetriesIsAnsweredBeforeItsSlotsLaterOnes) {
  script_then_later_pushes();
  ASSERT_TRUE(all_answered()) << answers_.size() << " of " << submitted_ << " answered";
  EXPECT_GE(tryagains() - tryagain_before, 2);

  ASSERT_EQ(answers_.at(answers_.size() - kN - 1).key, "script")
      << "the script's final answer comes before every RPUSH given after it";
  const Answer* script = script_answer();
  EXPECT_EQ(script->type, REDIS_REPLY_ERROR);
  EXPECT_EQ(script->text.rfind("TRYAGAIN", 0), 0u) << script->text;
  expect_pushes_answered_in_order(b, numbers(2, kN + 2), 1);
  EXPECT_EQ(list(b), joined({"0"}, numbers(2, kN + 2)));
}

}  // namespace
}  // namespace boxgate::itest::cluster_order
