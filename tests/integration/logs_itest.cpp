// Logs: JSON lines about a command carry its request_id
// and box_id as fields, one access-log line per call that access_log=false
// turns off, a level per component (log_levels), and a dependency that keeps
// refusing is logged once per change, not once per retry.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {


// Every line of a daemon's log that parses as a JSON object.
std::vector<nlohmann::json> json_lines(const Process& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in(p.log());
  std::string line;
  while (std::getline(in, line)) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_object()) out.push_back(std::move(doc));
  }
  return out;
}

std::size_t count_lines(const Process& p, const std::string& needle) {
  std::istringstream in(p.log());
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  return n;
}

class LogsTest : public StackTest {
 protected:
  LogsTest() : StackTest("logs") {}
};

TEST_F(LogsTest, JsonLinesAboutACommandCarryItsIdsAndEachCallHasAnAccessLine) {
  int gw = stack->add_gateway({"--log-json", "true", "--log-level", "info"});
  ProbeDevice device(stack->mqtt_port(), "dev/box-1/request/+", ProbeDevice::echo());
  stack->add_bridge();
  auto c = client(gw);
  HttpResult ok = post(*c, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "log-ok-1"}});
  ASSERT_EQ(ok.status, 200) << ok.body << stack->logs();
  // No device for box-2: a 504, and the gateway's own line about it.
  HttpResult late = post(*c, command_path("box-2", "timeout_ms=300"), kPing, {{"X-Request-Id", "log-late-1"}});
  ASSERT_EQ(late.status, 504) << late.body;
  HttpResult bad = post(*c, command_path("box-3", "timeout_ms=x"), kPing, {{"X-Request-Id", "log-bad-1"}});
  ASSERT_EQ(bad.status, 400) << bad.body;
  ASSERT_TRUE(stack->gateway().wait_for_log("log-bad-1", 5s)) << stack->gateway().log_tail();

  std::vector<nlohmann::json> lines = json_lines(stack->gateway());
  ASSERT_FALSE(lines.empty()) << stack->gateway().log_tail();
  std::map<std::string, nlohmann::json> access;  // request id -> its access line
  bool timeout_line = false;
  for (const auto& line : lines) {
    ASSERT_TRUE(line.contains("ts") && line.contains("level") && line.contains("component") && line.contains("msg"))
        << line.dump();
    std::string msg = line.value("msg", "");
    // Any line naming a command carries its ids as fields.
    for (const char* rid : {"log-ok-1", "log-late-1", "log-bad-1"}) {
      if (msg.find(rid) == std::string::npos) continue;
      EXPECT_EQ(line.value("request_id", ""), rid) << line.dump();
      EXPECT_TRUE(line.contains("box_id")) << line.dump();
    }
    if (msg.find("no reply within") != std::string::npos) {
      timeout_line = true;
      EXPECT_EQ(line.value("box_id", ""), "box-2") << line.dump();
    }
    if (line.value("component", "") == "access") access[line.value("request_id", "")] = line;
  }
  EXPECT_TRUE(timeout_line) << stack->gateway().log_tail();
  ASSERT_EQ(access.size(), 3u) << stack->gateway().log_tail();
  const auto& a_ok = access["log-ok-1"];
  EXPECT_EQ(a_ok.value("level", ""), "info");
  EXPECT_EQ(a_ok.value("method", ""), "POST");
  EXPECT_EQ(a_ok.value("endpoint", ""), "command");
  EXPECT_EQ(a_ok.value("box_id", ""), "box-1");
  EXPECT_EQ(a_ok.value("status", 0), 200);
  EXPECT_EQ(a_ok.value("outcome", ""), "ok");
  ASSERT_TRUE(a_ok.contains("duration_ms") && a_ok["duration_ms"].is_number_integer()) << a_ok.dump();
  EXPECT_LE(a_ok["duration_ms"].get<long long>(), ok.elapsed.count() + 1) << a_ok.dump();
  EXPECT_EQ(access["log-late-1"].value("status", 0), 504);
  EXPECT_EQ(access["log-late-1"].value("outcome", ""), "device_timeout");
  EXPECT_GE(access["log-late-1"].value("duration_ms", 0), 300);
  EXPECT_EQ(access["log-bad-1"].value("status", 0), 400);
  EXPECT_EQ(access["log-bad-1"].value("outcome", ""), "invalid_timeout");
  EXPECT_EQ(access["log-bad-1"].value("box_id", ""), "box-3");
  // Nothing the device sent is in the access line.
  EXPECT_EQ(a_ok.dump().find("result"), std::string::npos) << a_ok.dump();
}

TEST_F(LogsTest, PlainAccessLinesAndAccessLogOff) {
  int on = stack->add_gateway({"--log-level", "info"});
  int off = stack->add_gateway({"--log-level", "info", "--access-log", "false"});
  for (int port : {on, off}) {
    // One Redis: each gateway its own id, or the second would replay the first's 504.
    std::string id = port == on ? "plain-1" : "plain-2";
    auto c = client(port);
    HttpResult r = post(*c, command_path("box-9", "timeout_ms=100"), kPing, {{"X-Request-Id", id}});
    EXPECT_EQ(r.status, 504) << r.body;
    HttpResult s = get(*c, "/v1/devices/box-9/commands/" + id);
    EXPECT_EQ(s.status, 200) << s.body;
  }
  // The status read is a call of its own: its request id is the one the gateway made for it.
  ASSERT_TRUE(stack->gateway(0).wait_for_log("[access] GET status box box-9 request ", 5s))
      << stack->gateway(0).log_tail();
  EXPECT_EQ(count_lines(stack->gateway(0), ": 200 ok in "), 1u) << stack->gateway(0).log_tail();
  EXPECT_EQ(count_lines(stack->gateway(0), "[access] POST command box box-9 request plain-1: 504 device_timeout in "),
            1u)
      << stack->gateway(0).log_tail();
  // access_log=false: the gateway's other lines, none of the access log.
  EXPECT_TRUE(stack->gateway(1).wait_for_log("no reply within", 5s)) << stack->gateway(1).log_tail();
  EXPECT_EQ(count_lines(stack->gateway(1), "[access]"), 0u) << stack->gateway(1).log_tail();
}

