// Queued commands on real processes (docs/contract.md, "Queued commands"):
// a command with ?ttl_ms for a box that is offline waits in Redis and is sent
// when the bridge sees the box come online, in acceptance order, one at a
// time; it expires unsent, can be cancelled while queued, survives the
// gateway that accepted it and a Redis restart with an append-only file.
// Presence is played by a probe publishing the retained status a device
// would; the device by a ProbeDevice that records what it receives.

#include <gtest/gtest.h>

#include <csignal>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using namespace std::chrono_literals;

class QueueTest : public StackTest {
 protected:
  QueueTest() : StackTest("queue") {}
  explicit QueueTest(StackOptions options) : StackTest(std::move(options)) {}

  HttpResult post_queued(int gw, const std::string& box, const std::string& id, const std::string& query,
                         const std::string& body = R"({"method":"noop"})") {
    auto c = client(gw);
    return post(*c, command_path(box, query), body, {{"X-Request-Id", id}, {"Prefer", "respond-async"}});
  }

  HttpResult status(int gw, const std::string& box, const std::string& id) {
    return test::get(gw, command_path(box) + "/" + id);
  }

  // Waits until the command's state (at gateway `gw`) is `state`.
  void wait_state(int gw, const std::string& box, const std::string& id, const std::string& state,
                  std::chrono::milliseconds timeout = 10s) {
    HttpResult last;
    EXPECT_TRUE(test::eventually(
        [&] {
          last = status(gw, box, id);
          return last.status == 200 && last.json().value("state", "") == state;
        },
        timeout))
        << id << " never " << state << ": " << last.status << " " << last.body << "\n"
        << stack->logs();
  }

  HttpResult remove(int gw, const std::string& box, const std::string& id) {
    auto c = client(gw);
    auto res = c->Delete(command_path(box) + "/" + id);
    HttpResult r;
    if (res) {
      r.status = res->status;
      r.body = res->body;
    }
    test::record_http("DELETE", command_path(box) + "/" + id, r.status, r.error_code());
    return r;
  }

  // The request ids of the commands the device received, in order.
  static std::vector<std::string> received_ids(const ProbeDevice& device) {
    std::vector<std::string> ids;
    for (const MqttMessage& m : device.commands()) ids.push_back(last_level(m.topic));
    return ids;
  }

  std::vector<std::string> queued_ids(int gw, const std::string& box, const std::string& query = "") {
    HttpResult list = test::get(gw, command_path(box, "state=queued" + query));
    EXPECT_EQ(list.status, 200) << list.body;
    std::vector<std::string> ids;
    if (list.status != 200) return ids;
    const auto doc = list.json();  // kept: the loop walks into it
    for (const auto& record : doc.at("commands")) ids.push_back(record.value("request_id", ""));
    return ids;
  }
};

TEST_F(QueueTest, QueuedWhileOfflineThenSentInOrderWhenTheBoxComesOnline) {
  int gw1 = stack->add_gateway();
  int gw2 = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-q", false, gw1);

  for (const char* id : {"q-1", "q-2", "q-3"}) {
    HttpResult r = post_queued(gw1, "box-q", id, "ttl_ms=60000&timeout_ms=5000");
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json().value("state", ""), "queued") << r.body;
    EXPECT_EQ(r.json().value("ttl_ms", 0), 60000) << r.body;
    EXPECT_EQ(r.header("Location"), "/v1/devices/box-q/commands/" + std::string(id));
  }
  EXPECT_EQ(queued_ids(gw2, "box-q"), (std::vector<std::string>{"q-1", "q-2", "q-3"})) << "in acceptance order";
  EXPECT_EQ(queued_ids(gw2, "box-q", "&limit=2"), (std::vector<std::string>{"q-1", "q-2"}));
  EXPECT_EQ(queued_ids(gw2, "box-q", "&after=q-1"), (std::vector<std::string>{"q-2", "q-3"}));
  HttpResult device = test::get(gw2, device_path("box-q"));
  EXPECT_EQ(device.json().value("queued", -1), 3) << device.body;
  HttpResult one = status(gw2, "box-q", "q-2");
  EXPECT_EQ(one.json().value("state", ""), "queued") << one.body;

  ProbeDevice box(stack->mqtt_port(), "dev/box-q/request/+", ProbeDevice::echo());
  // Nothing was published while the box was offline.
  EXPECT_EQ(box.probe().count(), 0u);
  set_presence("box-q", true, gw1);
  ASSERT_TRUE(box.probe().wait_for(3, 10s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"q-1", "q-2", "q-3"}));
  for (const char* id : {"q-1", "q-2", "q-3"}) wait_state(gw2, "box-q", id, "succeeded");
  HttpResult done = status(gw2, "box-q", "q-3");
  EXPECT_GT(done.json().value("sent_ms", std::int64_t{0}), 0) << done.body;
  EXPECT_TRUE(done.json().contains("reply")) << done.body;
  EXPECT_TRUE(queued_ids(gw1, "box-q").empty());
  // Each exactly once.
  EXPECT_FALSE(box.probe().wait_for(4, 500ms)) << "a queued command was sent twice";
  EXPECT_EQ(metric(gw1, "boxgate_queue_commands_total{event=\"queued\"}").value_or(0), 3);
}

