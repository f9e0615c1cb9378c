// A device cannot disconnect the daemons from the hardened broker
// (docs/security.md, "Client ids"). mosquitto drops the older of two
// connections with one client id; with the shipped config a device's id is
// its user name (use_username_as_clientid on the devices' listener), and the
// daemons' listener takes only clients with a certificate, so a device that
// knows a daemon's id still cannot take it. The daemons' ids are random and
// no HTTP answer names them. Two gateways and a bridge share the service
// users, as replicas do.

#include <gtest/gtest.h>

#include <sstream>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::MqttProbeOptions;
using test::SecureMosquitto;

const std::string kTakeoverBoxPassword = "pw-takeover-box-1";
const std::string kTakeoverAttackerPassword = "pw-takeover-box-2";
const std::string kTakeoverGatewayPassword = "pw-takeover-gateway";
const std::string kTakeoverBridgePassword = "pw-takeover-bridge";

// The client ids the broker logged for `user` ("New client connected from
// <addr> as <id> (p5, c1, k10, u'<user>')."), in order.
std::vector<std::string> logged_client_ids(const std::string& log, const std::string& user) {
  std::vector<std::string> ids;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    auto as = line.find(" as ");
    if (line.find("New client connected") == std::string::npos || as == std::string::npos ||
        line.find("u'" + user + "'") == std::string::npos) {
      continue;
    }
    ids.push_back(line.substr(as + 4, line.find(" (", as) - as - 4));
  }
  return ids;
}

class MqttTakeoverTest : public StackTest {
 protected:
  MqttTakeoverTest()
      : StackTest(StackOptions{.tag = "mqtt-takeover",
                               .mqtt_users = {{"box-1", kTakeoverBoxPassword},
                                              {"box-2", kTakeoverAttackerPassword},
                                              {SecureMosquitto::kGatewayUser, kTakeoverGatewayPassword},
                                              {SecureMosquitto::kBridgeUser, kTakeoverBridgePassword}}}) {}
  SecureMosquitto& broker() { return stack->secure_mqtt(); }

  // A daemon as deployed: the daemons' listener, its client certificate, the
  // password through the environment; its client id left to the default.
  std::pair<std::vector<std::string>, std::vector<std::string>> daemon(const std::string& user,
                                                                       const std::string& password) {
    const test::TestPki& pki = broker().pki();
    return {{"--mqtt-uri", broker().cert_uri(), "--mqtt-ca-file", pki.ca_cert, "--mqtt-cert-file", pki.client_cert,
             "--mqtt-key-file", pki.client_key, "--mqtt-username", user, "--mqtt-backoff-max-ms", "100"},
            {"BOXGATE_MQTT_PASSWORD=" + password}};
  }
  // A client logged in as box-2 on `uri` with `client_id`, over TLS; nullptr
  // when the broker refused it. 30 s for the CONNACK: paho 1.3.12 takes ~2 s
  // for every client after a process's first (mqtt_probe.hpp), more on a
  // loaded machine.
  std::unique_ptr<MqttProbe> attacker(const std::string& uri, const std::string& client_id) {
    MqttProbeOptions o;
    o.uri = uri;
    o.client_id = client_id;
    o.username = "box-2";
    o.password = kTakeoverAttackerPassword;
    o.ca_file = broker().pki().ca_cert;
    o.automatic_reconnect = false;
    o.wait = false;
    try {
      auto probe = std::make_unique<MqttProbe>(o);
      probe->wait_connected(30s);
      return probe;
    } catch (const std::exception&) {
      return nullptr;
    }
  }
};

