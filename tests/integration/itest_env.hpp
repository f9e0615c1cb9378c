#pragma once
// Shared pieces of the integration tests (tests/integration/*_itest.cpp):
// a Stack of real processes per test, a device played by an MqttProbe, and
// small parsers for metrics and JSON. The timed HTTP call helpers come from
// support/http.hpp.
//
// Callers: the test thread owns a Stack (not thread-safe). Every process in it
// is stopped when the Stack is destroyed, in reverse order of start (daemons
// before brokers), so a failed assertion never leaves a child running.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

namespace boxgate {
class EventLoop;
}

namespace boxgate::itest {

using namespace std::chrono_literals;
using test::MqttMessage;
using test::MqttProbe;
using test::Process;

// The command most tests send: what matters is the device's reply.
inline const std::string kPing = R"({"method":"ping"})";
// SHA-256 of the API token "secret-ci", the tests' ordinary caller.
inline const std::string kCiHash = "ce2eda71cf833a8bf08ec730a7ba5374db9957a70f1f0d80705d9fbdcb952c06";

// What a Stack's brokers look like. The default: a plain redis-server and a
// plain mosquitto, no credentials, no TLS.
struct StackOptions {
  std::string tag = "itest";
  // Lines appended to the plain broker's config (e.g. a plugin).
  std::vector<std::string> mqtt_config{};
  // The plain broker gets a second listener speaking TLS (mqtt_tls_port())
  // with a certificate for 127.0.0.1 signed by the test CA (pki()).
  bool mqtt_tls = false;
  // Non-empty: the hardened broker instead (test::SecureMosquitto: the shipped
  // config and ACL, TLS, these users and passwords); mqtt_port() is its
  // clear-text listener with the same users.
  std::map<std::string, std::string> mqtt_users{};
  // Redis started with the shipped ACL file (config/redis-users.acl, the
  // passwords of redis_users()); the Stack's own clients log in as
  // redis_admin(). The daemons need --redis-username/--redis-password.
  bool redis_acl = false;
  // Extra redis-server arguments (e.g. "--appendonly", "yes"): later ones win.
  std::vector<std::string> redis_args{};
};

// redis-server + mosquitto on free ports, plus the daemons a test adds.
class Stack {
 public:
  explicit Stack(const std::string& tag = "itest");
  explicit Stack(StackOptions options);
  ~Stack();

  // Starts a gateway on a free port and returns the port. Readiness (Redis
  // and MQTT connected) is awaited unless wait_ready is false. `env`: extra
  // environment entries ("NAME=value"), e.g. a password.
  int add_gateway(std::vector<std::string> extra_flags = {}, bool wait_ready = true, std::vector<std::string> env = {});
  int add_bridge(std::vector<std::string> extra_flags = {}, bool wait_ready = true, std::vector<std::string> env = {});
  // boxgate-devsim on this broker; returns its index in devsims().
  std::size_t add_devsim(std::vector<std::string> flags, std::vector<std::string> env = {});

  // Stops every daemon with SIGTERM and records a test failure for any that
  // did not exit 0 or whose log holds a sanitizer report. Idempotent.
  void stop_daemons_and_check();

  test::TempDir& tmp() { return *tmp_; }
  test::RedisServer& redis() { return *redis_; }
  // The plain broker; throws std::logic_error on a Stack with mqtt_users.
  test::Mosquitto& mqtt();
  // The hardened broker; throws std::logic_error on a Stack without mqtt_users.
  test::SecureMosquitto& secure_mqtt();
  int mqtt_port() const { return mqtt_ ? mqtt_->port() : secure_mqtt_->plain_port(); }
  // The TLS listener (mqtt_tls or mqtt_users), else 0.
  int mqtt_tls_port() const { return tls_port_; }
  // The test CA and certificates (mqtt_tls or mqtt_users); throws otherwise.
  const test::TestPki& pki() const;
  // The daemons' Redis users (redis_acl) and the admin the Stack's clients use.
  const test::BoxgateRedisUsers& redis_users() const { return redis_users_; }
  static test::RedisCredentials redis_admin() { return {"admin", "admin-test-password"}; }
  Process& gateway(std::size_t i = 0) { return gateways_.at(i); }
  Process& bridge(std::size_t i = 0) { return bridges_.at(i); }
  Process& devsim(std::size_t i = 0) { return devsims_.at(i); }
  // Every daemon started so far: gateways, bridges, devsims.
  std::vector<Process*> daemons();
  int gateway_port(std::size_t i = 0) const { return gateway_ports_.at(i); }
  int bridge_port(std::size_t i = 0) const { return bridge_ports_.at(i); }
  // Log tails of every daemon, for failure messages.
  std::string logs(std::size_t lines = 30);
  // Starts the stopped Redis (empty: no persistence) with the bridge held
  // (SIGSTOP) until the first gateway has written back `records` command
  // records (10 s), so the bridge's flush of the replies it queued cannot
  // overtake the gateway's reconnect. false when they were not written back.
  bool restart_redis_holding_the_bridge(double records);

