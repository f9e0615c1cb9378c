// The daemons on the hardened broker: the real
// boxgate-gateway and boxgate-bridge connect over TLS as their service users
// (config/mosquitto.acl: gateway@boxgate may only publish commands,
// bridge@boxgate only receive replies), a device logged in as its box id
// answers, and a command makes the whole round trip. A broker listener with
// require_certificate takes the gateway only with its client certificate
// (plain or encrypted key). A wrong CA or a wrong password keeps a daemon
// not ready with the reason on /readyz ("mqtt_error") and one warning in its
// log, however often it retries; no password or passphrase is ever logged.
//
// The broker is tests/support/secure_mosquitto.hpp: the shipped
// config/mosquitto-secure.conf and config/mosquitto.acl, certificates made
// at test time with openssl.

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::MqttProbeOptions;
using test::SecureMosquitto;
using test::TestPki;

const std::string kGatewayPassword = "pw-gateway-7f3a";
const std::string kBridgePassword = "pw-bridge-91c2";
const std::string kBox1Password = "pw-box-1-5d0e";
const std::string kBox2Password = "pw-box-2-c4b8";
const std::string kWrongPassword = "pw-wrong-2e6f";

// boxgate::mqtt::Client::kClosedDuringHandshake (the tests link no daemon code).
std::string mqtt_closed_during_handshake() {
  return "tls: the broker closed the connection during the handshake or before CONNACK";
}

// Lines of `log` that contain every one of `needles`.
std::size_t count_lines(const std::string& log, std::initializer_list<std::string> needles) {
  std::istringstream in(log);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& needle : needles) all = all && line.find(needle) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

class MqttSecureTest : public StackTest {
 protected:
  MqttSecureTest()
      : StackTest(StackOptions{.tag = "mqtt-secure",
                               .mqtt_users = {{"box-1", kBox1Password},
                                              {"box-2", kBox2Password},
                                              {SecureMosquitto::kGatewayUser, kGatewayPassword},
                                              {SecureMosquitto::kBridgeUser, kBridgePassword}}}) {}
  void TearDown() override {
    if (stack) {
      stack->stop_daemons_and_check();
      // Secrets never reach a log, at any level (the daemons log at debug here).
      for (const Process* p : stack->daemons()) {
        const std::string log = p->log();
        for (const auto& secret : {kGatewayPassword, kBridgePassword, kBox1Password, kBox2Password, kWrongPassword,
                                   std::string(TestPki::kClientKeyPassphrase)}) {
          EXPECT_EQ(log.find(secret), std::string::npos) << p->name() << " logged a secret";
        }
      }
    }
    StackTest::TearDown();
  }
  SecureMosquitto& broker() { return stack->secure_mqtt(); }

  // The flags of a daemon on `uri` as `user`; the password goes through the
  // environment, as docs/security.md recommends (flags show in ps).
  std::vector<std::string> tls_flags(const std::string& uri, const std::string& user, const std::string& ca) {
    return {"--mqtt-uri", uri, "--mqtt-ca-file", ca, "--mqtt-username", user, "--mqtt-backoff-max-ms", "100"};
  }
  int add_gateway(const std::string& password, std::vector<std::string> flags, std::vector<std::string> env = {}) {
    env.push_back("BOXGATE_MQTT_PASSWORD=" + password);
    return stack->add_gateway(std::move(flags), /*wait_ready=*/false, std::move(env));
  }
  int add_bridge(const std::string& password, std::vector<std::string> flags) {
    return stack->add_bridge(std::move(flags), /*wait_ready=*/false, {"BOXGATE_MQTT_PASSWORD=" + password});
  }
  int add_tls_gateway(const std::string& ca, const std::string& password = kGatewayPassword) {
    return add_gateway(password, tls_flags(broker().tls_uri(), SecureMosquitto::kGatewayUser, ca));
  }
  int add_tls_bridge(const std::string& ca, const std::string& password = kBridgePassword) {
    auto flags = tls_flags(broker().tls_uri(), SecureMosquitto::kBridgeUser, ca);
    flags.insert(flags.end(), {"--share-group", "bridges"});  // as deployed with several bridges
    return add_bridge(password, std::move(flags));
  }

