#pragma once
// A real mosquitto broker for integration tests, listening on 127.0.0.1.
//
// Callers: the test thread that owns it (not thread-safe). The config written
// to <dir>/mosquitto-<port>.conf lifts mosquitto's per-client limits
// (max_inflight_messages 0, max_queued_messages 100000, set_tcp_nodelay true)
// so tests measure boxgate, not broker drops; persistence is off. When the
// test runs as root it adds `user root` (mosquitto 2.0 started as root would
// otherwise switch to the user `mosquitto`). The broker child is stopped in
// the destructor (see Process).

#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/tempdir.hpp"

namespace boxgate::test {

class Mosquitto {
 public:
  // port 0 picks a free port. `extra_config` lines are appended to the config.
  // Starts and waits for the port (10 s), else throws with the log tail.
  explicit Mosquitto(const TempDir& dir, int port = 0, std::vector<std::string> extra_config = {});
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  int port() const { return port_; }
  // "tcp://127.0.0.1:<port>"
  std::string uri() const;
  bool running() { return process_.running(); }
  int stop() { return process_.stop(); }
  int kill9() { return process_.kill9(); }
  // Starts again on the same port (after stop/kill9) and waits for the port.
  void start();
  Process& process() { return process_; }
  const std::string& config_path() const { return config_path_; }

 private:
  void wait_listening();

  int port_;
  std::string config_path_;
  Process process_;
};

// The config text the fixture uses (also the model for scripts/run).
std::string mosquitto_config(int port, const std::vector<std::string>& extra_config = {});

}  // namespace boxgate::test
