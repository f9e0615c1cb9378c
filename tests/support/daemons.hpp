#pragma once
// Start the boxgate daemons (gateway, bridge, devsim) as child processes and
// talk HTTP to them.
//
// Callers: the test thread. Each start_* returns a running Process (see
// process.hpp: the child is stopped with SIGTERM, then SIGKILL after 5 s, in
// the Process destructor) or throws std::runtime_error with the log tail if
// the daemon did not come up in time. Binaries are looked up in
// BOXGATE_BIN_DIR (compile-time: <build>/src; the environment variable of the
// same name overrides it). Logs go to <tmp>/<daemon>-<port>.log.

#include <chrono>
#include <string>
#include <vector>

#include <httplib.h>

#include "support/process.hpp"
#include "support/tempdir.hpp"

namespace boxgate::test {

using namespace std::chrono_literals;

// <bin dir>/gateway/boxgate-gateway, <bin dir>/bridge/boxgate-bridge, <bin dir>/devsim/boxgate-devsim.
std::string gateway_binary();
std::string bridge_binary();
std::string devsim_binary();

// boxgate-gateway --http-host 127.0.0.1 --http-port P --redis-host 127.0.0.1
//   --redis-port R --mqtt-uri tcp://127.0.0.1:M --log-level debug <extra_flags>
// then waits (15 s) until GET /healthz answers 200 -- on `ops_port` when the
// flags give the gateway a separate ops listener (0: on http_port). Readiness
// (Redis and MQTT up) is not awaited: call wait_ready() when the test needs it.
Process start_gateway(const TempDir& tmp, int http_port, int redis_port, int mqtt_port,
                      std::vector<std::string> extra_flags = {}, std::vector<std::string> env = {},
                      int ops_port = 0);

// The same for boxgate-bridge; http_port is its ops port.
Process start_bridge(const TempDir& tmp, int http_port, int redis_port, int mqtt_port,
                     std::vector<std::string> extra_flags = {}, std::vector<std::string> env = {});

// boxgate-devsim --mqtt-uri tcp://127.0.0.1:M <flags>, then waits (15 s) for
// the log line containing "devsim ready".
Process start_devsim(const TempDir& tmp, int mqtt_port, std::vector<std::string> flags = {},
                     std::vector<std::string> env = {});

// Polls GET /readyz on 127.0.0.1:http_port until it answers 200.
bool wait_ready(int http_port, std::chrono::milliseconds timeout = 15s);
// Polls GET /healthz until it answers 200.
bool wait_healthy(int http_port, std::chrono::milliseconds timeout = 15s);

// A client for 127.0.0.1:port: connect timeout 2 s, read 70 s (longer than the
// largest command timeout), write 10 s. One client per thread.
httplib::Client http_client(int port);

}  // namespace boxgate::test
