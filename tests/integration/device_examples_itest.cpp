// The device examples against a real stack, each as a child process: the
// Python one (examples/device/python/boxgate_device.py, on Debian's
// python3-paho-mqtt) and the C++ one (examples/device/cpp, on
// libboxgate-device), with a gateway and a bridge on a plain broker and on
// the hardened one (TLS, the box's own user, the shipped ACL). Through the
// gateway: ping, echo, an unknown method, a one-way message, presence online
// and offline (its own `offline` on SIGTERM, its will when killed), and a
// command sent while the device is stopped answered once it comes back
// (persistent session). On MQTT directly, what the gateway cannot make
// happen: a payload that is not JSON, a response topic that is not the box's
// own, correlation data, a duplicate; for the Python device also a retained
// command. The Python cases are skipped only when paho for python3 is not
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

enum class Example { python, cpp };
void PrintTo(Example example, std::ostream* os) { *os << (example == Example::python ? "python" : "cpp"); }

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

// One example device at a time, in a Stack of its own.
class DeviceExampleFixture : public StackTest {
 protected:
  DeviceExampleFixture(Example example, StackOptions options) : StackTest(std::move(options)), example_(example) {}
  void SetUp() override {
    if (example_ == Example::python && !paho_installed()) {
      GTEST_SKIP() << "paho-mqtt for " << python3() << " is not installed (apt-get install python3-paho-mqtt)";
    }
    StackTest::SetUp();
  }
  void TearDown() override {
    if (device) {  // stopped (SIGTERM) before the brokers; the C++ one may run under ASan
      device->stop();
      EXPECT_EQ(device->sanitizer_report(), "") << device->name();
    }
    device.reset();
    StackTest::TearDown();
  }

  // The example device for `box`, on the plain broker unless `flags` name a
  // --uri. A password goes where each example takes it: the Python one from
  // the environment (flags show in ps), the C++ one as --password.
  Process& start_device(const std::string& box, std::vector<std::string> flags = {},
                        const std::string& password = "") {
    std::vector<std::string> argv{python3(), kScript};
    if (example_ == Example::cpp) argv = {BOXGATE_EXAMPLE_DEVICE};
    argv.insert(argv.end(), {"--box", box});
    if (std::find(flags.begin(), flags.end(), "--uri") == flags.end()) {
      flags.insert(flags.end(), {"--uri", "tcp://127.0.0.1:" + std::to_string(stack->mqtt_port())});
    }
    std::vector<std::string> env;
    if (!password.empty() && example_ == Example::python) env.push_back("BOXGATE_MQTT_PASSWORD=" + password);
    if (!password.empty() && example_ == Example::cpp) flags.insert(flags.end(), {"--password", password});
    argv.insert(argv.end(), flags.begin(), flags.end());
    const std::string name = (example_ == Example::python ? "python-" : "cpp-") + box;
    device = std::make_unique<Process>(name, argv, stack->tmp().path(), env);
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
  std::string logs() { return (device ? device->log_tail() : std::string()) + "\n" + stack->logs(); }

  int gw = 0;
  std::unique_ptr<Process> device;

 private:
  Example example_;
};

std::string example_name(const ::testing::TestParamInfo<Example>& info) {
  return info.param == Example::python ? "Python" : "Cpp";
}

// What every device must do: both examples.
class DeviceExamplesTest : public DeviceExampleFixture, public ::testing::WithParamInterface<Example> {
 protected:
  DeviceExamplesTest() : DeviceExampleFixture(GetParam(), {.tag = "device-examples"}) {}
};
INSTANTIATE_TEST_SUITE_P(Examples, DeviceExamplesTest, ::testing::Values(Example::python, Example::cpp),
                         example_name);

TEST_P(DeviceExamplesTest, AnswersPingEchoAndUnknownMethodsThroughTheGateway) {
  gw = stack->add_gateway();
  stack->add_bridge();
  start_device("ex-1");
  ASSERT_TRUE(wait_presence("ex-1", true)) << logs();
  auto c = client(gw);

  HttpResult ping = post(*c, command_path("ex-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "ex-ping-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << ping.error << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"ex-ping-1","result":{"pong":true}})")) << ping.body;

  // A gateway-made id (a UUID) comes back too.
  HttpResult anonymous = post(*c, command_path("ex-1", "timeout_ms=5000"), kPing);
  ASSERT_EQ(anonymous.status, 200) << anonymous.body << "\n" << logs();
  EXPECT_TRUE(is_uuid_v4_lowercase(anonymous.json().value("id", ""))) << anonymous.body;
  EXPECT_EQ(anonymous.json().value("id", ""), anonymous.header("X-Request-Id"));

  const auto params = nlohmann::json::parse(R"({"a":[1,{"b":"c"}],"n":1.5,"s":"\u00e9\"}"})");
  HttpResult echo = post(*c, command_path("ex-1", "timeout_ms=5000"),
                         nlohmann::json{{"method", "echo"}, {"params", params}}.dump(), {{"X-Request-Id", "ex-echo-1"}});
  ASSERT_EQ(echo.status, 200) << echo.body << "\n" << logs();
  EXPECT_EQ(echo.json().value("id", ""), "ex-echo-1") << echo.body;
  EXPECT_EQ(echo.json()["result"], params) << echo.body;

