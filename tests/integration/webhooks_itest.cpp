// Webhooks on real processes (docs/webhooks.md): a gateway delivers the
// outcome, presence and event streams' entries to receivers configured in
// its endpoint file -- here cpp-httplib servers on 127.0.0.1, https with a
// test CA or plain -- signed per Standard Webhooks, at least once: retried
// after failures, dead-lettered after the retry window (and replayed by the
// operator command), and taken over by another replica when the gateway
// holding a delivery is killed.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <csignal>
#include <fstream>

#include <nlohmann/json.hpp>

#include "itest_env.hpp"
#include "support/daemons.hpp"
#include "support/http_receiver.hpp"

namespace boxgate::itest {
namespace {

using namespace std::chrono_literals;
using test::Receiver;
using test::Seen;

// whsec_ + base64 of these 32 bytes.
constexpr const char* kKey = "0123456789abcdef0123456789abcdef";
constexpr const char* kSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// The Standard Webhooks check, written from the specification: base64 of
// HMAC-SHA256(key, id "." timestamp "." body), after "v1,".
bool signature_ok(const Seen& s) {
  std::string id = s.headers.count("webhook-id") ? s.headers.find("webhook-id")->second : "";
  std::string ts = s.headers.count("webhook-timestamp") ? s.headers.find("webhook-timestamp")->second : "";
  std::string sig = s.headers.count("webhook-signature") ? s.headers.find("webhook-signature")->second : "";
  std::string content = id + "." + ts + "." + s.body;
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kKey, 32, reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  unsigned char b64[64] = {};
  EVP_EncodeBlock(b64, mac, 32);
  return sig == "v1," + std::string(reinterpret_cast<char*>(b64));
}

std::string header(const Seen& s, const std::string& name) {
  auto it = s.headers.find(name);
  return it == s.headers.end() ? "" : it->second;
}

class WebhookTest : public StackTest {
 protected:
  WebhookTest() : StackTest("webhooks") {}

  const test::TestPki& pki() {
    if (!pki_) pki_ = test::make_test_pki(stack->tmp());
    return *pki_;
  }

  // Writes the endpoint file and returns the gateway flags naming it.
  std::vector<std::string> webhook_flags(const std::vector<nlohmann::json>& endpoints, std::vector<std::string> more = {}) {
    std::string path = stack->tmp().path() + "/webhooks-" + std::to_string(++files_) + ".json";
    std::ofstream(path) << nlohmann::json{{"endpoints", nlohmann::json(endpoints)}}.dump(2);
    std::vector<std::string> flags = {"--webhooks", path, "--webhook-ca-file", pki().ca_cert,
                                      "--webhook-retry-initial-ms", "100", "--webhook-timeout-ms", "1000"};
    flags.insert(flags.end(), more.begin(), more.end());
    return flags;
  }

  static nlohmann::json endpoint(const std::string& name, const std::string& url, nlohmann::json kinds) {
    nlohmann::json e = {{"name", name}, {"url", url}, {"secret", kSecret}, {"kinds", std::move(kinds)}};
    if (url.starts_with("http://")) e["allow_http"] = true;
    return e;
  }

  // The deliveries whose body's type is `type`.
  static std::vector<Seen> of_type(const Receiver& r, const std::string& type) {
    std::vector<Seen> out;
    for (const Seen& s : r.seen()) {
      auto j = nlohmann::json::parse(s.body, nullptr, false);
      if (j.is_object() && j.value("type", "") == type) out.push_back(s);
    }
    return out;
  }

  HttpResult command(int gw, const std::string& box, const std::string& id, const std::string& query = "") {
    auto c = client(gw);
    return post(*c, command_path(box, query), R"({"method":"noop"})", {{"X-Request-Id", id}});
  }

