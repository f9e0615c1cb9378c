#pragma once
// The chaos run's stack and its nemesis: redis-server,
// mosquitto, two bridges in one shared-subscription group, two gateways and a
// boxgate-devsim playing 8 echo devices (box-1..box-8), all on 127.0.0.1 with
// free ports, from the tests/support fixtures (daemons from BOXGATE_BIN_DIR).
//
// Thread ownership: the thread that built a ChaosStack hands it to one
// nemesis thread, which alone calls inject()/revive() (the Process objects are
// not thread-safe) until it is joined; then the owner calls stop_daemons() and
// destroys it. The ports never change after construction: any thread may read
// them. Every child is stopped by its pid in the destructor, newest first
// (daemons before brokers), whatever happened before.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace boxgate::chaos {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The faults, in the order the nemesis cycles through them.
enum class FaultKind { bridge_kill, redis_kill, mosquitto_kill, gateway_kill, redis_stop, gateway_term };
constexpr std::size_t kFaultKinds = 6;
const char* fault_name(FaultKind kind);

struct Fault {
  FaultKind kind{};
  std::string target;          // the process hit, e.g. "gateway-40123"
  Clock::time_point start;     // the signal was sent
  Clock::time_point restored;  // the process was back: listening (restarted) or SIGCONT sent
  std::string problem;         // set when the target misbehaved (e.g. a SIGTERM exit status other than 0)
};

class ChaosStack {
 public:
  static constexpr int kGateways = 2;
  static constexpr int kBridges = 2;
  static constexpr int kDevices = 8;

  // Starts everything and waits until each gateway and bridge is ready;
  // throws std::runtime_error (with a log tail) when something does not come up.
  explicit ChaosStack(const test::TempDir& dir);
  ~ChaosStack();
  ChaosStack(const ChaosStack&) = delete;
  ChaosStack& operator=(const ChaosStack&) = delete;

  const std::vector<int>& gateway_ports() const { return gateway_ports_; }
  int mqtt_port() const { return mqtt_->port(); }

  // Fault number n of the cycle: the kind is n % kFaultKinds; bridge and
  // gateway faults alternate between the replicas. Kills or stops the target,
  // waits `downtime` and starts it again on the same port (SIGSTOP: resumes it
  // after 1.5 s), and returns once it is back (a daemon: /healthz 200; Redis:
  // PING; mosquitto: its port). Throws std::runtime_error when it does not
  // come back (the stack is broken: the run cannot go on).
  Fault inject(std::size_t n, std::chrono::milliseconds downtime);

  // Restarts any process that exited although no fault hit it, and returns one
  // line per such exit ("gateway-40123 exited with status 134").
  std::vector<std::string> revive();

  // SIGTERM to every daemon (devsim, gateways, bridges) and waits for each;
  // one line per daemon that had died or did not exit 0.
  std::vector<std::string> stop_daemons();

 private:
  void restart_daemon(test::Process& p, int port);
  test::Process& bridge(std::size_t i) { return bridges_.at(i); }
  test::Process& gateway(std::size_t i) { return gateways_.at(i); }

  const test::TempDir& dir_;
  std::unique_ptr<test::RedisServer> redis_;
  std::unique_ptr<test::Mosquitto> mqtt_;
  std::vector<test::Process> bridges_;
  std::vector<int> bridge_ports_;
  std::vector<test::Process> gateways_;
  std::vector<int> gateway_ports_;
  test::Process devsim_;
};

}  // namespace boxgate::chaos