TEST_F(QueueTest, AnOnlineBoxWithAnEmptyQueueGetsItAtOnce) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-o/request/+", ProbeDevice::echo());
  set_presence("box-o", true, gw);
  HttpResult r = post_queued(gw, "box-o", "now-1", "ttl_ms=60000");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().value("state", ""), "pending") << "sent at once: " << r.body;
  // Queued behind it: sent as soon as the first one's reply ended it (not
  // when the first one's claim would be taken for abandoned, 15 s on).
  HttpResult behind = post_queued(gw, "box-o", "now-2", "ttl_ms=60000");
  ASSERT_EQ(behind.status, 202) << behind.body;
  ASSERT_TRUE(box.probe().wait_for(2, 3s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"now-1", "now-2"}));
  // Message Expiry: the smaller of the timeout (10 s default) and the ttl left.
  EXPECT_LE(box.commands().front().message_expiry_interval.value_or(0), 10u);
  wait_state(gw, "box-o", "now-1", "succeeded");
  // The same id again: the same command (its record).
  HttpResult again = post_queued(gw, "box-o", "now-1", "ttl_ms=60000");
  EXPECT_EQ(again.status, 200) << "its stored reply: " << again.body;
}

TEST_F(QueueTest, ExpiresUnsentAndCancelWorksOnlyWhileQueued) {
  int gw = stack->add_gateway({"--queue-sweep-ms", "200"});
  stack->add_bridge();
  set_presence("box-e", false, gw);
  ASSERT_EQ(post_queued(gw, "box-e", "short", "ttl_ms=300").status, 202);
  ASSERT_EQ(post_queued(gw, "box-e", "keep", "ttl_ms=60000").status, 202);
  ASSERT_EQ(post_queued(gw, "box-e", "drop", "ttl_ms=60000").status, 202);

  HttpResult cancelled = remove(gw, "box-e", "drop");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.json().value("state", ""), "cancelled");
  EXPECT_EQ(remove(gw, "box-e", "drop").status, 200) << "cancelling again answers the same";
  HttpResult unknown = remove(gw, "box-e", "never-was");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.error_code(), "unknown_command");

  wait_state(gw, "box-e", "short", "expired", 5s);
  // The record says expired once its ttl passed; the sweep (200 ms here)
  // takes it out of the queue.
  EXPECT_TRUE(test::eventually([&] { return queued_ids(gw, "box-e") == std::vector<std::string>{"keep"}; }, 5s));

  ProbeDevice box(stack->mqtt_port(), "dev/box-e/request/+", ProbeDevice::echo());
  set_presence("box-e", true, gw);
  ASSERT_TRUE(box.probe().wait_for(1, 10s)) << stack->logs();
  EXPECT_FALSE(box.probe().wait_for(2, 500ms)) << "an expired or cancelled command was sent";
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"keep"}));
  wait_state(gw, "box-e", "keep", "succeeded");
  HttpResult late = remove(gw, "box-e", "keep");
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_EQ(late.error_code(), "already_sent");
  EXPECT_EQ(late.json().at("command").value("state", ""), "succeeded") << late.body;
  EXPECT_EQ(status(gw, "box-e", "drop").json().value("state", ""), "cancelled");
}

TEST_F(QueueTest, LimitsAndValidation) {
  int gw = stack->add_gateway({"--max-queued-per-device", "2"});
  stack->add_bridge();
  set_presence("box-l", false, gw);
  auto c = client(gw);
  HttpResult sync = post(*c, command_path("box-l", "ttl_ms=1000"), R"({"method":"noop"})");
  EXPECT_EQ(sync.status, 400);
  EXPECT_EQ(sync.error_code(), "invalid_ttl") << "a ttl needs Prefer: respond-async";
  for (const char* bad : {"ttl_ms=0", "ttl_ms=abc", "ttl_ms=999999999999"}) {
    HttpResult r = post_queued(gw, "box-l", "bad", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.error_code(), "invalid_ttl") << bad;
  }
  ASSERT_EQ(post_queued(gw, "box-l", "l-1", "ttl_ms=60000").status, 202);
  ASSERT_EQ(post_queued(gw, "box-l", "l-2", "ttl_ms=60000").status, 202);
  HttpResult full = post_queued(gw, "box-l", "l-3", "ttl_ms=60000");
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(full.error_code(), "queue_full");
  EXPECT_EQ(status(gw, "box-l", "l-3").status, 404) << "a refused command leaves no record";
  HttpResult retry = post_queued(gw, "box-l", "l-2", "ttl_ms=60000");
  EXPECT_EQ(retry.status, 202) << "a retry of a queued id is the same command";
  EXPECT_EQ(retry.json().value("state", ""), "queued");
  HttpResult other = post_queued(gw, "box-l", "l-2", "ttl_ms=60000", R"({"method":"other"})");
  EXPECT_EQ(other.status, 422);
  HttpResult list = test::get(gw, command_path("box-l", "state=pending"));
  EXPECT_EQ(list.status, 400);
  EXPECT_EQ(queued_ids(gw, "box-l"), (std::vector<std::string>{"l-1", "l-2"}));
}