  // As deep as the gateway lets a body be (64 levels): the device's own depth
  // check must agree with the gateway's, or such a command gets bad_json.
  std::string deep = R"({"method":"echo","params":)" + std::string(63, '[') + std::string(63, ']') + "}";
  HttpResult deepest = post(*c, command_path("ex-1", "timeout_ms=5000"), deep, {{"X-Request-Id", "ex-deep-1"}});
  ASSERT_EQ(deepest.status, 200) << deepest.body << "\n" << logs();
  EXPECT_FALSE(deepest.json().contains("error")) << deepest.body;

  HttpResult unknown = post(*c, command_path("ex-1", "timeout_ms=5000"), R"({"method":"reboot"})",
                            {{"X-Request-Id", "ex-unknown-1"}});
  ASSERT_EQ(unknown.status, 200) << unknown.body << "\n" << logs();
  EXPECT_EQ(unknown.json().value("id", ""), "ex-unknown-1") << unknown.body;
  EXPECT_EQ(unknown.json()["error"].value("code", ""), "unknown_method") << unknown.body;
  EXPECT_FALSE(unknown.json().contains("result")) << unknown.body;

  // A one-way message reaches it (both examples log each message they take).
  HttpResult message = post(*c, "/v1/devices/ex-1/messages", R"({"note":"hello"})", {{"X-Request-Id", "ex-msg-1"}});
  ASSERT_EQ(message.status, 202) << message.body;
  EXPECT_TRUE(device->wait_for_log("message ex-msg-1", 5s)) << logs();

  // The bridge stored every reply under a gateway's id: none was dropped.
  EXPECT_EQ(metric(stack->bridge_port(), R"(boxgate_replies_dropped_total{reason="unsolicited"})").value_or(0), 0);
  EXPECT_EQ(metric(stack->bridge_port(), R"(boxgate_replies_dropped_total{reason="invalid_id"})").value_or(0), 0);
}

