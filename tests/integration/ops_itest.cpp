// Operations: health/readiness/metrics endpoints of both daemons, draining on
// SIGTERM, and configuration errors and precedence.

#include <gtest/gtest.h>

#include <future>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {


class OpsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
};

TEST_F(OpsTest, HealthReadinessAndMetricsOfGatewayAndBridge) {
  stack = std::make_unique<Stack>("ops");
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  stack->add_devsim({"--box-list", "box-1"});

  for (int port : {gw, br}) {
    SCOPED_TRACE(port == gw ? "gateway" : "bridge");
    HttpResult health = get(port, "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.json(), nlohmann::json::parse(R"({"status":"ok"})")) << health.body;
    HttpResult ready = get(port, "/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(ready.json(), nlohmann::json::parse(R"({"status":"ready","redis":"up","mqtt":"up"})")) << ready.body;
  }

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), kPing);
  ASSERT_EQ(r.status, 200) << r.body << r.error;

  HttpResult m = get(gw, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u) << m.header("Content-Type");
  EXPECT_EQ(metric(m.body, R"(boxgate_commands_total{outcome="ok"})"), 1.0) << m.body;
  EXPECT_EQ(metric(m.body, R"(boxgate_commands_total{outcome="device_timeout"})"), 0.0) << m.body;
  EXPECT_EQ(metric(m.body, "boxgate_command_duration_seconds_count"), 1.0) << m.body;
  EXPECT_EQ(metric(m.body, R"(boxgate_command_duration_seconds_bucket{le="+Inf"})"), 1.0) << m.body;
  EXPECT_EQ(metric(m.body, "boxgate_commands_pending"), 0.0) << m.body;
  EXPECT_EQ(metric(m.body, R"(boxgate_dependency_up{dependency="redis"})"), 1.0) << m.body;
  EXPECT_EQ(metric(m.body, R"(boxgate_dependency_up{dependency="mqtt"})"), 1.0) << m.body;
  EXPECT_TRUE(metric(m.body, R"(boxgate_reconnects_total{dependency="redis"})").has_value()) << m.body;
  EXPECT_NE(m.body.find("# TYPE boxgate_commands_total counter"), std::string::npos);

  // The bridge counts the reply it forwarded (it may still be updating).
  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_forwarded_total") == 1.0; }, 2s));
  HttpResult bm = get(br, "/metrics");
  ASSERT_EQ(bm.status, 200);
  EXPECT_EQ(bm.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_EQ(metric(bm.body, "boxgate_replies_received_total"), 1.0) << bm.body;
  EXPECT_EQ(metric(bm.body, R"(boxgate_replies_dropped_total{reason="invalid_topic"})"), 0.0) << bm.body;
  EXPECT_EQ(metric(bm.body, R"(boxgate_dependency_up{dependency="redis"})"), 1.0) << bm.body;
  EXPECT_EQ(metric(bm.body, R"(boxgate_dependency_up{dependency="mqtt"})"), 1.0) << bm.body;

  // Ops endpoints answer GET only.
  EXPECT_EQ(post(*client(gw), "/healthz", "").status, 405);
}

TEST_F(OpsTest, SigtermFinishesTheCommandInFlightRefusesNewOnesAndExits0) {
  stack = std::make_unique<Stack>("drain");
  int gw = stack->add_gateway();
  stack->add_bridge();
  stack->add_devsim({"--box-list", "box-1", "--delay-ms", "1000"});

  auto in_flight = std::async(std::launch::async, [gw] {
    auto c = client(gw);
    return post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "in-flight"}});
  });
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_commands_pending") == 1.0; }, 2s));
  const auto term_at = std::chrono::steady_clock::now();
  stack->gateway().signal(SIGTERM);

  // At once: /readyz says draining ...
  HttpResult ready;
  EXPECT_TRUE(test::eventually(
      [&] {
        ready = get(gw, "/readyz");
        return ready.status == 503;
      },
      300ms, 5ms));
  EXPECT_EQ(ready.json().value("status", ""), "draining") << ready.body;
  // ... and a new command is refused, while the first is still waiting.
  HttpResult refused = post(*client(gw), command_path("box-1"), kPing, {{"X-Request-Id", "too-late"}});
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.error_code(), "shutting_down") << refused.body;
  EXPECT_FALSE(refused.header("Retry-After").empty());
  EXPECT_EQ(refused.header("X-Request-Id"), "too-late");
  EXPECT_EQ(in_flight.wait_for(0ms), std::future_status::timeout) << "the in-flight call ended before its reply";

  HttpResult first = in_flight.get();
  EXPECT_EQ(first.status, 200) << first.body << first.error << "\n" << stack->logs();
  EXPECT_EQ(first.json().value("id", ""), "in-flight") << first.body;

  auto status = stack->gateway().wait_exit(5s);
  ASSERT_TRUE(status.has_value()) << "gateway still running after the drain\n" << stack->gateway().log_tail();
  EXPECT_EQ(*status, 0) << stack->gateway().log_tail();
  std::cerr << "gateway exited "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - term_at).count()
            << " ms after SIGTERM\n";
  EXPECT_TRUE(stack->gateway().sanitizer_report().empty()) << stack->gateway().sanitizer_report();
}

