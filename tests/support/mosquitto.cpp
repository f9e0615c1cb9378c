#include "support/mosquitto.hpp"

#include <unistd.h>

#include <stdexcept>

#include "support/net.hpp"

namespace boxgate::test {

std::string mosquitto_config(int port, const std::vector<std::string>& extra_config) {
  std::string conf = "listener " + std::to_string(port) + " 127.0.0.1\n" +
                     "allow_anonymous true\n"
                     "max_inflight_messages 0\n"
                     "max_queued_messages 100000\n"
                     "set_tcp_nodelay true\n"
                     "persistence false\n"
                     "log_dest stderr\n"
                     "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  // Started as root, mosquitto 2.0 drops to the user `mosquitto` unless told otherwise.
  if (::geteuid() == 0) conf += "user root\n";
  for (const auto& line : extra_config) conf += line + "\n";
  return conf;
}

Mosquitto::Mosquitto(const TempDir& dir, int port, std::vector<std::string> extra_config)
    : port_(port > 0 ? port : free_port()) {
  const std::string name = "mosquitto-" + std::to_string(port_);
  config_path_ = dir.write(name + ".conf", mosquitto_config(port_, extra_config));
  process_ = Process(name, {"mosquitto", "-c", config_path_}, dir.path());
  wait_listening();
}

std::string Mosquitto::uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

void Mosquitto::start() {
  process_.start();
  wait_listening();
}

void Mosquitto::wait_listening() {
  bool ok = eventually([this] { return !process_.running() || wait_for_port(port_, 0ms); }, 10s, 10ms);
  if (!ok || !process_.running()) {
    throw std::runtime_error("mosquitto on port " + std::to_string(port_) + " did not start; log:\n" +
                             process_.log_tail());
  }
}

}  // namespace boxgate::test