// One token cannot fill the queues: its queued entries, over all boxes, are
// held to token_max_queue_bytes, and each one that leaves its queue (here
// cancelled, expired or sent) gives its share back.
TEST_F(QueueTest, OneTokenIsHeldToItsShareOfTheQueues) {
  // printf %s q-alpha | sha256sum, and q-beta.
  const std::string tokens =
      "alpha:8aadaf9fe18f2703a12589041da23228157fff8eee3d5f2e4404d059d5647971:*,"
      "beta:727321be65cf9ac65277c02249cb0d88f75ab4c3cabec1999934843c701c99fe:*";
  int gw = stack->add_gateway({"--api-tokens", tokens, "--token-max-queue-bytes", "2000", "--queue-sweep-ms", "200"});
  stack->add_bridge();
  auto c = client(gw);
  {
    MqttProbe status(stack->mqtt_port());
    test::MqttPublishOptions retained;
    retained.retained = true;
    for (const char* box : {"tok-1", "tok-2", "tok-3"}) {
      status.publish("dev/" + std::string(box) + "/status", "offline", 1, retained);
      ASSERT_TRUE(test::eventually(
          [&] {
            HttpResult r = get(*c, device_path(box), {{"Authorization", "Bearer q-beta"}});
            return r.status == 200 && !r.json().value("online", true);
          },
          10s));
    }
  }
  auto queue = [&](const char* secret, const std::string& box, const std::string& id, const char* ttl) {
    auto c = client(gw);
    return post(*c, command_path(box, std::string("ttl_ms=") + ttl), R"({"method":"noop","pad":")" +
                std::string(300, 'x') + "\"}",
                {{"X-Request-Id", id}, {"Prefer", "respond-async"}, {"Authorization", std::string("Bearer ") + secret}});
  };
  // Each entry is ~700 bytes: alpha's share holds two, over any boxes.
  ASSERT_EQ(queue("q-alpha", "tok-1", "a-1", "60000").status, 202);
  ASSERT_EQ(queue("q-alpha", "tok-2", "a-2", "60000").status, 202);
  HttpResult over = queue("q-alpha", "tok-3", "a-3", "60000");
  EXPECT_EQ(over.status, 429) << over.body;
  EXPECT_EQ(over.error_code(), "queue_full");
  HttpResult other = queue("q-beta", "tok-3", "b-1", "60000");
  EXPECT_EQ(other.status, 202) << "another token still has its share: " << other.body;

  auto cancel = c->Delete(command_path("tok-2") + "/a-2", {{"Authorization", "Bearer q-alpha"}});
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 200);
  EXPECT_EQ(queue("q-alpha", "tok-3", "a-4", "300").status, 202) << "a cancelled command gave its share back";
  EXPECT_TRUE(test::eventually(
      [&] {
        HttpResult st = get(*c, command_path("tok-3") + "/a-4", {{"Authorization", "Bearer q-alpha"}});
        return st.json().value("state", "") == "expired";
      },
      5s));
  EXPECT_TRUE(test::eventually([&] { return queue("q-alpha", "tok-3", "a-5", "60000").status == 202; }, 5s))
      << "an expired command gave its share back";
}

// Redis away: a command with a ttl is refused 503 at once (nothing queued,
// nothing published), and queueing works again once Redis is back.
TEST_F(QueueTest, WithRedisDownAQueuedCommandIs503AndNothingIsLeft) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-d", false, gw);
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return test::get(gw, "/readyz").status == 503; }, 10s));
  HttpResult down = post_queued(gw, "box-d", "d-1", "ttl_ms=60000");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(down.error_code(), "redis_unavailable");
  stack->redis().start();
  ASSERT_TRUE(test::eventually([&] { return test::get(gw, "/readyz").status == 200; }, 15s)) << stack->logs();
  HttpResult again = post_queued(gw, "box-d", "d-1", "ttl_ms=60000");
  EXPECT_EQ(again.status, 202) << "the refused id was not taken: " << again.body;
}