  std::optional<test::TestPki> pki_;
  int files_ = 0;
};

TEST_F(WebhookTest, AnOutcomeIsDeliveredOnceOverHttpsSignedPerStandardWebhooks) {
  test::CertFiles server{pki().server_cert, pki().server_key};
  Receiver https(&server);
  https.on("/hook");
  https.start();
  int gw = stack->add_gateway(webhook_flags({endpoint("billing", https.url("/hook"), {"command.succeeded"})}));
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-1/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-1", "w-1").status, 200);
  ASSERT_TRUE(test::eventually([&] { return https.handled() >= 1; }, 10s)) << stack->logs();
  std::this_thread::sleep_for(500ms);  // a second delivery would come within this
  auto seen = https.seen();
  ASSERT_EQ(seen.size(), 1u) << "only command.succeeded, once";
  const Seen& s = seen[0];
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(header(s, "Content-Type"), "application/json");
  EXPECT_TRUE(signature_ok(s)) << header(s, "webhook-signature");
  EXPECT_TRUE(header(s, "webhook-id").starts_with("commands-")) << header(s, "webhook-id");
  long long ts = std::stoll(header(s, "webhook-timestamp"));
  long long now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(std::llabs(now - ts), 5);
  auto body = nlohmann::json::parse(s.body);
  EXPECT_EQ(body.value("type", ""), "command.succeeded");
  EXPECT_EQ(body.value("stream", ""), "commands");
  EXPECT_EQ("commands-" + body.value("stream_id", ""), header(s, "webhook-id"));
  EXPECT_EQ(body["data"].value("request_id", ""), "w-1");
  EXPECT_EQ(body["data"].value("box", ""), "box-1");
  EXPECT_EQ(metric(gw, "boxgate_webhook_delivered_total{endpoint=\"billing\"}").value_or(0), 1);
}

TEST_F(WebhookTest, FailuresAndATimeoutAreRetriedWithTheSameIdThenDeliveredOnce) {
  Receiver receiver;
  std::atomic<int> calls{0};
  receiver.on("/hook", [&](const httplib::Request&, httplib::Response& res) {
    int n = ++calls;
    if (n == 3) std::this_thread::sleep_for(1500ms);  // past webhook_timeout_ms (1 s)
    res.status = n <= 3 ? 500 : 204;
  });
  receiver.start();
  int gw = stack->add_gateway(webhook_flags({endpoint("ops", receiver.url("/hook"), {"command.*"})}));
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-2/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-2", "r-1").status, 200);
  // pending and succeeded: each retried until its 2xx.
  ASSERT_TRUE(test::eventually(
      [&] { return metric(gw, "boxgate_webhook_delivered_total{endpoint=\"ops\"}").value_or(0) == 2; }, 20s))
      << stack->logs();
  std::this_thread::sleep_for(1s);  // no attempt after a 2xx
  std::map<std::string, int> attempts;
  std::map<std::string, int> delivered;
  for (const Seen& s : receiver.seen()) {
    EXPECT_TRUE(signature_ok(s));
    ++attempts[header(s, "webhook-id")];
  }
  ASSERT_EQ(attempts.size(), 2u);
  int total = 0;
  for (auto& [id, n] : attempts) total += n;
  EXPECT_EQ(total, calls.load());
  EXPECT_GE(total, 5) << "three failures (two 500s and a timeout) and two deliveries";
  EXPECT_GE(metric(gw, "boxgate_webhook_attempts_failed_total{endpoint=\"ops\"}").value_or(0), 3);
}

TEST_F(WebhookTest, ADeliveryFailingPastItsWindowIsDeadLetteredThenReplayed) {
  Receiver receiver;
  std::atomic<bool> up{false};
  receiver.on("/hook", [&](const httplib::Request&, httplib::Response& res) { res.status = up ? 200 : 503; });
  receiver.start();
  auto flags = webhook_flags({endpoint("crm", receiver.url("/hook"), {"command.succeeded"})},
                             {"--webhook-retry-for-ms", "1500"});
  int gw = stack->add_gateway(flags);
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-3/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-3", "d-1").status, 200);
  ASSERT_TRUE(test::eventually(
      [&] { return metric(gw, "boxgate_webhook_dead_lettered_total{endpoint=\"crm\"}").value_or(0) == 1; }, 15s))
      << stack->logs();
  auto dead = stack->redis().client().command({"XRANGE", "dev/_webhooks/dead", "-", "+"});
  ASSERT_EQ(dead.elements.size(), 1u);
  std::map<std::string, std::string> f;
  const auto& fields = dead.elements[0].elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) f[fields[i].str] = fields[i + 1].str;
  EXPECT_EQ(f["endpoint"], "crm");
  EXPECT_EQ(f["error"], "HTTP 503");
  EXPECT_EQ(f["type"], "command.succeeded");
  std::string id = f["webhook_id"];
  std::size_t failures = receiver.handled();
  EXPECT_GE(failures, 2u);

