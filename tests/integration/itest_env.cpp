#include "itest_env.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

namespace boxgate::itest {

// ---------------------------------------------------------------- Stack

Stack::Stack(const std::string& tag)
    : tmp_(std::make_unique<test::TempDir>(tag)),
      redis_(std::make_unique<test::RedisServer>(*tmp_)),
      mqtt_(std::make_unique<test::Mosquitto>(*tmp_)) {}

Stack::~Stack() {
  // Daemons first (reverse start order), then the brokers, then the directory.
  devsims_.clear();
  while (!bridges_.empty()) bridges_.pop_back();
  while (!gateways_.empty()) gateways_.pop_back();
  mqtt_.reset();
  redis_.reset();
  tmp_.reset();
}

int Stack::add_gateway(std::vector<std::string> extra_flags, bool wait_ready) {
  int port = test::free_port();
  gateways_.push_back(test::start_gateway(*tmp_, port, redis_->port(), mqtt_->port(), std::move(extra_flags)));
  gateway_ports_.push_back(port);
  if (wait_ready && !test::wait_ready(port, 15s)) {
    throw std::runtime_error("gateway on port " + std::to_string(port) + " not ready; log:\n" +
                             gateways_.back().log_tail());
  }
  return port;
}

int Stack::add_bridge(std::vector<std::string> extra_flags, bool wait_ready) {
  int port = test::free_port();
  bridges_.push_back(test::start_bridge(*tmp_, port, redis_->port(), mqtt_->port(), std::move(extra_flags)));
  bridge_ports_.push_back(port);
  if (wait_ready && !test::wait_ready(port, 15s)) {
    throw std::runtime_error("bridge on port " + std::to_string(port) + " not ready; log:\n" +
                             bridges_.back().log_tail());
  }
  return port;
}

std::size_t Stack::add_devsim(std::vector<std::string> flags) {
  devsims_.push_back(test::start_devsim(*tmp_, mqtt_->port(), std::move(flags)));
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

}  // namespace boxgate::itest
