// The command lifecycle across the cluster: the command record,
// exactly-once publishing of one X-Request-Id over three gateways, async
// commands polled and long-polled from another replica, late replies kept,
// one-way messages answered after the broker's PUBACK, and the 504 that says
// whether the broker took the command. Real redis-server, mosquitto, bridge
// and gateways; devices are MQTT probes.

#include <csignal>

#include "faults_support.hpp"
#include "support/records.hpp"

namespace boxgate::itest {
namespace {

using namespace faults;

const std::string kReboot = R"({"method":"reboot"})";

class LifecycleTest : public StackTest {
 protected:
  LifecycleTest() : StackTest("lifecycle") {}
  void TearDown() override {
    if (stack) stack->mqtt().process().signal(SIGCONT);  // never leave a frozen broker behind
    StackTest::TearDown();
  }
  static std::unique_ptr<MqttProbe> silent_device(int mqtt_port, const std::string& filter = "dev/+/request/+") {
    auto probe = std::make_unique<MqttProbe>(mqtt_port);
    probe->subscribe(filter);
    return probe;
  }
  static httplib::Headers async_headers(const std::string& id) {
    return {{"X-Request-Id", id}, {"Prefer", "respond-async"}};
  }
  static std::string status_path(const std::string& box, const std::string& id, const std::string& query = "") {
    return "/v1/devices/" + box + "/commands/" + id + (query.empty() ? "" : "?" + query);
  }
};

TEST_F(LifecycleTest, OneIdSentToThreeGatewaysAtOncePublishesExactlyOnce) {
  int gws[3] = {stack->add_gateway(), stack->add_gateway(), stack->add_gateway()};
  stack->add_bridge();
  auto device = silent_device(stack->mqtt_port());
  for (int round = 0; round < 5; ++round) {
    const std::string id = "once-" + std::to_string(round);
    std::vector<std::future<HttpResult>> calls;
    for (int gw : gws) {
      calls.push_back(post_async(gw, command_path("box-1", "timeout_ms=1500"), kReboot, {{"X-Request-Id", id}}));
    }
    std::map<int, int> statuses;
    for (auto& call : calls) ++statuses[call.get().status];
    EXPECT_EQ(statuses[504], 1) << "round " << round << ": one waited for the (silent) device";
    EXPECT_EQ(statuses[409], 2) << "round " << round << ": the other replicas refused the duplicate";
  }
  EXPECT_FALSE(device->wait_for(6, 500ms));
  auto commands = device->messages();
  ASSERT_EQ(commands.size(), 5u) << "each id published exactly once";
  report("publishes_for_5_ids_sent_3_times", commands.size());

  // The id is spent: a retry anywhere is told it timed out, and says whether
  // the broker took it; nothing is sent again.
  auto c = client(gws[2]);
  HttpResult retry = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "once-0"}});
  EXPECT_EQ(retry.status, 504) << retry.body;
  EXPECT_EQ(retry.error_code(), "device_timeout");
  EXPECT_EQ(retry.json().value("delivered", false), true) << retry.body;
  EXPECT_FALSE(device->wait_for(6, 300ms));
}

TEST_F(LifecycleTest, ARetryWhileTheFirstWaitsIs409AnywhereThenGetsTheReply) {
  int a = stack->add_gateway();
  int b = stack->add_gateway();
  stack->add_bridge();
  auto device = silent_device(stack->mqtt_port());
  {
    // The caller hangs up; the command goes on.
    auto c = client(a);
    c->set_read_timeout(std::chrono::milliseconds(300));
    HttpResult gone = post(*c, command_path("box-1", "timeout_ms=10000"), kReboot, {{"X-Request-Id", "hung-up"}});
    EXPECT_EQ(gone.status, -1) << gone.body;
  }
  ASSERT_TRUE(device->wait_for(1, 3s));
  auto c = client(b);
  HttpResult dup = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "hung-up"}});
  EXPECT_EQ(dup.status, 409) << dup.body;
  EXPECT_EQ(dup.error_code(), "duplicate_request_id");
  HttpResult other = post(*c, command_path("box-1"), R"({"method":"other"})", {{"X-Request-Id", "hung-up"}});
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_EQ(other.error_code(), "request_id_reused");

  const std::string reply = R"({"id":"hung-up","result":"done"})";
  device->publish("dev/box-1/response/hung-up", reply);
  EXPECT_TRUE(test::eventually([&] { return stack->redis().get("dev/box-1/response/hung-up").has_value(); }, 3s));
  HttpResult replay = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "hung-up"}});
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.body, reply);
  EXPECT_EQ(device->messages().size(), 1u) << "never published twice";
}

