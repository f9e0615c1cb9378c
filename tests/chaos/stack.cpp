#include "stack.hpp"

#include <csignal>
#include <stdexcept>
#include <thread>

namespace boxgate::chaos {

namespace {

constexpr FaultKind kCycle[kFaultKinds] = {FaultKind::bridge_kill,  FaultKind::redis_kill,
                                           FaultKind::mosquitto_kill, FaultKind::gateway_kill,
                                           FaultKind::redis_stop,   FaultKind::gateway_term};
// Redis frozen this long: longer than the daemons' default redis_dead_after_ms
// (1 s), as a fork or a slow command can freeze a real server.
constexpr auto kRedisStall = 1500ms;
// A gateway drains its in-flight commands (at most their 2 s timeout) on SIGTERM.
constexpr auto kTermGrace = 15s;
// Info, not the fixtures' debug: debug logs a line per command, and the run
// sends thousands a second.
const std::vector<std::string> kQuiet = {"--log-level", "info"};

std::vector<std::string> with_quiet(std::vector<std::string> flags) {
  flags.insert(flags.end(), kQuiet.begin(), kQuiet.end());
  return flags;
}

std::string box_list() {
  std::string out;
  for (int i = 1; i <= ChaosStack::kDevices; ++i) out += (i > 1 ? ",box-" : "box-") + std::to_string(i);
  return out;
}

void require_ready(test::Process& p, int port) {
  if (!test::wait_ready(port, 20s)) {
    throw std::runtime_error(p.name() + " not ready within 20 s; log tail:\n" + p.log_tail());
  }
}

}  // namespace

const char* fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::bridge_kill: return "bridge_kill9";
    case FaultKind::redis_kill: return "redis_kill9";
    case FaultKind::mosquitto_kill: return "mosquitto_kill9";
    case FaultKind::gateway_kill: return "gateway_kill9";
    case FaultKind::redis_stop: return "redis_sigstop";
    case FaultKind::gateway_term: return "gateway_sigterm";
  }
  return "?";
}

ChaosStack::ChaosStack(const test::TempDir& dir)
    : dir_(dir),
      redis_(std::make_unique<test::RedisServer>(dir)),
      // The fixture's config: max_inflight_messages 0, max_queued_messages
      // 100000, set_tcp_nodelay true, so the broker never drops under load.
      mqtt_(std::make_unique<test::Mosquitto>(dir)) {
  for (int i = 0; i < kBridges; ++i) {
    bridge_ports_.push_back(test::free_port());
    bridges_.push_back(test::start_bridge(dir_, bridge_ports_.back(), redis_->port(), mqtt_->port(),
                                          with_quiet({"--share-group", "chaos"})));
  }
  for (int i = 0; i < kGateways; ++i) {
    gateway_ports_.push_back(test::free_port());
    gateways_.push_back(
        test::start_gateway(dir_, gateway_ports_.back(), redis_->port(), mqtt_->port(), with_quiet({})));
  }
  devsim_ = test::start_devsim(dir_, mqtt_->port(), with_quiet({"--box-list", box_list(), "--delay-ms", "0"}));
  for (int i = 0; i < kBridges; ++i) require_ready(bridges_[i], bridge_ports_[i]);
  for (int i = 0; i < kGateways; ++i) require_ready(gateways_[i], gateway_ports_[i]);
}

ChaosStack::~ChaosStack() = default;  // members go newest first: devsim, gateways, bridges, brokers

void ChaosStack::restart_daemon(test::Process& p, int port) {
  p.start();
  if (!test::eventually([&] { return !p.running() || test::wait_healthy(port, 0ms); }, 15s, 10ms) ||
      !p.running()) {
    throw std::runtime_error(p.name() + " did not answer /healthz after a restart; log tail:\n" + p.log_tail());
  }
}

Fault ChaosStack::inject(std::size_t n, std::chrono::milliseconds downtime) {
  Fault f;
  f.kind = kCycle[n % kFaultKinds];
  const std::size_t alt = (n / kFaultKinds) % 2;  // which replica, alternating per cycle
  f.start = Clock::now();
  switch (f.kind) {
    case FaultKind::bridge_kill:
      f.target = bridge(alt).name();
      bridge(alt).kill9();
      std::this_thread::sleep_for(downtime);
      restart_daemon(bridge(alt), bridge_ports_[alt]);
      break;
    case FaultKind::redis_kill:
      f.target = redis_->process().name();
      redis_->kill9();
      std::this_thread::sleep_for(downtime);
      redis_->start();  // same port; waits for PING
      break;
    case FaultKind::mosquitto_kill:
      f.target = mqtt_->process().name();
      mqtt_->kill9();
      std::this_thread::sleep_for(downtime);
      mqtt_->start();  // same port; waits until it listens
      break;
    case FaultKind::gateway_kill:
      f.target = gateway(alt).name();
      gateway(alt).kill9();
      std::this_thread::sleep_for(downtime);
      restart_daemon(gateway(alt), gateway_ports_[alt]);
      break;
    case FaultKind::redis_stop:
      f.target = redis_->process().name();
      redis_->process().signal(SIGSTOP);
      std::this_thread::sleep_for(kRedisStall);
      redis_->process().signal(SIGCONT);
      break;
    case FaultKind::gateway_term: {
      test::Process& g = gateway(1 - alt);  // the replica the last kill spared
      f.target = g.name();
      if (int status = g.stop(SIGTERM, kTermGrace); status != 0) {
        f.problem = g.name() + " exited with status " + std::to_string(status) + " on SIGTERM";
      }
      std::this_thread::sleep_for(downtime);
      restart_daemon(g, gateway_ports_[1 - alt]);
      break;
    }
  }
  f.restored = Clock::now();
  return f;
}

std::vector<std::string> ChaosStack::revive() {
  std::vector<std::string> exits;
  auto check = [&](test::Process& p, auto restart) {
    if (p.running()) return;
    exits.push_back(p.name() + " exited with status " + std::to_string(p.exit_status().value_or(-1)));
    restart();
  };
  check(redis_->process(), [&] { redis_->start(); });
  check(mqtt_->process(), [&] { mqtt_->start(); });
  for (int i = 0; i < kBridges; ++i) check(bridges_[i], [&] { restart_daemon(bridges_[i], bridge_ports_[i]); });
  for (int i = 0; i < kGateways; ++i) check(gateways_[i], [&] { restart_daemon(gateways_[i], gateway_ports_[i]); });
  check(devsim_, [&] {
    const std::size_t from = devsim_.log_size();
    devsim_.start();
    if (!devsim_.wait_for_log("devsim ready", 15s, from)) {
      throw std::runtime_error("devsim did not restart; log tail:\n" + devsim_.log_tail());
    }
  });
  return exits;
}

std::vector<std::string> ChaosStack::stop_daemons() {
  std::vector<std::string> problems;
  auto stop = [&](test::Process& p) {
    if (!p.running()) {
      problems.push_back(p.name() + " had exited (status " + std::to_string(p.exit_status().value_or(-1)) + ")");
      return;
    }
    if (int status = p.stop(SIGTERM, kTermGrace); status != 0) {
      problems.push_back(p.name() + " exited with status " + std::to_string(status) + " on SIGTERM");
    }
  };
  stop(devsim_);
  for (auto& g : gateways_) stop(g);
  for (auto& b : bridges_) stop(b);
  return problems;
}

}  // namespace boxgate::chaos