  // The receiver is back: the operator replays the dead letter.
  up = true;
  test::Process replay("replay-webhooks",
                       {test::gateway_binary(), "replay-webhooks", "--redis-host", "127.0.0.1", "--redis-port",
                        std::to_string(stack->redis().port()), "--endpoint", "crm"},
                       stack->tmp().path());
  EXPECT_EQ(replay.wait_exit(10s), 0) << replay.log_tail(20);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() == failures + 1; }, 10s)) << stack->logs();
  Seen last = receiver.seen().back();
  EXPECT_EQ(header(last, "webhook-id"), id) << "a replay keeps the id receivers deduplicate by";
  EXPECT_TRUE(signature_ok(last));
  EXPECT_EQ(nlohmann::json::parse(last.body).value("type", ""), "command.succeeded");
  EXPECT_EQ(stack->redis().client().command({"XLEN", "dev/_webhooks/dead"}).integer, 0);
  EXPECT_EQ(metric(gw, "boxgate_webhook_delivered_total{endpoint=\"crm\"}").value_or(0), 1);
}

TEST_F(WebhookTest, AGatewayKilledMidDeliveryHasItFinishedByAnother) {
  Receiver receiver;
  std::atomic<bool> up{false};
  receiver.on("/hook", [&](const httplib::Request&, httplib::Response& res) { res.status = up ? 200 : 500; });
  receiver.start();
  auto flags = webhook_flags({endpoint("erp", receiver.url("/hook"), {"command.succeeded"})},
                             {"--webhook-lease-ms", "1500"});
  int gw1 = stack->add_gateway(flags);
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-4/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw1, "box-4", "k-1").status, 200);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() >= 1; }, 10s)) << stack->logs();
  // gw1 holds the delivery (retrying): it dies without a word.
  stack->gateway(0).kill9();
  std::size_t before = receiver.handled();
  up = true;
  int gw2 = stack->add_gateway(flags);
  ASSERT_TRUE(test::eventually(
      [&] { return metric(gw2, "boxgate_webhook_delivered_total{endpoint=\"erp\"}").value_or(0) == 1; }, 15s))
      << stack->logs();
  EXPECT_GE(metric(gw2, "boxgate_webhook_claimed_total{endpoint=\"erp\"}").value_or(0), 1);
  auto seen = receiver.seen();
  EXPECT_EQ(seen.size(), before + 1);
  EXPECT_EQ(header(seen.back(), "webhook-id"), header(seen.front(), "webhook-id"));
  std::this_thread::sleep_for(1s);  // a second delivery (by the dead one's lease or a retry) would come within this
  EXPECT_EQ(receiver.handled(), before + 1) << "delivered once";
}

TEST_F(WebhookTest, PresenceAndDeviceEventsOfTheEndpointsBoxesAreDelivered) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  nlohmann::json e = endpoint("fleet", receiver.url("/hook"), {"device.*", "event.alarm"});
  e["boxes"] = "site1-*";
  int gw = stack->add_gateway(webhook_flags({e}));
  stack->add_bridge();
  // The groups are created at the stream's end: wait until they exist.
  ASSERT_TRUE(test::eventually(
      [&] { return stack->redis().client().command({"XINFO", "GROUPS", "dev/events"}).elements.size() == 1; }, 5s));
  set_presence("site1-a", true, gw);
  set_presence("site2-b", true, gw);
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/site1-a/event/alarm", R"({"level":3})");
  device.publish("dev/site1-a/event/heartbeat", R"({"ok":true})");
  device.publish("dev/site2-b/event/alarm", R"({"level":9})");
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() >= 2; }, 10s)) << stack->logs();
  std::this_thread::sleep_for(500ms);  // nothing else may come
  auto online = of_type(receiver, "device.online");
  auto alarms = of_type(receiver, "event.alarm");
  ASSERT_EQ(online.size(), 1u);
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_EQ(receiver.handled(), 2u) << "not site2-b's, not heartbeat";
  auto presence = nlohmann::json::parse(online[0].body);
  EXPECT_EQ(presence["data"].value("box", ""), "site1-a");
  EXPECT_EQ(presence["data"].value("online", false), true);
  auto alarm = nlohmann::json::parse(alarms[0].body);
  EXPECT_EQ(alarm["data"].value("box", ""), "site1-a");
  EXPECT_EQ(alarm["data"]["payload"].value("level", 0), 3) << "a JSON payload stays JSON";
  EXPECT_TRUE(signature_ok(alarms[0]));
}