TEST_F(QueueTest, AGatewayKilledWithQueuedCommandsLeavesThemToAnother) {
  int gw1 = stack->add_gateway();
  int gw2 = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-k", false, gw1);
  for (const char* id : {"k-1", "k-2"}) ASSERT_EQ(post_queued(gw1, "box-k", id, "ttl_ms=60000").status, 202);
  stack->gateway(0).kill9();

  ProbeDevice box(stack->mqtt_port(), "dev/box-k/request/+", ProbeDevice::echo());
  set_presence("box-k", true, gw2);
  ASSERT_TRUE(box.probe().wait_for(2, 10s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"k-1", "k-2"}));
  wait_state(gw2, "box-k", "k-2", "succeeded");
  stack->gateway(0).start();  // teardown expects every daemon to stop cleanly
}

// A gateway that died between claiming a box's head and publishing it left
// its claim ("/sending", past its until_ms): the next gateway to look sends it
// again (same id) if its record still says queued, and notes it timed out if
// the record says it was sent. Planted directly in Redis, so the crash needs
// no timing.
TEST_F(QueueTest, AClaimADeadGatewayLeftIsFinishedByAnother) {
  int gw = stack->add_gateway({"--queue-sweep-ms", "200"});
  stack->add_bridge();
  set_presence("box-s", false, gw);
  for (const char* id : {"s-1", "s-2", "s-3"}) ASSERT_EQ(post_queued(gw, "box-s", id, "ttl_ms=60000").status, 202);
  const std::string items = "dev/box-s/queue-items{dev/box-s}";
  stack->redis().client().command({"HSET", items, "/sending", "s-1 dead-gw 1"});
  EXPECT_EQ(queued_ids(gw, "box-s").front(), "s-1");

  ProbeDevice box(stack->mqtt_port(), "dev/box-s/request/+", ProbeDevice::echo());
  set_presence("box-s", true, gw);
  ASSERT_TRUE(box.probe().wait_for(3, 10s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"s-1", "s-2", "s-3"})) << "never sent: sent again, in order";
  wait_state(gw, "box-s", "s-3", "succeeded");

  // Now a claim whose record says it was published: it is not sent again.
  set_presence("box-s", false, gw);
  for (const char* id : {"t-1", "t-2"}) ASSERT_EQ(post_queued(gw, "box-s", id, "ttl_ms=60000").status, 202);
  const std::string record_key = "dev/box-s/command/t-1";
  auto record = nlohmann::json::parse(*stack->redis().get(record_key));
  record["state"] = "pending";
  record["sent_ms"] = record["accepted_ms"];
  stack->redis().client().command({"SET", record_key, record.dump(), "KEEPTTL"});
  stack->redis().client().command({"HSET", items, "/sending", "t-1 dead-gw 1"});
  box.probe().clear();
  set_presence("box-s", true, gw);
  ASSERT_TRUE(box.probe().wait_for(1, 10s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"t-2"}));
  wait_state(gw, "box-s", "t-1", "timed_out");
  EXPECT_GE(metric(gw, "boxgate_queue_commands_total{event=\"abandoned\"}").value_or(0), 1);
}

class QueueAofTest : public QueueTest {
 protected:
  QueueAofTest() : QueueTest(StackOptions{"queue-aof", {}, false, {}, false, {"--appendonly", "yes", "--appendfsync", "always"}}) {}
};

TEST_F(QueueAofTest, QueuedCommandsSurviveARedisRestartWithAnAppendOnlyFile) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-r", false, gw);
  for (const char* id : {"r-1", "r-2"}) ASSERT_EQ(post_queued(gw, "box-r", id, "ttl_ms=60000").status, 202);
  stack->redis().kill9();
  stack->redis().start();
  // The daemons reconnect; the queue was read back from the append-only file.
  std::vector<std::string> ids;
  EXPECT_TRUE(test::eventually(
      [&] {
        HttpResult list = test::get(gw, command_path("box-r", "state=queued"));
        if (list.status != 200) return false;
        ids.clear();
        const auto doc = list.json();
        for (const auto& record : doc.at("commands")) ids.push_back(record.value("request_id", ""));
        return ids.size() == 2;
      },
      15s))
      << stack->logs();
  EXPECT_EQ(ids, (std::vector<std::string>{"r-1", "r-2"}));
  ProbeDevice box(stack->mqtt_port(), "dev/box-r/request/+", ProbeDevice::echo());
  set_presence("box-r", true, gw);
  ASSERT_TRUE(box.probe().wait_for(2, 10s)) << stack->logs();
  EXPECT_EQ(received_ids(box), (std::vector<std::string>{"r-1", "r-2"}));
}

}  // namespace
}  // namespace boxgate::itest
