// API tokens on real processes: a missing or wrong token
// is 401 with WWW-Authenticate, a valid token outside its scope is 403, and in
// neither case is anything published (an MQTT '#' observer sees nothing) or
// done in Redis (MONITOR sees no SUBSCRIBE, GET or PUBLISH) -- not even the
// answer of a stored reply. Metrics count refusals by token name and never
// show a secret; `hash-token` prints the hash to configure.

#include <gtest/gtest.h>

#include <sys/stat.h>

#include "faults_support.hpp"
#include "itest_env.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest {
namespace {

// printf %s secret-ci | sha256sum (and so on): the hashes the gateway is given.
const std::string kOpsHash = "1e626bcab8c43d59e0ea641629da784e4b3b0d7633af589ee757187cdbfa8ffd";
const std::string kTokens = "ci:" + kCiHash + ":box-*|lab-7,ops:" + kOpsHash + ":*";

httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

class AuthTest : public StackTest {
 protected:
  AuthTest() : StackTest("auth") {}
};

TEST_F(AuthTest, RefusedCallersGet401Or403AndNothingIsPublishedOrSubscribed) {
  int gw = stack->add_gateway({"--api-tokens", kTokens});
  stack->add_bridge();
  MqttProbe watcher(stack->mqtt_port());
  watcher.subscribe("#", 1);
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  // Stored replies a refused caller must not be able to read back.
  stack->redis().set("dev/box-1/response/kept", R"({"id":"kept","result":"secret"})", 60000);
  stack->redis().set("dev/other-1/response/kept", R"({"id":"kept","result":"secret"})", 60000);
  test::RedisMonitor monitor(stack->redis().port());

  struct Case {
    std::string label;
    std::string box;
    httplib::Headers headers;
    int status;
    std::string www_authenticate;  // "" : header must be absent
  };
  const std::string invalid = R"(Bearer error="invalid_token")";
  const std::vector<Case> cases = {
      {"no header", "box-1", {}, 401, "Bearer"},
      {"no header, stored id", "box-1", {{"X-Request-Id", "kept"}}, 401, "Bearer"},
      {"wrong token", "box-1", bearer("secret-cj"), 401, invalid},
      {"the hash is not the token", "box-1", bearer(kCiHash), 401, invalid},
      {"basic scheme", "box-1", {{"Authorization", "Basic c2VjcmV0LWNp"}}, 401, invalid},
      {"no scheme", "box-1", {{"Authorization", "secret-ci"}}, 401, invalid},
      {"empty header", "box-1", {{"Authorization", ""}}, 401, invalid},
      {"bad token characters", "box-1", bearer("secret\"ci"), 401, invalid},
      {"wrong token, stored id", "box-1", {{"Authorization", "Bearer nope"}, {"X-Request-Id", "kept"}}, 401, invalid},
      {"outside scope", "other-1", bearer("secret-ci"), 403, ""},
      {"outside scope, stored id", "other-1", {{"Authorization", "Bearer secret-ci"}, {"X-Request-Id", "kept"}}, 403, ""},
      {"prefix is not a match", "box", bearer("secret-ci"), 403, ""},
      {"exact id only", "lab-70", bearer("secret-ci"), 403, ""},
  };
  auto c = client(gw);
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.label);
    HttpResult r = post(*c, command_path(tc.box), kPing, tc.headers);
    ASSERT_EQ(r.status, tc.status) << r.body << r.error;
    EXPECT_EQ(r.error_code(), tc.status == 401 ? "unauthorized" : "forbidden") << r.body;
    EXPECT_EQ(r.header("WWW-Authenticate"), tc.www_authenticate);
    EXPECT_EQ(r.json().value("box_id", ""), tc.box) << r.body;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << "no stored reply, no token echoed: " << r.body;
  }

  // A command that is let through, sent last: once the device has it, the
  // observer and MONITOR have seen everything the refused ones caused.
  HttpResult ok = post(*c, command_path("zz-sentinel"), kPing, bearer("secret-ops"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  const std::string sentinel = "dev/zz-sentinel/";
  ASSERT_TRUE(monitor.wait_for("\"dev/zz-sentinel/response/", 5s));
  ASSERT_TRUE(test::eventually([&] { return watcher.count() >= 2; }, 5s));  // command + reply
  for (const auto& m : watcher.messages()) EXPECT_EQ(m.topic.rfind(sentinel, 0), 0u) << m.topic;
  for (const char* command : {"subscribe", "get", "publish", "set"}) {
    for (const auto& line : monitor.commands(command)) {
      EXPECT_NE(line.find("\"" + sentinel), std::string::npos) << line;
    }
  }

  // Refusals by token name; no secret and no hash in the metrics.
  HttpResult metrics = get(gw, "/metrics");
  EXPECT_EQ(metric(metrics.body, R"(boxgate_auth_failures_total{status="401",reason="missing_token"})"), 2);
  EXPECT_EQ(metric(metrics.body, R"(boxgate_auth_failures_total{status="401",reason="invalid_token"})"), 7);
  EXPECT_EQ(metric(metrics.body, R"(boxgate_auth_failures_total{status="403",reason="forbidden",token="ci"})"), 4);
  EXPECT_EQ(metric(metrics.body, R"(boxgate_auth_failures_total{status="403",reason="forbidden",token="ops"})"), 0);
  EXPECT_EQ(metric(metrics.body, R"(boxgate_auth_allowed_total{token="ops"})"), 1);
  EXPECT_EQ(metrics.body.find("secret"), std::string::npos);
  EXPECT_EQ(metrics.body.find(kCiHash), std::string::npos);

  // Nor in the log: names and scopes only.
  std::string log = stack->gateway().log();
  EXPECT_TRUE(stack->gateway().wait_for_log("API token 'ci' may command box-*|lab-7", 0ms)) << log;
  EXPECT_EQ(log.find("secret-"), std::string::npos);
  EXPECT_EQ(log.find(kCiHash), std::string::npos);
}

TEST_F(AuthTest, ValidTokensCommandTheBoxesOfTheirScope) {
  int gw = stack->add_gateway({"--api-tokens", kTokens});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  for (const auto& [token, box] : std::vector<std::pair<std::string, std::string>>{
           {"secret-ci", "box-3"}, {"secret-ci", "lab-7"}, {"secret-ops", "anything-else"}}) {
    HttpResult r = post(*c, command_path(box), kPing, {{"Authorization", "bEaReR " + token}});
    EXPECT_EQ(r.status, 200) << box << ": " << r.body;
  }
  EXPECT_EQ(metric(gw, R"(boxgate_auth_allowed_total{token="ci"})"), 2);
  // The ops endpoints stay open on the API port (no token: load balancers
  // and Prometheus carry none).
  EXPECT_EQ(get(gw, "/readyz").status, 200);
  EXPECT_EQ(get(gw, "/metrics").status, 200);
}

TEST_F(AuthTest, TokenFileWorksAndAWritableOneIsWarnedAbout) {
  std::string path = stack->tmp().write(
      "tokens.json", R"([{"name":"ci","sha256":")" + kCiHash + R"(","scopes":["box-1"]}])");
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  int gw = stack->add_gateway({"--api-tokens", path});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  EXPECT_EQ(post(*c, command_path("box-1"), kPing, bearer("secret-ci")).status, 200);
  EXPECT_EQ(post(*c, command_path("box-2"), kPing, bearer("secret-ci")).status, 403);
  EXPECT_TRUE(stack->gateway().wait_for_log("is writable by group or others", 0ms)) << stack->gateway().log_tail();
}

TEST_F(AuthTest, NoTokensKeepsTheApiOpenWithAWarning) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto c = client(gw);
  EXPECT_EQ(post(*c, command_path("box-1"), kPing).status, 200);
  EXPECT_TRUE(stack->gateway().wait_for_log("no api_tokens configured: anyone who reaches", 0ms))
      << stack->gateway().log_tail();
  HttpResult metrics = get(gw, "/metrics");
  EXPECT_EQ(metrics.body.find("boxgate_auth"), std::string::npos);
}