  // /readyz once it names an MQTT error (10 s), else its last answer.
  static HttpResult readyz_with_error(int port) {
    HttpResult r;
    test::eventually(
        [&] {
          r = get(port, "/readyz");
          return r.json().contains("mqtt_error");
        },
        10s, 50ms);
    return r;
  }

  // Waits until the daemon has retried at least `retries` times after its
  // first failure, then checks that the failure was logged as a warning once.
  static void expect_logged_once(Process& daemon, const std::string& reason, std::size_t retries = 3) {
    // The level and logger as the log line shows them ("<time> warning [mqtt] ...").
    EXPECT_TRUE(test::eventually(
        [&] { return count_lines(daemon.log(), {" debug [mqtt] cannot connect to", reason}) >= retries; }, 10s, 50ms))
        << daemon.log_tail();
    const std::string log = daemon.log();
    EXPECT_EQ(count_lines(log, {" warning [mqtt] cannot connect to", reason}), 1u) << daemon.log_tail();
    EXPECT_EQ(count_lines(log, {" warning [mqtt] libmosquitto"}), 0u) << "library lines are debug only:\n"
                                                                      << daemon.log_tail();
    EXPECT_EQ(count_lines(log, {" error [mqtt]"}), 0u) << daemon.log_tail();
  }
};

TEST_F(MqttSecureTest, GatewayBridgeAndDevicesMakeTheRoundTripOverTlsAsTheirOwnUsers) {
  const std::string ca = broker().pki().ca_cert;
  int gw = add_tls_gateway(ca);
  int br = add_tls_bridge(ca);
  ASSERT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
  ASSERT_TRUE(test::wait_ready(br, 10s)) << get(br, "/readyz").body << "\n" << stack->bridge().log_tail();

  // box-1: a probe logged in as box-1 over TLS, on its own request topics only.
  MqttProbeOptions device;
  device.uri = broker().tls_uri();
  device.username = "box-1";
  device.password = kBox1Password;
  device.ca_file = ca;
  ProbeDevice box1(device, "dev/box-1/request/+", ProbeDevice::echo());
  // box-2: boxgate-devsim logged in as box-2 over mqtts://, its password from the environment.
  stack->add_devsim({"--mqtt-uri", "mqtts://127.0.0.1:" + std::to_string(broker().tls_port()), "--mqtt-ca-file", ca,
                     "--mqtt-username", "box-2", "--box-list", "box-2"},
                    {"BOXGATE_MQTT_PASSWORD=" + kBox2Password});

  auto c = client(gw);
  HttpResult r1 = post(*c, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "tls-round-trip-1"}});
  EXPECT_EQ(r1.status, 200) << r1.body << r1.error << "\n" << stack->gateway().log_tail() << stack->bridge().log_tail();
  EXPECT_EQ(r1.body, R"({"id":"tls-round-trip-1","result":{"ok":true}})");
  HttpResult r2 = post(*c, command_path("box-2", "timeout_ms=5000"), kPing, {{"X-Request-Id", "tls-round-trip-2"}});
  EXPECT_EQ(r2.status, 200) << r2.body << r2.error << "\n" << stack->devsim().log_tail();
  EXPECT_EQ(r2.json().value("id", ""), "tls-round-trip-2") << r2.body;
  EXPECT_EQ(box1.commands().size(), 1u) << "box-1 received only its own command";
  EXPECT_EQ(get(gw, "/readyz").body, R"({"mqtt":"up","redis":"up","status":"ready"})");
}