 private:
  // Throws with the log tail unless the daemon's /readyz answers 200 (15 s).
  static void await_ready(const Process& daemon, int port);

  std::unique_ptr<test::TempDir> tmp_;
  test::BoxgateRedisUsers redis_users_;
  std::unique_ptr<test::RedisServer> redis_;
  std::optional<test::TestPki> pki_;
  int tls_port_ = 0;
  std::unique_ptr<test::Mosquitto> mqtt_;
  std::unique_ptr<test::SecureMosquitto> secure_mqtt_;
  std::vector<Process> gateways_;
  std::vector<int> gateway_ports_;
  std::vector<Process> bridges_;
  std::vector<int> bridge_ports_;
  std::vector<Process> devsims_;
  bool stopped_ = false;
};

// A fixture with one Stack per test; at teardown every daemon must exit 0 on
// SIGTERM with no sanitizer report in its log.
class StackTest : public ::testing::Test {
 protected:
  explicit StackTest(std::string tag) { options_.tag = std::move(tag); }
  explicit StackTest(StackOptions options) : options_(std::move(options)) {}
  void SetUp() override { stack = std::make_unique<Stack>(options_); }
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;

  // Publishes the box's retained status ("online"/"offline" on
  // dev/<box>/status, as its device would) and waits until gateway `gw`
  // reports that presence (a failed assertion when it never does).
  void set_presence(const std::string& box, bool online, int gw);

 private:
  StackOptions options_;
};

// The HTTP call helpers live in tests/support/http.hpp (the chaos run uses them too).
using test::client;
using test::command_path;
using test::device_path;
using test::get;
using test::HttpResult;
using test::post;

// The value of the sample `series` (e.g. `boxgate_commands_total{outcome="ok"}`)
// in Prometheus text, if present.
std::optional<double> metric(const std::string& text, const std::string& series);
// GET /metrics on the port and read one series (nullopt when absent/unreachable).
std::optional<double> metric(int port, const std::string& series);

// Runs `loop` on this thread until `done()` holds (checked every 10 ms, on
// the loop) or the timeout passes; true when it held. For tests that drive
// core objects (redis::Commands, resolvers) on an EventLoop of their own.
bool run_until(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout);

// The last topic level ("dev/box-1/request/<id>" -> "<id>").
std::string last_level(const std::string& topic);
bool is_uuid_v4_lowercase(const std::string& s);

// A device played by an MqttProbe: subscribes to `filter` and, for every
// message, publishes what `reply` returns (topic, payload), if anything.
// The reply is sent from the device's own thread, never paho's.
class ProbeDevice {
 public:
  using ReplyFn = std::function<std::optional<std::pair<std::string, std::string>>(const MqttMessage&)>;
  ProbeDevice(int mqtt_port, const std::string& filter, ReplyFn reply, int qos = 1);
  // Any broker, user or TLS setup (a device logged in as its box id).
  ProbeDevice(test::MqttProbeOptions options, const std::string& filter, ReplyFn reply, int qos = 1);
  ~ProbeDevice();
  ProbeDevice(const ProbeDevice&) = delete;
  ProbeDevice& operator=(const ProbeDevice&) = delete;

  MqttProbe& probe() { return *probe_; }
  std::vector<MqttMessage> commands() const { return probe_->messages(); }
  std::size_t replied() const { return replied_.load(); }

  // Replies {"id":"<id>","result":{"ok":true}} on <prefix>/<box>/response/<id>.
  static ReplyFn echo();

 private:
  void run();

  std::unique_ptr<MqttProbe> probe_;
  ReplyFn reply_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> replied_{0};
  std::thread thread_;
};

}  // namespace boxgate::itest