TEST_F(MqttTakeoverTest, ADeviceCannotDisconnectTheDaemonsWithTheirClientIds) {
  auto [gw_flags, gw_env] = daemon(SecureMosquitto::kGatewayUser, kTakeoverGatewayPassword);
  auto [br_flags, br_env] = daemon(SecureMosquitto::kBridgeUser, kTakeoverBridgePassword);
  int gw1 = stack->add_gateway(gw_flags, /*wait_ready=*/true, gw_env);
  int gw2 = stack->add_gateway(gw_flags, /*wait_ready=*/true, gw_env);
  stack->add_bridge(br_flags, /*wait_ready=*/true, br_env);
  MqttProbeOptions device;
  device.uri = broker().tls_uri();
  device.username = "box-1";
  device.password = kTakeoverBoxPassword;
  device.ca_file = broker().pki().ca_cert;
  ProbeDevice box1(device, "dev/box-1/request/+", ProbeDevice::echo());

  // The broker's log reaches us through a pipe: wait for the lines.
  Process& mosquitto = broker().process();
  std::vector<std::string> gateway_ids, bridge_ids;
  test::eventually(
      [&] {
        gateway_ids = logged_client_ids(mosquitto.log(), SecureMosquitto::kGatewayUser);
        bridge_ids = logged_client_ids(mosquitto.log(), SecureMosquitto::kBridgeUser);
        return gateway_ids.size() >= 2 && !bridge_ids.empty();
      },
      10s);
  ASSERT_EQ(gateway_ids.size(), 2u) << "two replicas of one user connect at once:\n" << mosquitto.log_tail();
  ASSERT_EQ(bridge_ids.size(), 1u) << mosquitto.log_tail();
  std::vector<std::string> daemon_ids = gateway_ids;
  daemon_ids.push_back(bridge_ids[0]);

  auto c = client(gw1);
  HttpResult before = post(*c, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "takeover-0"}});
  ASSERT_EQ(before.status, 200) << before.body << "\n" << stack->logs();
  HttpResult status = get(*c, "/v1/devices/box-1/commands/takeover-0");
  ASSERT_EQ(status.status, 200) << status.body;
  const std::string instance = status.json().value("gateway", "");
  ASSERT_FALSE(instance.empty()) << status.body;

  // Nothing a caller can read over HTTP names a daemon's client id, and the
  // id is not derived from what it does show (the instance name).
  for (const std::string& id : daemon_ids) {
    EXPECT_EQ(id.find(instance), std::string::npos) << id << " is guessable from the instance name " << instance;
    for (const HttpResult& r : {before, status, get(gw1, "/readyz"), get(gw1, "/metrics")}) {
      EXPECT_EQ(r.body.find(id), std::string::npos) << id << " disclosed in " << r.body.substr(0, 200);
    }
  }

  // The attack: a device, logged in as box-2, connects under each daemon's
  // id, on the devices' listener (it gets in, as box-2) and on the daemons'
  // listener (refused: no client certificate). One attacker at a time, each
  // gone before the next: all of them are box-2 to the broker, and a paho
  // client whose session is taken over while another handshakes in the same
  // process sometimes cut that handshake (seen under ASan).
  for (const std::string& id : daemon_ids) {
    // Once more if paho's own handshake broke (the broker then logs
    // "unexpected eof", and no connection as box-2): what is checked is the
    // broker's decision, which a client-side cut does not reach.
    auto taken = attacker(broker().tls_uri(), id);
    if (!taken) taken = attacker(broker().tls_uri(), id);
    EXPECT_TRUE(taken) << "the devices' listener takes box-2 (under its own id)";
    taken.reset();
    EXPECT_FALSE(attacker(broker().cert_uri(), id)) << "the daemons' listener needs a client certificate";
  }
  // The broker logs a takeover before the new connection's own line: once
  // every attacker's line is in, any daemon it dropped is in the log too.
  EXPECT_TRUE(test::eventually(
      [&] { return logged_client_ids(mosquitto.log(), "box-2").size() == daemon_ids.size(); }, 20s))
      << mosquitto.log_tail();
  for (const std::string& id : daemon_ids) {
    EXPECT_EQ(mosquitto.log().find("Client " + id + " already connected"), std::string::npos)
        << "a device disconnected " << id << ":\n" << mosquitto.log_tail();
  }
  EXPECT_EQ(logged_client_ids(mosquitto.log(), SecureMosquitto::kGatewayUser).size(), 2u) << "no daemon reconnected";

  // Commands keep working through both gateways and the bridge.
  for (int gw : {gw1, gw2}) {
    auto again = client(gw);
    HttpResult after = post(*again, command_path("box-1", "timeout_ms=5000"), kPing);
    EXPECT_EQ(after.status, 200) << after.body << "\n" << stack->logs();
  }
}

}  // namespace
}  // namespace boxgate::itest
