// The two ops layouts (docs/security.md): by default the
// gateway serves /healthz, /readyz and /metrics on its API port; with
// ops_port set they move to their own listener (ops_host, empty:
// 127.0.0.1) and the API port answers them 404, so the API can face callers
// while only the internal network reaches the ops endpoints.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {


TEST(OpsListenerTest, OpsEndpointsMoveToTheirOwnListener) {
  test::TempDir tmp("ops-listener");
  test::RedisServer redis(tmp);
  test::Mosquitto mqtt(tmp);
  int api = test::free_port();
  int ops = test::free_port();
  Process gw = test::start_gateway(tmp, api, redis.port(), mqtt.port(),
                                   {"--ops-host", "127.0.0.1", "--ops-port", std::to_string(ops), "--api-tokens",
                                    "ci:" + kCiHash + ":*"},
                                   {}, ops);
  ASSERT_TRUE(test::wait_ready(ops)) << gw.log_tail();
  EXPECT_TRUE(gw.wait_for_log("ops endpoints on 127.0.0.1:" + std::to_string(ops), 0ms)) << gw.log_tail();

  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(get(ops, path).status, 200);  // no token needed
    EXPECT_EQ(get(api, path).status, 404);
  }
  EXPECT_NE(get(ops, "/metrics").body.find("boxgate_auth_failures_total"), std::string::npos);
  // The API is on its own port, and only there.
  auto c = client(api);
  EXPECT_EQ(post(*c, command_path("box-1"), R"({"method":"m"})").error_code(), "unauthorized");
  auto o = client(ops);
  EXPECT_EQ(post(*o, command_path("box-1"), R"({"method":"m"})").status, 404);
  EXPECT_EQ(gw.stop(SIGTERM, 10s), 0) << gw.log_tail();
}

TEST(OpsListenerTest, OpsHostWithoutOpsPortIsAConfigError) {
  test::TempDir tmp("ops-config");
  Process p("gateway-ops-config", {test::gateway_binary(), "--ops-host", "127.0.0.1"}, tmp.path());
  EXPECT_EQ(p.wait_exit(10s), 2);
  EXPECT_NE(p.log().find("configuration error: ops_port:"), std::string::npos) << p.log();
}

}  // namespace
}  // namespace boxgate::itest