// Sent while the device is stopped, an async command waits in the device's
// persistent session and is answered once the same device starts again.
// SIGTERM: the device says `offline` itself; SIGKILL: its will does.
TEST_P(DeviceExamplesTest, AnswersACommandSentWhileItWasStoppedAndGoesOffline) {
  gw = stack->add_gateway();
  stack->add_bridge();
  Process& ex = start_device("ex-2");
  ASSERT_TRUE(wait_presence("ex-2", true)) << logs();

  EXPECT_EQ(ex.stop(SIGTERM), 0) << logs();
  EXPECT_TRUE(wait_presence("ex-2", false, 5s)) << "SIGTERM: offline before the DISCONNECT\n" << logs();

  auto c = client(gw);
  HttpResult accepted = post(*c, command_path("ex-2", "timeout_ms=30000"), kPing,
                             {{"X-Request-Id", "ex-away-1"}, {"Prefer", "respond-async"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body << "\n" << logs();
  HttpResult pending = get(*c, "/v1/devices/ex-2/commands/ex-away-1");
  EXPECT_EQ(pending.json().value("state", ""), "pending") << pending.body;

  ex.start();
  ASSERT_TRUE(wait_presence("ex-2", true)) << logs();
  HttpResult done = get(*c, "/v1/devices/ex-2/commands/ex-away-1?wait_ms=10000");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.json().value("state", ""), "succeeded") << done.body << "\n" << logs();
  EXPECT_EQ(done.json()["reply"], nlohmann::json::parse(R"({"id":"ex-away-1","result":{"pong":true}})"))
      << done.body;

  // A device that dies without a word: the broker publishes its will.
  ex.kill9();
  EXPECT_TRUE(wait_presence("ex-2", false, 5s)) << "SIGKILL: offline by the will\n" << logs();
}

TEST_P(DeviceExamplesTest, OnMqtt311AnswersOnTheDefaultResponseTopic) {
  gw = stack->add_gateway();
  stack->add_bridge();
  Process& ex = start_device("ex-3", {"--mqtt-version", "3.1.1"});
  ASSERT_TRUE(wait_presence("ex-3", true)) << logs();
  auto c = client(gw);
  HttpResult ping = post(*c, command_path("ex-3", "timeout_ms=5000"), kPing, {{"X-Request-Id", "ex311-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"ex311-1","result":{"pong":true}})")) << ping.body;
  EXPECT_EQ(ex.stop(SIGINT), 0) << logs();
  EXPECT_TRUE(wait_presence("ex-3", false, 5s)) << logs();
}

// What the gateway never sends, published on MQTT directly (the plain broker
// lets a test do it): the device's answers on its response topics.
TEST_P(DeviceExamplesTest, RefusesBadJsonKeepsToItsOwnTopicsAndAnswersADuplicateAgain) {
  gw = stack->add_gateway();
  stack->add_bridge();
  start_device("ex-4");
  ASSERT_TRUE(wait_presence("ex-4", true)) << logs();
  MqttProbe probe(stack->mqtt_port());
  probe.subscribe("dev/ex-4/response/#");
  probe.subscribe("other/#");
  auto replies_on = [&](const std::string& topic) {
    std::vector<nlohmann::json> out;
    for (const MqttMessage& m : probe.messages()) {
      if (m.topic == topic) out.push_back(nlohmann::json::parse(m.payload, nullptr, false));
    }
    return out;
  };

  // Not JSON, and nested deeper than 64 levels: a bad_json error under the id.
  probe.publish("dev/ex-4/request/bad-1", "not json");
  probe.publish("dev/ex-4/request/deep-1", std::string(65, '[') + std::string(65, ']'));
  // The Response Topic and Correlation Data of MQTT 5 are honoured for the
  // box's own response topic; any other is ignored for the default one.
  probe.publish("dev/ex-4/request/rt-1", kPing, 1, replying_to("dev/ex-4/response/rt-1", "corr-rt-1"));
  probe.publish("dev/ex-4/request/rt-2", kPing, 1, replying_to("other/rt-2"));
  ASSERT_TRUE(probe.wait_for(4, 5s)) << logs();

  auto bad = replies_on("dev/ex-4/response/bad-1");
  ASSERT_EQ(bad.size(), 1u) << logs();
  EXPECT_EQ(bad[0].value("id", ""), "bad-1");
  EXPECT_EQ(bad[0]["error"].value("code", ""), "bad_json") << bad[0];
  auto deep = replies_on("dev/ex-4/response/deep-1");
  ASSERT_EQ(deep.size(), 1u) << logs();
  EXPECT_EQ(deep[0]["error"].value("code", ""), "bad_json") << deep[0];
  for (const MqttMessage& m : probe.messages()) {
    if (m.topic == "dev/ex-4/response/rt-1") {
      EXPECT_EQ(m.correlation_data, "corr-rt-1");
    }
  }
  EXPECT_EQ(replies_on("dev/ex-4/response/rt-1").size(), 1u);
  EXPECT_EQ(replies_on("dev/ex-4/response/rt-2").size(), 1u) << "a foreign response topic falls back to the default";
  EXPECT_TRUE(replies_on("other/rt-2").empty());

  // The same id again (a QoS 1 redelivery, a retry): the same answer.
  probe.clear();
  probe.publish("dev/ex-4/request/rt-1", kPing);
  ASSERT_TRUE(probe.wait_for(1, 5s)) << logs();
  EXPECT_EQ(probe.messages()[0].topic, "dev/ex-4/response/rt-1");
  EXPECT_EQ(nlohmann::json::parse(probe.messages()[0].payload),
            nlohmann::json::parse(R"({"id":"rt-1","result":{"pong":true}})"));
}

// The Python device's log says what it did not run.
class DeviceExamplesPythonTest : public DeviceExampleFixture {
 protected:
  DeviceExamplesPythonTest() : DeviceExampleFixture(Example::python, {.tag = "device-examples-python"}) {}
};

// A duplicate is answered, not run again; a retained command is run by no
// device that subscribes later: it would run again at every reconnect.
TEST_F(DeviceExamplesPythonTest, RunsADuplicateOnceAndNoRetainedCommand) {
  gw = stack->add_gateway();
  stack->add_bridge();
  start_device("py-5");
  ASSERT_TRUE(wait_presence("py-5", true)) << logs();
  MqttProbe probe(stack->mqtt_port());
  probe.subscribe("dev/py-5/response/#");

  probe.publish("dev/py-5/request/dup-1", kPing);
  probe.publish("dev/py-5/request/dup-1", kPing);
  ASSERT_TRUE(probe.wait_for(2, 5s)) << logs();
  EXPECT_EQ(probe.messages()[0].payload, probe.messages()[1].payload);
  EXPECT_TRUE(device->wait_for_log("request/dup-1 seen again", 2s)) << logs();

  probe.publish("dev/py-5/request/kept-1", kPing, 1, retained());
  ASSERT_TRUE(probe.wait_for(3, 5s)) << "a live one is still a command:\n" << logs();
  device->stop(SIGTERM);
  probe.clear();
  const std::size_t before = device->log_size();
  device->start();
  EXPECT_TRUE(device->wait_for_log("ignored retained request/kept-1", 10s, before)) << logs();
  EXPECT_TRUE(wait_presence("py-5", true)) << logs();
  EXPECT_TRUE(probe.messages().empty()) << probe.messages()[0].topic;
  EXPECT_EQ(count(device->log(), "Traceback"), 0u) << device->log();
}

const std::string kBoxPassword = "pw-ex-sec-3b1d";

class DeviceExamplesSecureTest : public DeviceExampleFixture, public ::testing::WithParamInterface<Example> {
 protected:
  DeviceExamplesSecureTest()
      : DeviceExampleFixture(GetParam(), StackOptions{.tag = "device-examples-secure",
                                                      .mqtt_users = {{"ex-sec", kBoxPassword},
                                                                     {SecureMosquitto::kGatewayUser, "pw-gateway-8e21"},
                                                                     {SecureMosquitto::kBridgeUser, "pw-bridge-40c7"}}}) {}
};
INSTANTIATE_TEST_SUITE_P(Examples, DeviceExamplesSecureTest, ::testing::Values(Example::python, Example::cpp),
                         example_name);

// On the hardened broker (shipped config and ACL, TLS) logged in as its box:
// every topic the device publishes on must be one the ACL grants, or its
// replies and presence never arrive.
TEST_P(DeviceExamplesSecureTest, WorksOverTlsAsItsOwnUserWithinTheAcl) {
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

  Process& ex = start_device("ex-sec", {"--uri", broker.tls_uri(), "--ca-file", ca, "--username", "ex-sec"},
                             kBoxPassword);
  ASSERT_TRUE(wait_presence("ex-sec", true)) << logs();
  auto c = client(gw);
  HttpResult ping = post(*c, command_path("ex-sec", "timeout_ms=5000"), kPing, {{"X-Request-Id", "ex-tls-1"}});
  ASSERT_EQ(ping.status, 200) << ping.body << "\n" << logs();
  EXPECT_EQ(ping.json(), nlohmann::json::parse(R"({"id":"ex-tls-1","result":{"pong":true}})")) << ping.body;
  EXPECT_EQ(ex.stop(SIGTERM), 0) << logs();
  EXPECT_TRUE(wait_presence("ex-sec", false, 5s)) << logs();
  EXPECT_EQ(count(ex.log(), kBoxPassword), 0u) << "the password is never logged";
}

}  // namespace
}  // namespace boxgate::itest::device_examples
