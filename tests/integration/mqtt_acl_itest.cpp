// The broker side of MQTT security on a real mosquitto
// started with the shipped config/mosquitto-secure.conf and
// config/mosquitto.acl (tests/support/secure_mosquitto.hpp): no anonymous
// client, no wrong password; a device reads only its own commands and
// answers only for itself; the gateway user only publishes commands and the
// bridge user only receives replies (also through $share); a user name with
// a wildcard gets nothing (CVE-2017-7650); the TLS listener is trusted only
// with the right CA.
//
// Ordering: mosquitto handles one message completely (queues it to every
// subscriber allowed to read it) before the next, and each client receives
// over one TCP stream in order. So once a client has the message published
// after a forbidden one, it would already have the forbidden one.

#include <gtest/gtest.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::MqttProbeOptions;
using test::SecureMosquitto;

class MqttAclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp = std::make_unique<test::TempDir>("mqtt-acl");
    broker = std::make_unique<SecureMosquitto>(
        *tmp, std::map<std::string, std::string>{{"box-1", "pw-box-1"},
                                                 {"box-2", "pw-box-2"},
                                                 {"+", "pw-plus"},
                                                 {SecureMosquitto::kGatewayUser, "pw-gateway"},
                                                 {SecureMosquitto::kBridgeUser, "pw-bridge"}});
  }

  // A probe on the clear-text listener (same users and ACL as the TLS one),
  // not yet waited for: several connect in parallel (mqtt_probe.hpp).
  std::unique_ptr<MqttProbe> probe(const std::string& user, bool wait = false) {
    MqttProbeOptions o;
    o.uri = broker->plain_uri();
    o.client_id = "acl-" + user + "-" + std::to_string(next_++);
    o.wait = wait;
    o.username = user;
    o.password = broker->password_of(user);
    return std::make_unique<MqttProbe>(o);
  }
  static void connect_all(std::initializer_list<MqttProbe*> probes) {
    for (auto* p : probes) p->wait_connected(10s);
  }
  static std::vector<std::string> topics(const MqttProbe& p) {
    std::vector<std::string> out;
    for (const auto& m : p.messages()) out.push_back(m.topic);
    return out;
  }

  std::unique_ptr<test::TempDir> tmp;
  std::unique_ptr<SecureMosquitto> broker;
  int next_ = 0;
};

constexpr int kNotAuthorized = 0x87;

TEST_F(MqttAclTest, ADeviceReadsOnlyItsOwnCommands) {
  auto box1 = probe("box-1");
  auto box2 = probe("box-2");
  auto plus = probe("+");
  auto gateway = probe(SecureMosquitto::kGatewayUser);
  connect_all({box1.get(), box2.get(), plus.get(), gateway.get()});
  // mosquitto 2.0 grants every SUBSCRIBE and filters each message on delivery.
  for (const char* filter : {"#", "dev/+/request/#", "dev/box-2/request/+"}) box1->subscribe(filter);
  box2->subscribe("dev/box-2/request/+");
  plus->subscribe("#");  // "+" as user name would make dev/%u/request/# match every box

  ASSERT_EQ(gateway->publish_reason("dev/box-2/request/r-for-2", R"({"id":"r-for-2"})"), 0);
  ASSERT_EQ(gateway->publish_reason("dev/box-1/request/r-for-1", R"({"id":"r-for-1"})"), 0);

  ASSERT_TRUE(box2->wait_for(1, 5s));
  EXPECT_EQ(topics(*box2), std::vector<std::string>{"dev/box-2/request/r-for-2"});
  ASSERT_TRUE(box1->wait_for(1, 5s));  // its own command, published second
  for (const auto& topic : topics(*box1)) EXPECT_EQ(topic, "dev/box-1/request/r-for-1");
  // Nothing is published that "+" may read, so there is no later message to
  // wait for: a bounded wait that must run out.
  EXPECT_FALSE(plus->wait_for(1, 500ms)) << topics(*plus).front();
}

