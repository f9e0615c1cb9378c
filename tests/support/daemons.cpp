#include "support/daemons.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "support/net.hpp"

#ifndef BOXGATE_BIN_DIR
#error "BOXGATE_BIN_DIR must be defined by the build (tests/support/CMakeLists.txt)"
#endif

namespace boxgate::test {

namespace {

std::string bin_dir() {
  if (const char* env = std::getenv("BOXGATE_BIN_DIR"); env && *env) return env;
  return BOXGATE_BIN_DIR;
}

bool get_200(int port, const char* path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::milliseconds(500));
  client.set_read_timeout(std::chrono::seconds(2));
  auto res = client.Get(path);
  return res && res->status == 200;
}

Process start_server(const std::string& name, const std::string& binary, const TempDir& tmp, int http_port,
                     int redis_port, int mqtt_port, std::vector<std::string> extra_flags,
                     std::vector<std::string> env, int health_port) {
  std::vector<std::string> argv{binary,
                                "--http-host", "127.0.0.1",
                                "--http-port", std::to_string(http_port),
                                "--redis-host", "127.0.0.1",
                                "--redis-port", std::to_string(redis_port),
                                "--mqtt-uri", "tcp://127.0.0.1:" + std::to_string(mqtt_port),
                                "--log-level", "debug"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  Process process(name + "-" + std::to_string(http_port), std::move(argv), tmp.path(), std::move(env));
  bool up = eventually([&] { return !process.running() || get_200(health_port, "/healthz"); }, 15s, 20ms);
  if (!up || !process.running()) {
    std::string status = process.running() ? "running" : "exited " + std::to_string(process.exit_status().value_or(-1));
    throw std::runtime_error(name + " on port " + std::to_string(http_port) + " did not answer /healthz (" +
                             status + "); log tail:\n" + process.log_tail());
  }
  return process;
}

}  // namespace

std::string gateway_binary() { return bin_dir() + "/gateway/boxgate-gateway"; }
std::string bridge_binary() { return bin_dir() + "/bridge/boxgate-bridge"; }
std::string devsim_binary() { return bin_dir() + "/devsim/boxgate-devsim"; }

Process start_gateway(const TempDir& tmp, int http_port, int redis_port, int mqtt_port,
                      std::vector<std::string> extra_flags, std::vector<std::string> env, int ops_port) {
  return start_server("gateway", gateway_binary(), tmp, http_port, redis_port, mqtt_port, std::move(extra_flags),
                      std::move(env), ops_port ? ops_port : http_port);
}

Process start_bridge(const TempDir& tmp, int http_port, int redis_port, int mqtt_port,
                     std::vector<std::string> extra_flags, std::vector<std::string> env) {
  return start_server("bridge", bridge_binary(), tmp, http_port, redis_port, mqtt_port, std::move(extra_flags),
                      std::move(env), http_port);
}

Process start_devsim(const TempDir& tmp, int mqtt_port, std::vector<std::string> flags,
                     std::vector<std::string> env) {
  static std::atomic<int> counter{0};
  std::vector<std::string> argv{devsim_binary(), "--mqtt-uri", "tcp://127.0.0.1:" + std::to_string(mqtt_port)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Process process("devsim-" + std::to_string(counter++), std::move(argv), tmp.path(), std::move(env));
  bool ready = eventually([&] { return !process.running() || process.wait_for_log("devsim ready", 0ms); }, 15s, 20ms);
  if (!ready || !process.running()) {
    throw std::runtime_error("devsim did not log 'devsim ready'; log tail:\n" + process.log_tail());
  }
  return process;
}

bool wait_ready(int http_port, std::chrono::milliseconds timeout) {
  return eventually([http_port] { return get_200(http_port, "/readyz"); }, timeout, 50ms);
}

bool wait_healthy(int http_port, std::chrono::milliseconds timeout) {
  return eventually([http_port] { return get_200(http_port, "/healthz"); }, timeout, 20ms);
}

httplib::Client http_client(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(70));
  client.set_write_timeout(std::chrono::seconds(10));
  return client;
}

}  // namespace boxgate::test