TEST_F(LifecycleTest, AsyncCommandIsPolledAndLongPolledFromAnotherReplica) {
  int a = stack->add_gateway();
  int b = stack->add_gateway();
  stack->add_bridge();
  auto device = silent_device(stack->mqtt_port());
  auto c = client(a);
  HttpResult accepted = post(*c, command_path("box-1", "timeout_ms=120000"), kReboot, async_headers("job-1"));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(accepted.header("Location"), "/v1/devices/box-1/commands/job-1");
  EXPECT_EQ(accepted.header("Preference-Applied"), "respond-async");
  EXPECT_EQ(accepted.json().value("state", ""), "pending");
  EXPECT_EQ(accepted.json().value("mode", ""), "async");
  report("async_202_ms", accepted.elapsed.count());
  ASSERT_TRUE(device->wait_for(1, 3s));

  HttpResult pending = get(b, status_path("box-1", "job-1"));
  ASSERT_EQ(pending.status, 200) << pending.body;
  EXPECT_EQ(pending.json().value("state", ""), "pending");

  // A long poll on B, and one on A, whose waiting command shares the reply
  // channel with it; the device answers once both are waiting.
  auto poll = std::async(std::launch::async, [&] {
    auto pc = client(b);
    return test::get(*pc, status_path("box-1", "job-1", "wait_ms=10000"));
  });
  auto poll_holder = std::async(std::launch::async, [&] {
    auto pc = client(a);
    return test::get(*pc, status_path("box-1", "job-1", "wait_ms=10000"));
  });
  // Both are waiting: each gateway counts its long poll, and B's subscription
  // to the reply channel has reached Redis (A's command already holds it).
  ASSERT_TRUE(test::eventually(
      [&] {
        return metric(a, "boxgate_command_status_long_polls") == 1.0 &&
               metric(b, "boxgate_command_status_long_polls") == 1.0 &&
               stack->redis().pubsub_numsub("dev/box-1/response/job-1") == 2;
      },
      5s))
      << stack->logs();
  auto replied_at = Clock::now();
  const std::string reply = R"({"id":"job-1","result":{"flashed":true}})";
  device->publish("dev/box-1/response/job-1", reply);
  HttpResult done = poll.get();
  auto after_reply = ms_since(replied_at);
  ASSERT_EQ(done.status, 200) << done.body;
  auto doc = done.json();
  EXPECT_EQ(doc.value("state", ""), "succeeded") << done.body;
  EXPECT_EQ(doc["reply"]["result"]["flashed"], true) << done.body;
  EXPECT_FALSE(doc.contains("late"));
  EXPECT_LT(after_reply, 1000) << "the long poll ends with the reply, not at wait_ms";
  HttpResult on_holder = poll_holder.get();
  EXPECT_EQ(on_holder.json().value("state", ""), "succeeded") << on_holder.body;
  EXPECT_LT(on_holder.elapsed.count(), 5000);
  report("long_poll_answered_after_reply_ms", after_reply);

  // The record notes the end (written by A, which held the command).
  EXPECT_TRUE(test::eventually(
      [&] { return stack->redis().get("dev/box-1/command/job-1").value_or("").find("succeeded") != std::string::npos; },
      3s));
  // An unknown id, a bad wait, an id that is not one.
  EXPECT_EQ(get(b, status_path("box-1", "nobody")).error_code(), "unknown_command");
  EXPECT_EQ(get(b, status_path("box-1", "job-1", "wait_ms=x")).error_code(), "invalid_wait");
  EXPECT_EQ(get(b, status_path("box-1", "job-1", "other=1")).error_code(), "invalid_query");
  EXPECT_EQ(get(b, status_path("box-1", "bad%2Fid")).error_code(), "invalid_request_id");
  EXPECT_EQ(metric(a, R"(boxgate_commands_admitted_total{mode="async"})"), 1.0);
}