TEST_F(LogsTest, LevelPerComponent) {
  // Everything at warn but the access log at info and redis at debug.
  int gw = stack->add_gateway({"--log-level", "warn", "--log-levels", "access=info,redis=debug"});
  auto c = client(gw);
  EXPECT_EQ(post(*c, command_path("box-1", "timeout_ms=50"), kPing).status, 504);
  ASSERT_TRUE(stack->gateway().wait_for_log("[access] POST command box box-1", 5s)) << stack->gateway().log_tail();
  const Process& p = stack->gateway();
  EXPECT_GE(count_lines(p, "info  [redis]"), 1u) << p.log_tail();    // "connected to ...": shown
  EXPECT_EQ(count_lines(p, "info  [gateway]"), 0u) << p.log_tail();  // "listening on ...": hidden
  EXPECT_GE(count_lines(p, "warning [gateway]"), 1u) << p.log_tail();  // "no api_tokens configured"
  EXPECT_EQ(count_lines(p, "info  [mqtt]"), 0u) << p.log_tail();

  // A bad value names the key and exits 2.
  Process bad("gateway-bad-levels", {test::gateway_binary(), "--log-levels", "http=loud"}, stack->tmp().path());
  EXPECT_EQ(bad.wait_exit(10s), 2);
  EXPECT_NE(bad.log().find("log_levels"), std::string::npos) << bad.log();
}

TEST_F(LogsTest, RedisRefusingAuthIsLoggedOncePerChangeNotPerRetry) {
  // requirepass after the stack started: the gateway's password is wrong.
  auto admin = stack->redis().client();
  ASSERT_EQ(admin.command({"CONFIG", "SET", "requirepass", "right-password"}).type, test::RespValue::Type::simple);
  int gw = stack->add_gateway({"--redis-password", "wrong-password", "--log-level", "info",
                               "--redis-backoff-max-ms", "100"},
                              false);
  Process& p = stack->gateway();
  ASSERT_TRUE(p.wait_for_log("refused AUTH", 5s)) << p.log_tail();
  // Retries every 50-100 ms: wait until Redis has refused dozens of AUTHs.
  auto failed_auths = [&] {
    std::string info = admin.command({"INFO", "commandstats"}).str;
    auto at = info.find("cmdstat_auth:");
    if (at == std::string::npos) return 0L;
    at = info.find("failed_calls=", at);
    return at == std::string::npos ? 0L : std::stol(info.substr(at + 13));
  };
  ASSERT_TRUE(test::eventually([&] { return failed_auths() >= 24; }, 10s)) << failed_auths() << " refusals";
  EXPECT_EQ(get(gw, "/readyz").status, 503);
  // One line per connection (command and subscriber), whatever the retries.
  std::size_t refused = count_lines(p, "refused AUTH");
  EXPECT_EQ(refused, 2u) << p.log_tail(60);
  EXPECT_EQ(count_lines(p, "connect timed out"), 0u) << p.log_tail(60);

  // The change: Redis accepts the gateway's password now.
  auto relogged = test::RedisClient(stack->redis().port(), 5s, {"", "right-password"});
  ASSERT_EQ(relogged.command({"CONFIG", "SET", "requirepass", "wrong-password"}).type,
            test::RespValue::Type::simple);
  ASSERT_TRUE(test::wait_ready(gw, 5s)) << p.log_tail(60);
  // "connected to ... (after 'Redis refused AUTH ...', repeated N more times)": the change, with the count.
  EXPECT_TRUE(p.wait_for_log("more times)", 2s)) << p.log_tail(60);
}

TEST_F(LogsTest, BrokerRefusingTheConnectionIsLoggedOncePerChange) {
  test::TempDir& tmp = stack->tmp();
  // A second broker that refuses everyone (no anonymous, no passwords).
  test::Mosquitto closed(tmp, 0, {"allow_anonymous false"});
  int gw = test::free_port();
  Process gateway = test::start_gateway(tmp, gw, stack->redis().port(), closed.port(),
                                        {"--log-level", "info", "--mqtt-backoff-max-ms", "100"});
  // "cannot connect to ...: refused: not authorized (retrying; logged again when the reason changes)"
  ASSERT_TRUE(gateway.wait_for_log("refused: not authorized", 5s)) << gateway.log_tail();
  // Retries every 50-100 ms: wait until the broker has refused a dozen of them.
  auto refusals = [&] {
    std::string log = closed.process().log();
    int n = 0;
    for (auto at = log.find("not authorised"); at != std::string::npos; at = log.find("not authorised", at + 1)) ++n;
    return n;
  };
  ASSERT_TRUE(test::eventually([&] { return refusals() >= 12; }, 10s)) << closed.process().log_tail();
  EXPECT_EQ(get(gw, "/readyz").status, 503);
  EXPECT_EQ(count_lines(gateway, "refused: not authorized"), 1u) << gateway.log_tail(60);
  EXPECT_EQ(count_lines(gateway, "cannot connect"), 1u) << gateway.log_tail(60);
  EXPECT_EQ(gateway.stop(), 0) << gateway.log_tail();
}

}  // namespace
}  // namespace boxgate::itest
