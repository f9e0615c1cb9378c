#include "boxgate/ops/metrics.hpp"

#include <gtest/gtest.h>

#include "boxgate/ops/readiness.hpp"

using namespace boxgate::ops;

TEST(Metrics, RendersPrometheusTextWithOneHeaderPerFamily) {
  Metrics m;
  Readiness r(m);
  auto& redis = r.dependency("redis");
  r.dependency("mqtt").set_up(true);
  redis.count_reconnect();
  m.counter("x_total", "things", "kind=\"a\"").inc(3);
  auto& h = m.histogram("lat_seconds", "latency", {0.001, 0.01});
  h.observe_us(500);
  h.observe_us(5000);
  h.observe_us(50000);
  std::string text = m.render();
  EXPECT_NE(text.find("boxgate_dependency_up{dependency=\"redis\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("boxgate_dependency_up{dependency=\"mqtt\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("boxgate_reconnects_total{dependency=\"redis\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_total{kind=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3\n"), std::string::npos);
  // One TYPE line per family even when its series were registered apart.
  auto first = text.find("# TYPE boxgate_dependency_up gauge");
  EXPECT_EQ(text.find("# TYPE boxgate_dependency_up gauge", first + 1), std::string::npos);
}

TEST(Readiness, ReportsEachDependencyAndDraining) {
  Metrics m;
  Readiness r(m);
  auto& redis = r.dependency("redis");
  auto& sub = r.dependency("redis_subscriber");
  auto& mqtt = r.dependency("mqtt");
  EXPECT_EQ(r.report().first, 503);
  redis.set_up(true);
  mqtt.set_up(true);
  EXPECT_EQ(r.report().second, R"({"mqtt":"up","redis":"down","status":"not_ready"})");
  sub.set_up(true);
  EXPECT_EQ(r.report().first, 200);
  r.start_draining();
  EXPECT_EQ(r.report().first, 503);
  EXPECT_NE(r.report().second.find("\"draining\""), std::string::npos);
}

// /readyz says why a dependency is down (docs/contract.md, "Operations
// endpoints"): "<name>_error", only while it is not up, additive to the states.
TEST(Readiness, ReportsTheReasonOfADependencyThatIsDown) {
  Metrics m;
  Readiness r(m);
  auto& redis = r.dependency("redis");
  auto& sub = r.dependency("redis_subscriber");
  auto& mqtt = r.dependency("mqtt");
  redis.set_up(true);
  sub.set_up(true);
  EXPECT_EQ(r.report().second, R"({"mqtt":"down","redis":"up","status":"not_ready"})") << "no reason known yet";
  mqtt.set_down("tls: certificate verify failed");
  EXPECT_EQ(r.report(), std::make_pair(503, std::string(R"({"mqtt":"down","mqtt_error":"tls: certificate verify failed",)"
                                                        R"("redis":"up","status":"not_ready"})")));
  mqtt.set_up(false);  // down again, no new reason: the last one stands
  EXPECT_EQ(mqtt.reason(), "tls: certificate verify failed");
  mqtt.set_up(true);
  EXPECT_EQ(r.report().second, R"({"mqtt":"up","redis":"up","status":"ready"})");
  EXPECT_EQ(mqtt.reason(), "");
  // Split dependencies: the worst one's reason; a stalled one shows none.
  sub.set_down("AUTH refused");
  redis.set_stalled(true);
  EXPECT_EQ(r.report().second, R"({"mqtt":"up","redis":"down","redis_error":"AUTH refused","status":"not_ready"})");
  sub.set_up(true);
  EXPECT_EQ(r.report().second, R"({"mqtt":"up","redis":"stalled","status":"not_ready"})");
}