// require_certificate: with the password alone the broker ends the handshake;
// with the client certificate (its key plain, or encrypted and unlocked by
// mqtt_key_password) the gateway connects. A wrong passphrase fails on
// loading the key, and says so.
TEST_F(MqttSecureTest, ClientCertificateListenerTakesOnlyAGatewayWithItsCertificate) {
  const TestPki& pki = broker().pki();
  auto flags = [&](std::vector<std::string> more) {
    auto f = tls_flags(broker().cert_uri(), SecureMosquitto::kGatewayUser, pki.ca_cert);
    f.insert(f.end(), more.begin(), more.end());
    return f;
  };
  const std::vector<std::string> plain_key{"--mqtt-cert-file", pki.client_cert, "--mqtt-key-file", pki.client_key};
  const std::vector<std::string> encrypted_key{"--mqtt-cert-file", pki.client_cert, "--mqtt-key-file",
                                               pki.client_key_encrypted};
  int with_cert = add_gateway(kGatewayPassword, flags(plain_key));
  // The passphrase in the environment, as a secret should be.
  int encrypted = add_gateway(kGatewayPassword, flags(encrypted_key),
                              {"BOXGATE_MQTT_KEY_PASSWORD=" + std::string(TestPki::kClientKeyPassphrase)});
  int without_cert = add_gateway(kGatewayPassword, flags({}));
  int wrong_passphrase =
      add_gateway(kGatewayPassword, flags(encrypted_key), {"BOXGATE_MQTT_KEY_PASSWORD=" + kWrongPassword});

  EXPECT_TRUE(test::wait_ready(with_cert, 10s)) << get(with_cert, "/readyz").body << stack->gateway(0).log_tail();
  EXPECT_TRUE(test::wait_ready(encrypted, 10s)) << get(encrypted, "/readyz").body << stack->gateway(1).log_tail();

  // TLS 1.3: the broker checks the certificate after the client's side of the
  // handshake, so its alert is read on some attempts and lost to the reset on
  // others (then the reason is vaguer); once read, it is what /readyz says.
  const std::string required = "tls: tlsv13 alert certificate required";
  HttpResult refused;
  std::set<std::string> seen;
  EXPECT_TRUE(test::eventually(
      [&] {
        refused = get(without_cert, "/readyz");
        std::string error = refused.json().value("mqtt_error", "");
        if (!error.empty()) seen.insert(error);
        return error == required;
      },
      10s, 20ms))
      << refused.body << "\n" << stack->gateway(2).log_tail();
  for (const auto& error : seen) {
    EXPECT_TRUE(error == required || error == mqtt_closed_during_handshake()) << error;
  }
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.json().value("mqtt", ""), "down") << refused.body;
  expect_logged_once(stack->gateway(2), required);
  EXPECT_EQ(get(without_cert, "/readyz").json().value("mqtt_error", ""), required) << "a vaguer retry keeps it";

  HttpResult bad_key = readyz_with_error(wrong_passphrase);
  EXPECT_EQ(bad_key.status, 503) << bad_key.body;
  EXPECT_EQ(bad_key.json().value("mqtt_error", "").rfind("tls: unable to load client key file", 0), 0u)
      << bad_key.body;
  expect_logged_once(stack->gateway(3), "unable to load client key file");
}

TEST_F(MqttSecureTest, WrongCaKeepsGatewayAndBridgeNotReadyAndReadyzSaysWhy) {
  int gw = add_tls_gateway(broker().pki().wrong_ca_cert);
  int br = add_tls_bridge(broker().pki().wrong_ca_cert);
  for (int port : {gw, br}) {
    HttpResult r = readyz_with_error(port);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json().value("status", ""), "not_ready") << r.body;
    EXPECT_EQ(r.json().value("mqtt", ""), "down") << r.body;
    EXPECT_EQ(r.json().value("redis", ""), "up") << r.body;
    EXPECT_EQ(r.json().value("mqtt_error", ""), "tls: certificate verify failed") << r.body;
  }
  for (Process* daemon : stack->daemons()) expect_logged_once(*daemon, "tls: certificate verify failed");
}

// mosquitto answers a wrong password with CONNACK "not authorized" (0x87 in
// v5, 5 in 3.1.1): the same words either way.
TEST_F(MqttSecureTest, WrongPasswordKeepsGatewayAndBridgeNotReadyAndReadyzSaysWhy) {
  const std::string ca = broker().pki().ca_cert;
  int gw = add_tls_gateway(ca, kWrongPassword);
  auto flags = tls_flags(broker().tls_uri(), SecureMosquitto::kBridgeUser, ca);
  flags.insert(flags.end(), {"--mqtt-version", "3"});
  int br = add_bridge(kWrongPassword, std::move(flags));
  for (int port : {gw, br}) {
    HttpResult r = readyz_with_error(port);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json().value("mqtt", ""), "down") << r.body;
    EXPECT_EQ(r.json().value("mqtt_error", ""), "refused: not authorized") << r.body;
  }
  for (Process* daemon : stack->daemons()) expect_logged_once(*daemon, "refused: not authorized");
}

}  // namespace
}  // namespace boxgate::itest
