// A Redis that accepts the TCP connection but cannot serve (here it asks for a
// password the gateway does not have, so PING answers NOAUTH) must not count
// as up: readiness stays 503 and commands get 503 redis_unavailable.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using namespace std::chrono_literals;

TEST(RedisHandshakeTest, RedisThatAnswersPingWithAnErrorIsNotUp) {
  test::TempDir tmp("redis-noauth");
  int redis_port = test::free_port();
  // Started by hand: the RedisServer fixture waits for a PONG it would never get.
  test::Process redis("redis-noauth",
                      {"redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", tmp.path(), "--requirepass", "not-the-gateways"},
                      tmp.path());
  ASSERT_TRUE(test::wait_for_port(redis_port, 10s)) << redis.log();
  test::Mosquitto mqtt(tmp);
  int port = test::free_port();
  Process gw = test::start_gateway(tmp, port, redis_port, mqtt.port());

  ASSERT_TRUE(gw.wait_for_log("Redis answered PING with NOAUTH", 10s)) << gw.log_tail(20);
  HttpResult ready = get(port, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.json().value("redis", ""), "down") << ready.body;
  auto c = client(port);
  HttpResult r = post(*c, command_path("box-1"), R"({"method":"ping"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.error_code(), "redis_unavailable") << r.body;
  EXPECT_EQ(gw.stop(), 0) << gw.log_tail(20);
}

}  // namespace
}  // namespace boxgate::itest