TEST_F(WebhookTest, ABadEndpointFileStopsTheStartAndABadReloadKeepsTheOldOne) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  // http:// without allow_http: refused at start, exit 2.
  nlohmann::json plain = {{"name", "x"}, {"url", receiver.url("/hook")}, {"secret", kSecret}, {"kinds", {"command.*"}}};
  std::vector<std::string> argv = {test::gateway_binary()};
  for (const std::string& flag : webhook_flags({plain})) argv.push_back(flag);
  test::Process refused("refused-gateway", argv, stack->tmp().path());
  EXPECT_EQ(refused.wait_exit(10s), 2);
  EXPECT_NE(refused.log_tail(20).find("allow_http"), std::string::npos) << refused.log_tail(20);

  auto flags = webhook_flags({endpoint("a", receiver.url("/hook"), {"command.succeeded"})});
  int gw = stack->add_gateway(flags);
  stack->add_bridge();
  EXPECT_EQ(metric(gw, "boxgate_webhook_endpoints").value_or(-1), 1);
  // A broken file on SIGHUP: the endpoint in force stays.
  std::ofstream(flags[1]) << "{not json";
  stack->gateway(0).signal(SIGHUP);
  ASSERT_TRUE(test::eventually(
      [&] { return stack->gateway(0).log_tail(50).find("webhook file not reloaded") != std::string::npos; }, 5s));
  ProbeDevice box(stack->mqtt_port(), "dev/box-5/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-5", "h-1").status, 200);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() == 1; }, 10s)) << stack->logs();
  // A good file adds an endpoint.
  nlohmann::json two = nlohmann::json::array({endpoint("a", receiver.url("/hook"), {"command.succeeded"}),
                                              endpoint("b", receiver.url("/hook"), {"command.succeeded"})});
  std::ofstream(flags[1]) << nlohmann::json{{"endpoints", two}}.dump();
  stack->gateway(0).signal(SIGHUP);
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_webhook_endpoints").value_or(-1) == 2; }, 5s));
  ASSERT_TRUE(test::eventually(
      [&] { return stack->redis().client().command({"XINFO", "GROUPS", "dev/commands"}).elements.size() == 2; }, 5s));
  ASSERT_EQ(command(gw, "box-5", "h-2").status, 200);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() == 3; }, 10s)) << "h-2 once to each endpoint";
}

TEST_F(WebhookTest, ADrainLetsADeliveryUnderWayFinishAndAcknowledgesIt) {
  Receiver receiver;
  receiver.on("/hook", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(800ms);  // still under way when SIGTERM comes
    res.status = 200;
  });
  receiver.start();
  int gw = stack->add_gateway(webhook_flags({endpoint("slow", receiver.url("/hook"), {"command.succeeded"})}));
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-6/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-6", "g-1").status, 200);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() == 1; }, 10s)) << stack->logs();
  EXPECT_EQ(stack->gateway(0).stop(SIGTERM, 10s), 0) << stack->gateway(0).log_tail();
  // Answered before the exit, and acknowledged: nothing left pending for another replica.
  auto pending = stack->redis().client().command({"XPENDING", "dev/commands", "webhook:slow"});
  ASSERT_FALSE(pending.elements.empty());
  EXPECT_EQ(pending.elements[0].integer, 0) << "the delivery under way was acknowledged";
}

TEST_F(WebhookTest, AfterRedisRestartsEmptyTheFirstOutcomesAreStillDelivered) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  int gw = stack->add_gateway(webhook_flags({endpoint("re", receiver.url("/hook"), {"command.succeeded"})}));
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-7/request/+", ProbeDevice::echo());
  ASSERT_EQ(command(gw, "box-7", "before").status, 200);
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() == 1; }, 10s)) << stack->logs();
  // Redis comes back without persistence, and an outcome is written (as a
  // bridge flushing what it held would) before the gateway reads again: held
  // with SIGSTOP, so the order is certain.
  stack->gateway(0).signal(SIGSTOP);
  stack->redis().kill9();
  stack->redis().start();
  stack->redis().client().command({"XADD", "dev/commands", "*", "box", "box-7", "name", "succeeded", "payload",
                                   R"({"request_id":"held","box":"box-7","state":"succeeded","at_ms":1})",
                                   "received_ms", "1"});
  stack->gateway(0).signal(SIGCONT);
  // The group is made again from the new stream's start: that entry is not skipped.
  ASSERT_TRUE(test::eventually(
      [&] {
        for (const Seen& s : of_type(receiver, "command.succeeded")) {
          if (nlohmann::json::parse(s.body)["data"].value("request_id", "") == "held") return true;
        }
        return false;
      },
      10s))
      << stack->logs();
  // And the endpoint goes on with new commands.
  HttpResult r;
  ASSERT_TRUE(test::eventually(
      [&] {
        r = command(gw, "box-7", "after-" + std::to_string(receiver.handled()));
        return r.status == 200;
      },
      15s))
      << r.status << " " << r.body;
  ASSERT_TRUE(test::eventually([&] { return of_type(receiver, "command.succeeded").size() >= 3; }, 10s));
}

}  // namespace
}  // namespace boxgate::itest