TEST(AuthConfigTest, BadTokenConfigExitsTwoNamingTheKey) {
  test::TempDir tmp("auth-config");
  for (const std::string& bad : {std::string("ci:abc:*"), "ci:" + kCiHash + ":box/1", tmp.file("missing.json")}) {
    Process p("gateway-bad-tokens", {test::gateway_binary(), "--api-tokens", bad}, tmp.path());
    EXPECT_EQ(p.wait_exit(10s), 2) << bad;
    EXPECT_NE(p.log().find("configuration error: api_tokens:"), std::string::npos) << p.log();
    EXPECT_EQ(p.log().find(kCiHash), std::string::npos) << p.log();
  }
}

TEST(AuthConfigTest, HashTokenPrintsTheHashOfStdin) {
  test::TempDir tmp("hash-token");
  const std::string bin = test::gateway_binary();
  for (const std::string& form : {std::string("hash-token"), std::string("--hash-token")}) {
    Process p("hash-" + form, {"sh", "-c", "printf 'secret-ci\\n' | '" + bin + "' " + form}, tmp.path());
    EXPECT_EQ(p.wait_exit(10s), 0) << p.log();
    EXPECT_EQ(p.log(), kCiHash + "\n");
  }
  Process empty("hash-empty", {"sh", "-c", "'" + bin + "' hash-token </dev/null"}, tmp.path());
  EXPECT_EQ(empty.wait_exit(10s), 2);
  EXPECT_NE(empty.log().find("no token on stdin"), std::string::npos) << empty.log();
}

// A caller without a valid token costs no body: the 401 comes as soon as the
// headers are in, and the connection closes without reading the body (old
// gateways waited for all of it, up to twice max_body_bytes).
TEST_F(AuthTest, A401ComesBeforeTheBodyIsRead) {
  int gw = stack->add_gateway({"--api-tokens", kTokens});
  for (const std::string& authorization : {std::string(), std::string("Authorization: Bearer wrong\r\n")}) {
    SCOPED_TRACE(authorization.empty() ? "no token" : "a wrong token");
    faults::RawConnection conn(gw);
    ASSERT_TRUE(conn.send("POST /v1/devices/box-1/commands HTTP/1.1\r\nHost: gw\r\n" + authorization +
                          "Content-Type: application/json\r\nContent-Length: 20000\r\n\r\n{\"method\":"));
    EXPECT_TRUE(test::eventually([&] { return conn.closed_by_peer(20ms); }, 3s, 0ms)) << conn.received();
    const std::string& bytes = conn.received();
    EXPECT_EQ(bytes.rfind("HTTP/1.1 401 ", 0), 0u) << bytes;
    EXPECT_NE(bytes.find("WWW-Authenticate: Bearer"), std::string::npos) << bytes;
    EXPECT_NE(bytes.find(R"("error":"unauthorized")"), std::string::npos) << bytes;
  }
  // A valid token's body is read as ever.
  auto c = client(gw);
  HttpResult ok = post(*c, "/v1/devices/box-1/commands?timeout_ms=200", R"({"method":"m"})", bearer("secret-ci"));
  EXPECT_EQ(ok.status, 504) << ok.body;
}

}  // namespace
}  // namespace boxgate::itest
