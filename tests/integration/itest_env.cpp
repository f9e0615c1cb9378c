#include "itest_env.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <sstream>

#include "boxgate/loop/event_loop.hpp"

namespace boxgate::itest {

// ---------------------------------------------------------------- Stack

Stack::Stack(const std::string& tag) : Stack(StackOptions{.tag = tag}) {}

Stack::Stack(StackOptions options) : tmp_(std::make_unique<test::TempDir>(options.tag)) {
  if (options.redis_acl) {
    const test::RedisCredentials admin = redis_admin();
    redis_ = std::make_unique<test::RedisServer>(
        *tmp_, 0, std::vector<std::string>{"--aclfile", test::redis_acl_file(*tmp_, redis_users_, admin)}, admin);
  } else {
    redis_ = std::make_unique<test::RedisServer>(*tmp_, 0, options.redis_args);
  }
  if (!options.mqtt_users.empty()) {
    secure_mqtt_ = std::make_unique<test::SecureMosquitto>(*tmp_, std::move(options.mqtt_users), options.mqtt_config);
    tls_port_ = secure_mqtt_->tls_port();
    return;
  }
  if (options.mqtt_tls) {
    pki_ = test::make_test_pki(*tmp_);
    tls_port_ = test::free_port();
    options.mqtt_config.insert(options.mqtt_config.end(),
                               {"listener " + std::to_string(tls_port_) + " 127.0.0.1", "cafile " + pki_->ca_cert,
                                "certfile " + pki_->server_cert, "keyfile " + pki_->server_key});
  }
  mqtt_ = std::make_unique<test::Mosquitto>(*tmp_, 0, std::move(options.mqtt_config));
  if (tls_port_ != 0 && !test::wait_for_port(tls_port_, 5s)) {
    throw std::runtime_error("mosquitto's TLS listener on port " + std::to_string(tls_port_) + " did not open; log:\n" +
                             mqtt_->process().log_tail());
  }
}

Stack::~Stack() {
  // Daemons first (reverse start order), then the brokers, then the directory.
  devsims_.clear();
  while (!bridges_.empty()) bridges_.pop_back();
  while (!gateways_.empty()) gateways_.pop_back();
  mqtt_.reset();
  secure_mqtt_.reset();
  redis_.reset();
  tmp_.reset();
}

test::Mosquitto& Stack::mqtt() {
  if (!mqtt_) throw std::logic_error("this Stack runs the hardened broker: use secure_mqtt()");
  return *mqtt_;
}

test::SecureMosquitto& Stack::secure_mqtt() {
  if (!secure_mqtt_) throw std::logic_error("this Stack runs the plain broker: use mqtt()");
  return *secure_mqtt_;
}

const test::TestPki& Stack::pki() const {
  if (secure_mqtt_) return secure_mqtt_->pki();
  if (!pki_) throw std::logic_error("this Stack has no TLS listener (StackOptions::mqtt_tls)");
  return *pki_;
}

std::vector<Process*> Stack::daemons() {
  std::vector<Process*> out;
  for (auto& g : gateways_) out.push_back(&g);
  for (auto& b : bridges_) out.push_back(&b);
  for (auto& d : devsims_) out.push_back(&d);
  return out;
}

int Stack::add_gateway(std::vector<std::string> extra_flags, bool wait_ready, std::vector<std::string> env) {
  int port = test::free_port();
  gateways_.push_back(
      test::start_gateway(*tmp_, port, redis_->port(), mqtt_port(), std::move(extra_flags), std::move(env)));
  gateway_ports_.push_back(port);
  if (wait_ready) await_ready(gateways_.back(), port);
  return port;
}

int Stack::add_bridge(std::vector<std::string> extra_flags, bool wait_ready, std::vector<std::string> env) {
  int port = test::free_port();
  bridges_.push_back(
      test::start_bridge(*tmp_, port, redis_->port(), mqtt_port(), std::move(extra_flags), std::move(env)));
  bridge_ports_.push_back(port);
  if (wait_ready) await_ready(bridges_.back(), port);
  return port;
}

void Stack::await_ready(const Process& daemon, int port) {
  if (!test::wait_ready(port, 15s)) {
    throw std::runtime_error(daemon.name() + " on port " + std::to_string(port) + " not ready; log:\n" +
                             daemon.log_tail());
  }
}

std::size_t Stack::add_devsim(std::vector<std::string> flags, std::vector<std::string> env) {
  devsims_.push_back(test::start_devsim(*tmp_, mqtt_port(), std::move(flags), std::move(env)));
  return devsims_.size() - 1;
}

void Stack::stop_daemons_and_check() {
  if (stopped_) return;
  stopped_ = true;
  auto check = [](Process& p) {
    // Already-exited daemons report their earlier status (the test decides
    // whether that was expected, e.g. the SIGTERM test).
    bool was_running = p.running();
    int status = p.stop(SIGTERM, 10s);
    if (was_running) {
      EXPECT_EQ(status, 0) << p.name() << " did not exit 0 on SIGTERM; log tail:\n" << p.log_tail();
    }
    std::string report = p.sanitizer_report();
    EXPECT_TRUE(report.empty()) << p.name() << " sanitizer report:\n" << report;
  };
  for (auto& d : devsims_) check(d);
  for (auto& b : bridges_) check(b);
  for (auto& g : gateways_) check(g);
}

std::string Stack::logs(std::size_t lines) {
  std::ostringstream out;
  auto dump = [&](const Process& p) { out << "---- " << p.name() << "\n" << p.log_tail(lines) << "\n"; };
  for (auto& g : gateways_) dump(g);
  for (auto& b : bridges_) dump(b);
  for (auto& d : devsims_) dump(d);
  return out.str();
}

// ---------------------------------------------------------------- metrics

std::optional<double> metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      try {
        return std::stod(line.substr(series.size() + 1));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

bool Stack::restart_redis_holding_the_bridge(double records) {
  bridge().signal(SIGSTOP);
  redis().start();
  const bool restored = test::eventually(
      [&] { return metric(gateway_port(), "boxgate_command_records_restored_total").value_or(0) == records; }, 10s);
  bridge().signal(SIGCONT);
  return restored;
}

void StackTest::set_presence(const std::string& box, bool online, int gw) {
  MqttProbe probe(stack->mqtt_port());
  test::MqttPublishOptions retained;
  retained.retained = true;
  probe.publish("dev/" + box + "/status", online ? "online" : "offline", 1, retained);
  HttpResult last;
  ASSERT_TRUE(test::eventually(
      [&] {
        last = test::get(gw, device_path(box));
        return last.status == 200 && last.json().value("online", !online) == online;
      },
      10s))
      << box << ": " << last.status << " " << last.body << "\n"
      << stack->logs();
}

std::optional<double> metric(int port, const std::string& series) {
  HttpResult r = get(port, "/metrics");
  if (r.status != 200) return std::nullopt;
  return metric(r.body, series);
}

std::string last_level(const std::string& topic) {
  auto slash = topic.rfind('/');
  return slash == std::string::npos ? topic : topic.substr(slash + 1);
}

bool is_uuid_v4_lowercase(const std::string& s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

// ---------------------------------------------------------------- ProbeDevice

ProbeDevice::ProbeDevice(int mqtt_port, const std::string& filter, ReplyFn reply, int qos)
    : probe_(std::make_unique<MqttProbe>(mqtt_port)), reply_(std::move(reply)) {
  probe_->subscribe(filter, qos);
  thread_ = std::thread([this] { run(); });
}

ProbeDevice::ProbeDevice(test::MqttProbeOptions options, const std::string& filter, ReplyFn reply, int qos)
    : probe_(std::make_unique<MqttProbe>(std::move(options))), reply_(std::move(reply)) {
  probe_->subscribe(filter, qos);
  thread_ = std::thread([this] { run(); });
}

ProbeDevice::~ProbeDevice() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ProbeDevice::run() {
  std::size_t handled = 0;
  while (!stop_) {
    if (!probe_->wait_for(handled + 1, 20ms)) continue;
    auto messages = probe_->messages();
    for (; handled < messages.size(); ++handled) {
      if (!reply_) continue;
      auto answer = reply_(messages[handled]);
      if (!answer) continue;
      try {
        probe_->publish(answer->first, answer->second, 1);
        ++replied_;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "ProbeDevice could not reply: " << e.what();
      }
    }
  }
}

ProbeDevice::ReplyFn ProbeDevice::echo() {
  return [](const MqttMessage& m) -> std::optional<std::pair<std::string, std::string>> {
    std::string topic = test::response_topic_for(m.topic);
    if (topic.empty()) return std::nullopt;
    return std::make_pair(topic, R"({"id":")" + last_level(m.topic) + R"(","result":{"ok":true}})");
  };
}

bool run_until(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool held = false;
  Timer check(loop, [&] {
    held = done();
    if (held || std::chrono::steady_clock::now() >= deadline) loop.stop();
  });
  check.start(10ms, true);
  loop.run();
  return held;
}

}  // namespace boxgate::itest
