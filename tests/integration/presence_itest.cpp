// Presence on real processes: devsim announces its boxes
// on the retained status topic and leaves `offline` as the will of a one-box
// connection; the bridge keeps {prefix}/{box}/presence in Redis, moving
// `since` only on a change; GET /v1/devices/{boxId} on the gateway answers
// it, with the command endpoint's validation and tokens.

#include <gtest/gtest.h>

#include <regex>

#include "itest_env.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest {
namespace {

class PresenceTest : public StackTest {
 protected:
  PresenceTest() : StackTest("presence") {}

  // The presence the gateway reports for `box` (status -1 on a transport error).
  HttpResult presence(const std::string& box, const httplib::Headers& headers = {}) {
    auto c = client(gw);
    return test::get(*c, device_path(box), headers);
  }
  // Waits until the gateway reports `box` as `online`; returns its since_ms.
  std::int64_t wait_state(const std::string& box, bool online, std::chrono::milliseconds timeout = 10s) {
    HttpResult last;
    bool reached = test::eventually(
        [&] {
          last = presence(box);
          return last.status == 200 && last.json().value("online", !online) == online;
        },
        timeout);
    EXPECT_TRUE(reached) << box << " never " << (online ? "online" : "offline") << ": " << last.status << " "
                         << last.body << "\n"
                         << stack->logs();
    return reached ? last.json().value("since_ms", std::int64_t{-1}) : -1;
  }
  double bridge_metric(const std::string& series) { return metric(stack->bridge_port(), series).value_or(-1); }
  // The retained message the broker holds on `topic` ("" when none).
  std::string retained(const std::string& topic) {
    MqttProbe probe(stack->mqtt_port());
    probe.subscribe(topic);
    if (!probe.wait_for(1, 2s)) return "";
    MqttMessage m = probe.messages().front();
    return m.retained ? m.payload : "(not retained) " + m.payload;
  }

  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  int gw = 0;
};

TEST_F(PresenceTest, AOneBoxConnectionThatDropsGoesOfflineByItsWill) {
  gw = stack->add_gateway();
  stack->add_bridge();
  HttpResult unknown = presence("box-x");
  ASSERT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(unknown.error_code(), "unknown_device");
  EXPECT_EQ(unknown.json().value("box_id", ""), "box-x");

  const std::int64_t before = now_ms();
  Process& devsim = stack->devsim(stack->add_devsim({"--box-list", "box-x"}));
  const std::int64_t came_online = wait_state("box-x", true);
  EXPECT_GE(came_online, before);
  EXPECT_LE(came_online, now_ms());
  HttpResult online = presence("box-x");
  EXPECT_EQ(online.header("Cache-Control"), "no-store");
  auto body = online.json();
  EXPECT_EQ(body.value("box_id", ""), "box-x");
  EXPECT_TRUE(std::regex_match(body.value("since", ""),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << online.body;
  EXPECT_EQ(body.size(), 5u) << online.body;
  EXPECT_EQ(body.value("queued", -1), 0) << "no command waits in its queue";

  // No DISCONNECT: the broker publishes the connection's will.
  ASSERT_EQ(devsim.kill9(), 128 + 9);
  const std::int64_t went_offline = wait_state("box-x", false);
  EXPECT_GT(went_offline, came_online);
  EXPECT_EQ(retained("dev/box-x/status"), "offline");
  EXPECT_EQ(bridge_metric(R"(boxgate_presence_changes_total{state="offline"})"), 1);

  // A new bridge gets the retained `offline` again: written, not changed.
  ASSERT_EQ(stack->bridge().stop(SIGTERM, 10s), 0) << stack->bridge().log_tail();
  stack->bridge().start();
  ASSERT_TRUE(test::wait_ready(stack->bridge_port())) << stack->bridge().log_tail();
  ASSERT_TRUE(test::eventually(
      [&] { return bridge_metric(R"(boxgate_presence_updates_total{state="offline"})") == 1; }, 5s))
      << stack->bridge().log_tail();
  EXPECT_EQ(bridge_metric(R"(boxgate_presence_changes_total{state="offline"})"), 0);
  EXPECT_EQ(presence("box-x").json().value("since_ms", std::int64_t{-1}), went_offline);

  // Back again: online, from a later `since`.
  devsim.start();
  EXPECT_GT(wait_state("box-x", true), went_offline);
}

TEST_F(PresenceTest, SeveralBoxesOnOneConnectionGoOfflineOnlyOnACleanStop) {
  gw = stack->add_gateway();
  stack->add_bridge();
  // box-a and box-b share one connection (no will); box-c has its own.
  std::size_t shared_index = stack->add_devsim({"--box-list", "box-a,box-b", "--clients", "1"});
  std::size_t alone_index = stack->add_devsim({"--box-list", "box-c"});
  Process& shared = stack->devsim(shared_index);  // references after the last add
  Process& alone = stack->devsim(alone_index);
  const std::int64_t a_since = wait_state("box-a", true);
  wait_state("box-b", true);
  wait_state("box-c", true);

  // Killed, the shared connection leaves no will: its boxes stay online.
  // The lone box's will, published after, shows the broker has handled both.
  ASSERT_EQ(shared.kill9(), 128 + 9);
  ASSERT_EQ(alone.kill9(), 128 + 9);
  wait_state("box-c", false);
  EXPECT_EQ(retained("dev/box-a/status"), "online");
  EXPECT_TRUE(presence("box-a").json().value("online", false));

  // Restarted, it announces `online` again: the same state, `since` stays.
  shared.start();
  ASSERT_TRUE(shared.wait_for_log("devsim ready", 15s)) << shared.log_tail();
  ASSERT_TRUE(test::eventually(
      [&] { return bridge_metric(R"(boxgate_presence_updates_total{state="online"})") >= 5; }, 5s))
      << stack->logs();
  EXPECT_EQ(presence("box-a").json().value("since_ms", std::int64_t{-1}), a_since);

  // A clean stop publishes `offline` for every box before the DISCONNECT.
  ASSERT_EQ(shared.stop(SIGTERM, 10s), 0) << shared.log_tail();
  EXPECT_GT(wait_state("box-a", false), a_since);
  wait_state("box-b", false);
}

TEST_F(PresenceTest, InvalidStatusMessagesAreDroppedAndCounted) {
  gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  const std::vector<std::string> invalid_payloads = {
      "maybe", "Online", R"({"online":"yes"})", R"({"online":true,"online":false})", R"({"x":{"online":true}})",
      std::string(3000, '['),  // deeper than the parser's limit, within the size limit
  };
  for (const auto& payload : invalid_payloads) device.publish("dev/box-y/status", payload);
  device.publish("dev/box-y/status", R"({"online":true,"pad":")" + std::string(5000, 'x') + "\"}");
  device.publish("dev/bad box/status", "online");
  device.publish("dev/box-y/status", R"({"online":false,"battery":71})");

  const double received = static_cast<double>(invalid_payloads.size()) + 3;
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_presence_received_total") == received; }, 5s))
      << stack->bridge().log_tail();
  auto dropped = [&](const char* reason) {
    return bridge_metric(std::string("boxgate_presence_dropped_total{reason=\"") + reason + "\"}");
  };
  EXPECT_EQ(dropped("invalid_payload"), static_cast<double>(invalid_payloads.size()));
  EXPECT_EQ(dropped("too_large"), 1);
  EXPECT_EQ(dropped("invalid_topic"), 1);
  EXPECT_EQ(dropped("redis_error"), 0);
  // Status messages are not replies: nothing counted there.
  EXPECT_EQ(bridge_metric("boxgate_replies_received_total"), 0);

  wait_state("box-y", false);
  // Only the valid one wrote anything: one hash, two fields.
  test::RespValue all = stack->redis().client().command({"HGETALL", "dev/box-y/presence"});
  EXPECT_EQ(all.elements.size(), 4u);
  // The presence hashes (the presence stream dev/presence holds the change).
  test::RespValue keys = stack->redis().client().command({"KEYS", "*/presence"});
  std::size_t hashes = 0;
  for (const auto& key : keys.elements) hashes += key.str != "dev/presence";
  EXPECT_EQ(hashes, 1u);
  EXPECT_EQ(get(br, "/healthz").status, 200);
}

TEST_F(PresenceTest, TheEndpointValidatesLikeTheCommandEndpoint) {
  // printf %s secret-ci | sha256sum: a token for box-* only.
  const std::string ci = "ci:ce2eda71cf833a8bf08ec730a7ba5374db9957a70f1f0d80705d9fbdcb952c06:box-*";
  gw = stack->add_gateway({"--api-tokens", ci});
  stack->redis().client().command({"HSET", "dev/box-1/presence", "online", "1", "since", "1714566896789"});
  stack->redis().client().command({"HSET", "dev/other-1/presence", "online", "1", "since", "1"});
  stack->redis().client().command({"HSET", "dev/box-junk/presence", "online", "maybe", "since", "1"});
  test::RedisMonitor monitor(stack->redis().port());
  const httplib::Headers token = {{"Authorization", "Bearer secret-ci"}};

  HttpResult ok = presence("box-1", {{"Authorization", "Bearer secret-ci"}, {"X-Request-Id", "look-1"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body,
            R"({"box_id":"box-1","online":true,"since":"2024-05-01T12:34:56.789Z","since_ms":1714566896789,"queued":0})");
  EXPECT_EQ(ok.header("X-Request-Id"), "look-1");

  struct Case {
    std::string path;
    httplib::Headers headers;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"/v1/devices/box-1", {}, 401, "unauthorized"},
      {"/v1/devices/box-1", {{"Authorization", "Bearer nope"}}, 401, "unauthorized"},
      {"/v1/devices/other-1", token, 403, "forbidden"},
      {"/v1/devices/bad%20box", token, 400, "invalid_box_id"},
      {"/v1/devices/box%2F1", token, 400, "invalid_box_id"},
      {"/v1/devices/box-1", {{"Authorization", "Bearer secret-ci"}, {"X-Request-Id", "bad id"}}, 400,
       "invalid_request_id"},
      {"/v1/devices/box-1?verbose=1", token, 400, "invalid_query"},
      {"/v1/devices/box-1/", token, 404, "not_found"},
      {"/v1/devices/", token, 404, "not_found"},
      {"/v1/devices/box-never", token, 404, "unknown_device"},
      {"/v1/devices/box-junk", token, 404, "unknown_device"},  // not written by a bridge: not trusted
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.path);
    HttpResult r = presence(tc.path.substr(std::string("/v1/devices/").size()), tc.headers);
    EXPECT_EQ(r.status, tc.status) << r.body;
    EXPECT_EQ(r.error_code(), tc.error) << r.body;
    if (tc.status == 401) {
      EXPECT_TRUE(r.has_header("WWW-Authenticate"));
    }
    if (tc.error == "unknown_device" || tc.status == 401 || tc.status == 403) {
      EXPECT_EQ(r.json().value("box_id", ""), tc.path.substr(std::string("/v1/devices/").size())) << r.body;
    }
  }
  auto c = client(gw);
  HttpResult post_it = post(*c, device_path("box-1"), "{}", token);
  EXPECT_EQ(post_it.status, 405);
  EXPECT_EQ(post_it.header("Allow"), "GET");

  // Refused callers cost no Redis read: the only HMGETs of presence are of
  // the boxes that passed every check (the others are the token's rate
  // limit, docs/security.md).
  auto presence_reads = [&] {
    std::vector<std::string> reads;
    for (const auto& line : monitor.commands("hmget")) {
      if (line.find("/_tokens/") == std::string::npos) reads.push_back(line);
    }
    return reads;
  };
  ASSERT_TRUE(test::eventually([&] { return presence_reads().size() >= 3; }, 2s));
  for (const auto& line : presence_reads()) {
    EXPECT_TRUE(line.find("dev/box-1/presence") != std::string::npos ||
                line.find("dev/box-never/presence") != std::string::npos ||
                line.find("dev/box-junk/presence") != std::string::npos)
        << line;
  }
  EXPECT_EQ(presence_reads().size(), 3u);

  // Redis gone: 503 at once, not a wait.
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/readyz").status == 503; }, 5s));
  HttpResult down = presence("box-1", token);
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(down.error_code(), "redis_unavailable");
  EXPECT_EQ(down.header("Retry-After"), "1");
  EXPECT_LT(down.elapsed, 500ms);
  stack->redis().start();
}

}  // namespace
}  // namespace boxgate::itest