TEST_F(MqttAclTest, ADeviceCannotAnswerOrCommandForAnotherBox) {
  auto box1 = probe("box-1");
  auto bridge = probe(SecureMosquitto::kBridgeUser);
  auto box2 = probe("box-2");
  connect_all({box1.get(), bridge.get(), box2.get()});
  // As the bridge subscribes with share_group "bridges".
  bridge->subscribe("$share/bridges/dev/+/response/+");
  bridge->subscribe("$share/bridges/dev/+/response");
  bridge->subscribe("$share/bridges/dev/+/event/+");
  bridge->subscribe("$share/bridges/dev/+/state");
  box2->subscribe("dev/box-2/request/+");

  // Forged: a reply for box-2's command, and commands to itself and to box-2.
  EXPECT_EQ(box1->publish_reason("dev/box-2/response/r-for-2", R"({"id":"r-for-2","result":"forged"})"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-2/response", R"({"id":"r-for-2","result":"forged"})"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-2/request/x", "{}"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-1/request/x", "{}"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("$SYS/forged", "{}"), kNotAuthorized);
  // Its own replies, both forms.
  EXPECT_EQ(box1->publish_reason("dev/box-1/response/r-for-1", R"({"id":"r-for-1"})"), 0);
  EXPECT_EQ(box1->publish_reason("dev/box-1/response", R"({"id":"r-for-1b"})"), 0);

  // Its own events and state, not another box's (data plane, docs/events.md).
  EXPECT_EQ(box1->publish_reason("dev/box-2/event/alarm", "forged"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-2/state", "forged"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-1/event/alarm", "{}"), 0);
  EXPECT_EQ(box1->publish_reason("dev/box-1/state", "{}"), 0);

  ASSERT_TRUE(bridge->wait_for(4, 5s));
  EXPECT_EQ(topics(*bridge), (std::vector<std::string>{"dev/box-1/response/r-for-1", "dev/box-1/response",
                                                       "dev/box-1/event/alarm", "dev/box-1/state"}));
  // box-2 got no command from box-1 (a later one from the gateway arrives alone).
  auto gateway = probe(SecureMosquitto::kGatewayUser, true);
  ASSERT_EQ(gateway->publish_reason("dev/box-2/request/real", "{}"), 0);
  ASSERT_TRUE(box2->wait_for(1, 5s));
  EXPECT_EQ(topics(*box2), std::vector<std::string>{"dev/box-2/request/real"});
}

TEST_F(MqttAclTest, ServiceUsersHoldOnlyTheirOwnRights) {
  auto gateway = probe(SecureMosquitto::kGatewayUser);
  auto bridge = probe(SecureMosquitto::kBridgeUser);
  auto box1 = probe("box-1");
  connect_all({gateway.get(), bridge.get(), box1.get()});
  gateway->subscribe("#");
  bridge->subscribe("#");
  box1->subscribe("dev/box-1/request/+");

  // The gateway publishes commands only; the bridge publishes nothing.
  EXPECT_EQ(gateway->publish_reason("dev/box-1/response/forged", "{}"), kNotAuthorized);
  EXPECT_EQ(gateway->publish_reason("other/topic", "{}"), kNotAuthorized);
  EXPECT_EQ(bridge->publish_reason("dev/box-1/request/forged", "{}"), kNotAuthorized);
  EXPECT_EQ(bridge->publish_reason("dev/box-1/response/forged", "{}"), kNotAuthorized);
  // Not even under its own name, which the device patterns would grant.
  EXPECT_EQ(bridge->publish_reason("dev/bridge@boxgate/response/x", "{}"), kNotAuthorized);
  EXPECT_EQ(gateway->publish_reason("dev/gateway@boxgate/response/x", "{}"), kNotAuthorized);

  // A command and its reply: the bridge receives the reply only; the
  // gateway, which reads nothing, neither.
  ASSERT_EQ(gateway->publish_reason("dev/box-1/request/r1", "{}"), 0);
  ASSERT_TRUE(box1->wait_for(1, 5s));
  EXPECT_EQ(topics(*box1), std::vector<std::string>{"dev/box-1/request/r1"});
  ASSERT_EQ(box1->publish_reason("dev/box-1/response/r1", "{}"), 0);
  ASSERT_TRUE(bridge->wait_for(1, 5s));
  EXPECT_EQ(topics(*bridge), std::vector<std::string>{"dev/box-1/response/r1"});
  EXPECT_FALSE(gateway->wait_for(1, 500ms)) << topics(*gateway).front();
}

TEST_F(MqttAclTest, ADevicePublishesOnlyItsOwnStatusAndTheBridgeReadsThem) {
  auto box1 = probe("box-1");
  auto box2 = probe("box-2");
  auto bridge = probe(SecureMosquitto::kBridgeUser);
  auto gateway = probe(SecureMosquitto::kGatewayUser);
  connect_all({box1.get(), box2.get(), bridge.get(), gateway.get()});
  bridge->subscribe("dev/+/status");  // never shared: it needs the retained ones
  gateway->subscribe("#");

  EXPECT_EQ(box1->publish_reason("dev/box-2/status", "offline"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-1/status/x", "online"), kNotAuthorized);
  EXPECT_EQ(gateway->publish_reason("dev/box-1/status", "offline"), kNotAuthorized);
  EXPECT_EQ(bridge->publish_reason("dev/box-1/status", "offline"), kNotAuthorized);
  EXPECT_EQ(box1->publish_reason("dev/box-1/status", "online"), 0);
  EXPECT_EQ(box2->publish_reason("dev/box-2/status", "online"), 0);

  ASSERT_TRUE(bridge->wait_for(2, 5s));
  EXPECT_EQ(topics(*bridge), (std::vector<std::string>{"dev/box-1/status", "dev/box-2/status"}));
  EXPECT_FALSE(gateway->wait_for(1, 300ms)) << topics(*gateway).front();
}

TEST_F(MqttAclTest, AnonymousClientsAndWrongPasswordsAreRefused) {
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"box-1", "wrong"}, {"box-1", ""}, {"nobody", "pw-box-1"}, {SecureMosquitto::kGatewayUser, "pw-bridge"}}) {
    SCOPED_TRACE("user '" + user + "'");
    MqttProbeOptions o;
    o.uri = broker->plain_uri();
    o.username = user;
    o.password = password;
    o.automatic_reconnect = false;
    EXPECT_THROW(MqttProbe{o}, std::runtime_error);
  }
  EXPECT_TRUE(broker->running());
}

TEST_F(MqttAclTest, TlsListenerIsTrustedOnlyWithTheRightCa) {
  MqttProbeOptions o;
  o.uri = broker->tls_uri();
  o.username = "box-1";
  o.password = broker->password_of("box-1");
  o.ca_file = broker->pki().ca_cert;
  o.automatic_reconnect = false;
  {
    MqttProbe device(o);  // the server certificate names 127.0.0.1
    device.subscribe("dev/box-1/request/+");
    EXPECT_EQ(device.publish_reason("dev/box-1/response/r", "{}"), 0);
    EXPECT_EQ(device.publish_reason("dev/box-2/response/r", "{}"), kNotAuthorized) << "the same ACL over TLS";
  }
  {
    MqttProbeOptions with_cert = o;  // a client certificate is accepted too
    with_cert.cert_file = broker->pki().client_cert;
    with_cert.key_file = broker->pki().client_key;
    EXPECT_NO_THROW(MqttProbe{with_cert});
  }
  MqttProbeOptions wrong_ca = o;
  wrong_ca.ca_file = broker->pki().wrong_ca_cert;
  EXPECT_THROW(MqttProbe{wrong_ca}, std::runtime_error);
  MqttProbeOptions wrong_password = o;
  wrong_password.password = "wrong";
  EXPECT_THROW(MqttProbe{wrong_password}, std::runtime_error);
  // TLS only on the TLS port: a clear-text client there is refused.
  MqttProbeOptions clear_on_tls = o;
  clear_on_tls.uri = "tcp://127.0.0.1:" + std::to_string(broker->tls_port());
  EXPECT_THROW(MqttProbe{clear_on_tls}, std::runtime_error);
  EXPECT_TRUE(broker->running());
}

}  // namespace
}  // namespace boxgate::itest