// Runs a daemon that is expected to exit by itself; returns (status, output).
std::pair<std::optional<int>, std::string> run_to_exit(const test::TempDir& tmp, const std::string& name,
                                                       std::vector<std::string> argv,
                                                       std::vector<std::string> env = {}) {
  Process p(name, std::move(argv), tmp.path(), std::move(env));
  auto status = p.wait_exit(10s);
  return {status, p.log()};
}

TEST_F(OpsTest, BadConfigurationExits2NamingTheKeyAndHelpVersionExit0) {
  test::TempDir tmp("config");
  for (const std::string& binary : {test::gateway_binary(), test::bridge_binary()}) {
    SCOPED_TRACE(binary);
    auto [status, out] = run_to_exit(tmp, "bad-port", {binary, "--http-port", "99999"});
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("http_port"), std::string::npos) << out;

    std::tie(status, out) = run_to_exit(tmp, "bad-env", {binary}, {"BOXGATE_MQTT_VERSION=4"});
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("mqtt_version"), std::string::npos) << out;

    std::string file = tmp.write("bad.json", R"({"redis_port": "abc"})");
    std::tie(status, out) = run_to_exit(tmp, "bad-file", {binary, "--config", file});
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("redis_port"), std::string::npos) << out;

    std::tie(status, out) = run_to_exit(tmp, "help", {binary, "--help"});
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("--http-port"), std::string::npos) << out;

    std::tie(status, out) = run_to_exit(tmp, "version", {binary, "--version"});
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("0."), std::string::npos) << out;
  }
  auto [status, out] = run_to_exit(tmp, "gw-max-body", {test::gateway_binary(), "--max-body-bytes", "-5"});
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("max_body_bytes"), std::string::npos) << out;
}

TEST_F(OpsTest, FlagOverridesEnvironmentOverridesConfigFile) {
  stack = std::make_unique<Stack>("prec");
  const int file_port = test::free_port(), env_port = test::free_port(), flag_port = test::free_port();
  const std::string common_file = R"({"http_host":"127.0.0.1","redis_port":)" + std::to_string(stack->redis().port()) +
                                  R"(,"mqtt_uri":")" + stack->mqtt().uri() + R"(","http_port":)" +
                                  std::to_string(file_port) + "}";
  std::string file = stack->tmp().write("gw.json", common_file);
  struct Case {
    std::vector<std::string> extra_argv;
    std::vector<std::string> env;
    int expected_port;
  };
  const std::vector<Case> cases{
      {{}, {}, file_port},
      {{}, {"BOXGATE_HTTP_PORT=" + std::to_string(env_port)}, env_port},
      {{"--http-port", std::to_string(flag_port)}, {"BOXGATE_HTTP_PORT=" + std::to_string(env_port)}, flag_port}};
  for (const auto& tc : cases) {
    std::vector<std::string> argv{test::gateway_binary(), "--config", file};
    argv.insert(argv.end(), tc.extra_argv.begin(), tc.extra_argv.end());
    Process gw("prec-" + std::to_string(tc.expected_port), argv, stack->tmp().path(), tc.env);
    EXPECT_TRUE(test::wait_ready(tc.expected_port, 10s)) << "not serving on " << tc.expected_port << "\n"
                                                         << gw.log_tail();
    EXPECT_EQ(gw.stop(), 0) << gw.log_tail();
  }
}

}  // namespace
}  // namespace boxgate::itest