TEST_F(LifecycleTest, AReplyAfterTheTimeoutIsKeptAsLate) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  auto device = silent_device(stack->mqtt_port());
  auto c = client(gw);
  HttpResult accepted = post(*c, command_path("box-1", "timeout_ms=300"), kReboot, async_headers("slow-job"));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(device->wait_for(1, 3s));
  // Until the holder has noted the end (its last read of the result key
  // comes first), a reply would still count as on time.
  EXPECT_TRUE(test::eventually(
      [&] {
        auto doc = get(gw, status_path("box-1", "slow-job")).json();
        return doc.value("state", "") == "timed_out" && doc.contains("delivered");
      },
      3s));
  HttpResult timed_out = get(gw, status_path("box-1", "slow-job"));
  EXPECT_EQ(timed_out.json().value("delivered", false), true) << timed_out.body;

  const std::string reply = R"({"id":"slow-job","result":"finally"})";
  device->publish("dev/box-1/response/slow-job", reply);
  EXPECT_TRUE(test::eventually(
      [&] { return get(gw, status_path("box-1", "slow-job")).json().value("state", "") == "succeeded"; }, 3s));
  auto doc = get(gw, status_path("box-1", "slow-job")).json();
  EXPECT_EQ(doc.value("late", false), true) << doc.dump();
  EXPECT_EQ(doc["reply"]["result"], "finally");
}

TEST_F(LifecycleTest, A504SaysWhetherTheBrokerTookTheCommand) {
  int gw = stack->add_gateway({"--mqtt-keepalive-s", "30"});
  stack->add_bridge();
  auto device = silent_device(stack->mqtt_port());
  auto c = client(gw);
  HttpResult taken = post(*c, command_path("box-1", "timeout_ms=300"), kReboot);
  EXPECT_EQ(taken.status, 504);
  EXPECT_EQ(taken.json().value("delivered", false), true) << taken.body;

  stack->mqtt().process().signal(SIGSTOP);  // connected, but no PUBACK comes
  HttpResult lost = post(*c, command_path("box-1", "timeout_ms=300"), kReboot);
  EXPECT_EQ(lost.status, 504) << lost.body;
  EXPECT_EQ(lost.json().value("delivered", true), false) << lost.body;
  stack->mqtt().process().signal(SIGCONT);
}

TEST_F(LifecycleTest, AOneWayMessageIs202AfterThePubackAnd503WithTheBrokerFrozen) {
  int gw = stack->add_gateway({"--message-ack-timeout-ms", "500", "--mqtt-keepalive-s", "30"});
  auto device = silent_device(stack->mqtt_port(), "dev/+/message/+");
  auto c = client(gw);
  HttpResult sent = post(*c, "/v1/devices/box-1/messages", R"({"note":"hello"})", {{"X-Request-Id", "m-1"}});
  EXPECT_EQ(sent.status, 202) << sent.body;
  EXPECT_EQ(sent.json().value("status", ""), "accepted");
  ASSERT_TRUE(device->wait_for(1, 3s));
  auto messages = device->messages();
  EXPECT_EQ(messages[0].topic, "dev/box-1/message/m-1");
  EXPECT_EQ(messages[0].payload, R"({"id":"m-1","note":"hello"})");
  report("message_202_ms", sent.elapsed.count());

  stack->mqtt().process().signal(SIGSTOP);
  HttpResult frozen = post(*c, "/v1/devices/box-1/messages", R"({"note":"lost?"})");
  EXPECT_EQ(frozen.status, 503) << frozen.body;
  EXPECT_EQ(frozen.error_code(), "mqtt_unavailable");
  EXPECT_GE(frozen.elapsed.count(), 450);
  EXPECT_LT(frozen.elapsed.count(), 2000);
  report("message_503_frozen_ms", frozen.elapsed.count());
  stack->mqtt().process().signal(SIGCONT);

  EXPECT_EQ(post(*c, "/v1/devices/box-1/messages?x=1", "{}").error_code(), "invalid_query");
  EXPECT_EQ(post(*c, "/v1/devices/box-1/messages", "[1]").error_code(), "invalid_body");
  EXPECT_EQ(metric(gw, R"(boxgate_messages_total{outcome="acknowledged"})"), 1.0);
  EXPECT_EQ(metric(gw, R"(boxgate_messages_total{outcome="not_acknowledged"})"), 1.0);
}

