// parse_broker_uri: the forms mqtt_uri accepts.

#include "boxgate/mqtt/uri.hpp"

#include <gtest/gtest.h>

namespace boxgate::mqtt {
namespace {

TEST(MqttUri, PlainAndTlsWithTheirDefaultPorts) {
  auto plain = parse_broker_uri("tcp://broker.example:1884");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "broker.example");
  EXPECT_EQ(plain->port, 1884);
  EXPECT_FALSE(plain->tls);

  auto mqtt = parse_broker_uri("mqtt://127.0.0.1");
  ASSERT_TRUE(mqtt);
  EXPECT_EQ(mqtt->port, 1883);

  auto tls = parse_broker_uri("ssl://localhost");
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->host, "localhost");
  EXPECT_EQ(tls->port, 8883);
  EXPECT_TRUE(tls->tls);

  auto mqtts = parse_broker_uri("mqtts://127.0.0.1:9883");
  ASSERT_TRUE(mqtts);
  EXPECT_EQ(mqtts->host, "127.0.0.1");
  EXPECT_EQ(mqtts->port, 9883);
  EXPECT_TRUE(mqtts->tls);
}

TEST(MqttUri, Ipv6LiteralInBrackets) {
  auto v6 = parse_broker_uri("tcp://[::1]:2000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 2000);
  auto no_port = parse_broker_uri("ssl://[fe80::1]");
  ASSERT_TRUE(no_port);
  EXPECT_EQ(no_port->port, 8883);
}

TEST(MqttUri, RefusesWhatItCannotConnectTo) {
  for (const char* bad : {"", "http://host:1", "tcp://", "tcp://:1883", "tcp://host:", "tcp://host:0",
                          "tcp://host:65536", "tcp://host:12a", "tcp://[::1", "tcp://[::1]x", "tcp://::1:1883"}) {
    std::string why;
    EXPECT_FALSE(parse_broker_uri(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

}  // namespace
}  // namespace boxgate::mqtt
