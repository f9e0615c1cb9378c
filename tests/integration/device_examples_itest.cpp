// The device examples against a real stack: examples/device/python/
// boxgate_device.py (Debian's python3-paho-mqtt) as a child process, with a
// gateway and a bridge on a plain broker, and on the hardened one (TLS, the
// box's own user, the shipped ACL). Through the gateway: ping, echo, an
// unknown method, a one-way message, presence online and offline (its own
// `offline` on SIGTERM, its will when killed), and a command sent while the
// device is stopped answered once it comes back (persistent session). On
// MQTT directly, what the gateway cannot make happen: a payload that is not
// JSON, a response topic that is not the box's own, correlation data, a
// duplicate, a retained command. Skipped only when paho for python3 is not
// installed (scripts/deps installs python3-paho-mqtt).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

#include "itest_env.hpp"

// A namespace of its own: the unity build compiles several test files as one.
namespace boxgate::itest::device_examples {
namespace {

using test::MqttPublishOptions;
using test::SecureMosquitto;

const std::string kScript = BOXGATE_SOURCE_DIR "/examples/device/python/boxgate_device.py";

// The interpreter: BOXGATE_PYTHON3, else Debian's (python3-paho-mqtt installs
// for /usr/bin/python3, which a python3 earlier in PATH may not see), else PATH's.
std::string python3() {
  if (const char* env = std::getenv("BOXGATE_PYTHON3"); env && *env) return env;
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

bool paho_installed() {
  const std::string check = python3() + " -c 'import paho.mqtt.client' >/dev/null 2>&1";
  return std::system(check.c_str()) == 0;
}

MqttPublishOptions replying_to(const std::string& response_topic, const std::string& correlation = "") {
  MqttPublishOptions options;
  options.response_topic = response_topic;
  options.correlation_data = correlation;
  return options;
}

MqttPublishOptions retained() {
  MqttPublishOptions options;
  options.retained = true;
  return options;
}

// Occurrences of `needle` in `text`.
std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class DeviceExamplesTest : public StackTest {
 protected:
  explicit DeviceExamplesTest(StackOptions options = {.tag = "device-examples"}) : StackTest(std::move(options)) {}
  void SetUp() override {
    if (!paho_installed()) {
      GTEST_SKIP() << "paho-mqtt for " << python3() << " is not installed (apt-get install python3-paho-mqtt)";
    }
    StackTest::SetUp();
  }

  // The Python device for `box` on the plain broker, plus `flags`.
  Process& start_python(const std::string& box, std::vector<std::string> flags = {},
                        std::vector<std::string> env = {}) {
    std::vector<std::string> argv{python3(), kScript, "--box", box};
    if (std::find(flags.begin(), flags.end(), "--uri") == flags.end()) {
      flags.insert(flags.end(), {"--uri", "tcp://127.0.0.1:" + std::to_string(stack->mqtt_port())});
    }
    argv.insert(argv.end(), flags.begin(), flags.end());
    device = std::make_unique<Process>("python-" + box, argv, stack->tmp().path(), env);
    return *device;
  }

  // Waits until the gateway reports `box` online (or offline); false at the timeout.
  bool wait_presence(const std::string& box, bool online, std::chrono::milliseconds timeout = 15s) {
    return test::eventually(
        [&] {
          HttpResult r = get(gw, device_path(box));
          return r.status == 200 && r.json().value("online", !online) == online;
        },
        timeout, 50ms);
  }
  void TearDown() override {
    device.reset();  // stopped (SIGTERM) before the brokers
    StackTest::TearDown();
  }
  std::string logs() { return (device ? device->log_tail() : std::string()) + "\n" + stack->logs(); }

  int gw = 0;
  std::unique_ptr<Process> device;
};

TEST_F(DeviceExamplesTest, PythonDeviceAnswersPingEchoAndUnknownMethodsThroughTheGateway) {
  gw = stack->add_gateway();
  stack->add_bridge();
  start_python("py-1");
  ASSERT_TRUE(wait_presence("py-1", true)) << logs();
  auto c = client(gw);

  HttpResult ping = post(*c, command_path("py-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "py-ping-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << ping.error << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"py-ping-1","result":{"pong":true}})")) << ping.body;

  // A gateway-made id (a UUID) comes back too.
  HttpResult anonymous = post(*c, command_path("py-1", "timeout_ms=5000"), kPing);
  ASSERT_EQ(anonymous.status, 200) << anonymous.body << "\n" << logs();
  EXPECT_TRUE(is_uuid_v4_lowercase(anonymous.json().value("id", ""))) << anonymous.body;
  EXPECT_EQ(anonymous.json().value("id", ""), anonymous.header("X-Request-Id"));

  const auto params = nlohmann::json::parse(R"({"a":[1,{"b":"c"}],"n":1.5,"s":"\u00e9\"}"})");
  HttpResult echo = post(*c, command_path("py-1", "timeout_ms=5000"),
                         nlohmann::json{{"method", "echo"}, {"params", params}}.dump(), {{"X-Request-Id", "py-echo-1"}});
  ASSERT_EQ(echo.status, 200) << echo.body << "\n" << logs();
  EXPECT_EQ(echo.json().value("id", ""), "py-echo-1") << echo.body;
  EXPECT_EQ(echo.json()["result"], params) << echo.body;

  // As deep as the gateway lets a body be (64 levels): the device's own depth
  // check must agree with the gateway's, or such a command gets bad_json.
  std::string deep = R"({"method":"echo","params":)" + std::string(63, '[') + std::string(63, ']') + "}";
  HttpResult deepest = post(*c, command_path("py-1", "timeout_ms=5000"), deep, {{"X-Request-Id", "py-deep-1"}});
  ASSERT_EQ(deepest.status, 200) << deepest.body << "\n" << logs();
  EXPECT_FALSE(deepest.json().contains("error")) << deepest.body;

  HttpResult unknown = post(*c, command_path("py-1", "timeout_ms=5000"), R"({"method":"reboot"})",
                            {{"X-Request-Id", "py-unknown-1"}});
  ASSERT_EQ(unknown.status, 200) << unknown.body << "\n" << logs();
  EXPECT_EQ(unknown.json().value("id", ""), "py-unknown-1") << unknown.body;
  EXPECT_EQ(unknown.json()["error"].value("code", ""), "unknown_method") << unknown.body;
  EXPECT_FALSE(unknown.json().contains("result")) << unknown.body;

  // A one-way message reaches it once (it logs each message it takes).
  HttpResult message = post(*c, "/v1/devices/py-1/messages", R"({"note":"hello"})", {{"X-Request-Id", "py-msg-1"}});
  ASSERT_EQ(message.status, 202) << message.body;
  EXPECT_TRUE(device->wait_for_log("message py-msg-1", 5s)) << logs();

  // The bridge stored every reply under a gateway's id: none was dropped.
  EXPECT_EQ(metric(stack->bridge_port(), R"(boxgate_replies_dropped_total{reason="unsolicited"})").value_or(0), 0);
  EXPECT_EQ(metric(stack->bridge_port(), R"(boxgate_replies_dropped_total{reason="invalid_id"})").value_or(0), 0);
}

// Sent while the device is stopped, an async command waits in the device's
// persistent session and is answered once the same device starts again.
// SIGTERM: the device says `offline` itself; SIGKILL: its will does.
TEST_F(DeviceExamplesTest, PythonDeviceAnswersACommandSentWhileItWasStoppedAndGoesOffline) {
  gw = stack->add_gateway();
  stack->add_bridge();
  Process& py = start_python("py-2");
  ASSERT_TRUE(wait_presence("py-2", true)) << logs();

  EXPECT_EQ(py.stop(SIGTERM), 0) << logs();
  EXPECT_TRUE(wait_presence("py-2", false, 5s)) << "SIGTERM: offline before the DISCONNECT\n" << logs();

  auto c = client(gw);
  HttpResult accepted = post(*c, command_path("py-2", "timeout_ms=30000"), kPing,
                             {{"X-Request-Id", "py-away-1"}, {"Prefer", "respond-async"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body << "\n" << logs();
  HttpResult pending = get(*c, "/v1/devices/py-2/commands/py-away-1");
  EXPECT_EQ(pending.json().value("state", ""), "pending") << pending.body;

  py.start();
  ASSERT_TRUE(wait_presence("py-2", true)) << logs();
  HttpResult done = get(*c, "/v1/devices/py-2/commands/py-away-1?wait_ms=10000");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.json().value("state", ""), "succeeded") << done.body << "\n" << logs();
  EXPECT_EQ(done.json()["reply"], nlohmann::json::parse(R"({"id":"py-away-1","result":{"pong":true}})"))
      << done.body;

  // A device that dies without a word: the broker publishes its will.
  py.kill9();
  EXPECT_TRUE(wait_presence("py-2", false, 5s)) << "SIGKILL: offline by the will\n" << logs();
}

TEST_F(DeviceExamplesTest, PythonDeviceOnMqtt311AnswersOnTheDefaultResponseTopic) {
  gw = stack->add_gateway();
  stack->add_bridge();
  Process& py = start_python("py-3", {"--mqtt-version", "3.1.1"});
  ASSERT_TRUE(wait_presence("py-3", true)) << logs();
  auto c = client(gw);
  HttpResult ping = post(*c, command_path("py-3", "timeout_ms=5000"), kPing, {{"X-Request-Id", "py311-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"py311-1","result":{"pong":true}})")) << ping.body;
  EXPECT_EQ(py.stop(SIGINT), 0) << logs();
  EXPECT_TRUE(wait_presence("py-3", false, 5s)) << logs();
}

// What the gateway never sends, published on MQTT directly (the plain broker
// lets a test do it): the device's answers on its response topics.
TEST_F(DeviceExamplesTest, PythonDeviceRefusesBadJsonKeepsToItsOwnTopicsAndRunsACommandOnce) {
  gw = stack->add_gateway();
  stack->add_bridge();
  start_python("py-4");
  ASSERT_TRUE(wait_presence("py-4", true)) << logs();
  MqttProbe probe(stack->mqtt_port());
  probe.subscribe("dev/py-4/response/#");
  probe.subscribe("other/#");
  auto replies_on = [&](const std::string& topic) {
    std::vector<nlohmann::json> out;
    for (const MqttMessage& m : probe.messages()) {
      if (m.topic == topic) out.push_back(nlohmann::json::parse(m.payload, nullptr, false));
    }
    return out;
  };

  // Not JSON, and nested deeper than 64 levels: a bad_json error under the id.
  probe.publish("dev/py-4/request/bad-1", "not json");
  probe.publish("dev/py-4/request/deep-1", std::string(65, '[') + std::string(65, ']'));
  // The Response Topic and Correlation Data of MQTT 5 are honoured for the
  // box's own response topic; any other is ignored for the default one.
  probe.publish("dev/py-4/request/rt-1", kPing, 1, replying_to("dev/py-4/response/rt-1", "corr-rt-1"));
  probe.publish("dev/py-4/request/rt-2", kPing, 1, replying_to("other/rt-2"));
  ASSERT_TRUE(probe.wait_for(4, 5s)) << logs();

  auto bad = replies_on("dev/py-4/response/bad-1");
  ASSERT_EQ(bad.size(), 1u) << logs();
  EXPECT_EQ(bad[0].value("id", ""), "bad-1");
  EXPECT_EQ(bad[0]["error"].value("code", ""), "bad_json") << bad[0];
  auto deep = replies_on("dev/py-4/response/deep-1");
  ASSERT_EQ(deep.size(), 1u) << logs();
  EXPECT_EQ(deep[0]["error"].value("code", ""), "bad_json") << deep[0];
  for (const MqttMessage& m : probe.messages()) {
    if (m.topic == "dev/py-4/response/rt-1") {
      EXPECT_EQ(m.correlation_data, "corr-rt-1");
    }
  }
  EXPECT_EQ(replies_on("dev/py-4/response/rt-1").size(), 1u);
  EXPECT_EQ(replies_on("dev/py-4/response/rt-2").size(), 1u) << "a foreign response topic falls back to the default";
  EXPECT_TRUE(replies_on("other/rt-2").empty());

  // The same id again (a QoS 1 redelivery, a retry): the same answer, not a
  // second run (the device says so in its log).
  probe.clear();
  probe.publish("dev/py-4/request/rt-1", kPing);
  ASSERT_TRUE(probe.wait_for(1, 5s)) << logs();
  EXPECT_EQ(probe.messages()[0].topic, "dev/py-4/response/rt-1");
  EXPECT_EQ(nlohmann::json::parse(probe.messages()[0].payload),
            nlohmann::json::parse(R"({"id":"rt-1","result":{"pong":true}})"));
  EXPECT_TRUE(device->wait_for_log("request/rt-1 seen again", 2s)) << logs();

  // A retained command is run by no device that subscribes later: it would
  // run again at every reconnect.
  probe.publish("dev/py-4/request/kept-1", kPing, 1, retained());
  ASSERT_TRUE(probe.wait_for(2, 5s)) << "a live one is still a command:\n" << logs();
  device->stop(SIGTERM);
  probe.clear();
  const std::size_t before = device->log_size();
  device->start();
  EXPECT_TRUE(device->wait_for_log("ignored retained request/kept-1", 10s, before)) << logs();
  EXPECT_TRUE(wait_presence("py-4", true)) << logs();
  EXPECT_TRUE(probe.messages().empty()) << probe.messages()[0].topic;
  EXPECT_EQ(count(device->log(), "Traceback"), 0u) << device->log();
}

const std::string kBoxPassword = "pw-py-sec-3b1d";

class DeviceExamplesSecureTest : public DeviceExamplesTest {
 protected:
  DeviceExamplesSecureTest()
      : DeviceExamplesTest(StackOptions{.tag = "device-examples-secure",
                                        .mqtt_users = {{"py-sec", kBoxPassword},
                                                       {SecureMosquitto::kGatewayUser, "pw-gateway-8e21"},
                                                       {SecureMosquitto::kBridgeUser, "pw-bridge-40c7"}}}) {}
};

// On the hardened broker (shipped config and ACL, TLS) logged in as its box:
// every topic the device publishes on must be one the ACL grants, or its
// replies and presence never arrive.
TEST_F(DeviceExamplesSecureTest, PythonDeviceWorksOverTlsAsItsOwnUserWithinTheAcl) {
  SecureMosquitto& broker = stack->secure_mqtt();
  const std::string ca = broker.pki().ca_cert;
  auto daemon = [&](const std::string& user) {
    return std::vector<std::string>{"--mqtt-uri",      broker.tls_uri(), "--mqtt-ca-file", ca,
                                    "--mqtt-username", user,             "--mqtt-backoff-max-ms", "100"};
  };
  gw = stack->add_gateway(daemon(SecureMosquitto::kGatewayUser), false,
                          {"BOXGATE_MQTT_PASSWORD=" + broker.password_of(SecureMosquitto::kGatewayUser)});
  int br = stack->add_bridge(daemon(SecureMosquitto::kBridgeUser), false,
                             {"BOXGATE_MQTT_PASSWORD=" + broker.password_of(SecureMosquitto::kBridgeUser)});
  ASSERT_TRUE(test::wait_ready(gw, 15s)) << logs();
  ASSERT_TRUE(test::wait_ready(br, 15s)) << logs();

  // The password through the environment: flags show in ps.
  Process& py = start_python("py-sec", {"--uri", broker.tls_uri(), "--ca-file", ca, "--username", "py-sec"},
                             {"BOXGATE_MQTT_PASSWORD=" + kBoxPassword});
  ASSERT_TRUE(wait_presence("py-sec", true)) << logs();
  auto c = client(gw);
  HttpResult ping = post(*c, command_path("py-sec", "timeout_ms=5000"), kPing, {{"X-Request-Id", "py-tls-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"py-tls-1","result":{"pong":true}})")) << ping.body;
  EXPECT_EQ(py.stop(SIGTERM), 0) << logs();
  EXPECT_TRUE(wait_presence("py-sec", false, 5s)) << logs();
  EXPECT_EQ(count(py.log(), kBoxPassword), 0u) << "the password is never logged";
}

}  // namespace
}  // namespace boxgate::itest::device_examples