TEST_F(LifecycleTest, AReplyNoRecordClaimsIsNeverHandedToTheNextCaller) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  stack->redis().set("dev/box-1/response/picked", R"({"id":"picked","result":"planted"})", 60000);
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "picked"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("planted"), std::string::npos) << "the planted reply was replayed: " << r.body;
  EXPECT_EQ(device.commands().size(), 1u) << "the command ran";
  EXPECT_EQ(metric(gw, "boxgate_orphan_results_discarded_total"), 1.0);

  // A planted record whose body differs is a reused id.
  test::plant_stored_reply(stack->redis(), "box-1", "theirs", R"({"method":"x"})", R"({"result":1})");
  EXPECT_EQ(post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "theirs"}}).status, 422);
}

TEST_F(LifecycleTest, IdempotencyKeyNamesTheCommandLikeXRequestId) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  HttpResult first = post(*c, command_path("box-1"), kReboot, {{"Idempotency-Key", "idem-1"}});
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Request-Id"), "idem-1");
  HttpResult again = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "idem-1"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(device.commands().size(), 1u) << "a replay, not a second run";
  HttpResult both = post(*c, command_path("box-1"), kReboot, {{"X-Request-Id", "a"}, {"Idempotency-Key", "b"}});
  EXPECT_EQ(both.status, 400);
  EXPECT_EQ(both.error_code(), "invalid_request_id");
}

TEST_F(LifecycleTest, OfflinePolicyFailAnswersAnOfflineBoxAtOnceAndSendsNothing) {
  int gw = stack->add_gateway({"--offline-policy", "fail"});
  int wait_gw = stack->add_gateway();  // offline_policy=wait, the default
  int br = stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  test::MqttPublishOptions retained;
  retained.retained = true;
  device.probe().publish("dev/box-1/status", "offline", 1, retained);
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1").json().value("online", true) == false; }, 3s));

  auto c = client(gw);
  HttpResult offline = post(*c, command_path("box-1"), kReboot);
  EXPECT_EQ(offline.status, 404) << offline.body;
  EXPECT_EQ(offline.error_code(), "device_offline");
  EXPECT_LT(offline.elapsed.count(), 50) << "answered at once, not at the timeout";
  report("device_offline_answered_ms", offline.elapsed.count());
  const std::string id = offline.header("X-Request-Id");
  EXPECT_FALSE(stack->redis().get("dev/box-1/command/" + id)) << "never sent: no record left";

  // A box with no presence stored is not refused (presence is advice).
  EXPECT_EQ(post(*c, command_path("box-unknown"), kReboot).status, 200);
  // The default policy sends it anyway (and the device, being a probe, answers).
  auto w = client(wait_gw);
  EXPECT_EQ(post(*w, command_path("box-1"), kReboot).status, 200);
  EXPECT_EQ(device.commands().size(), 2u) << "only the two that were not refused were published";

  device.probe().publish("dev/box-1/status", "online", 1, retained);
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1").json().value("online", false); }, 3s));
  EXPECT_EQ(post(*c, command_path("box-1"), kReboot).status, 200);
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="device_offline"})"), 1.0);
  (void)br;
}

}  // namespace
}  // namespace boxgate::itest
