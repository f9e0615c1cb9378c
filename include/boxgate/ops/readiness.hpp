#pragma once
// Readiness: the state of each dependency and of the drain, as /readyz and the
// boxgate_dependency_up / boxgate_reconnects_total metrics report it.
// Dependencies are declared at start-up; their state may then be updated and
// read from any thread (atomics).

#include <atomic>
#include <deque>
#include <string>
#include <utility>

#include "boxgate/ops/metrics.hpp"

namespace boxgate::ops {

class Dependency {
 public:
  Dependency(std::string name, Gauge& up, Counter& reconnects)
      : name_(std::move(name)), up_(up), reconnects_(reconnects) {}
  const std::string& name() const noexcept { return name_; }
  void set_up(bool up) noexcept { up_.set(up ? 1 : 0); }
  bool up() const noexcept { return up_.value() != 0; }
  void count_reconnect() noexcept { reconnects_.inc(); }

 private:
  std::string name_;
  Gauge& up_;
  Counter& reconnects_;
};

class Readiness {
 public:
  explicit Readiness(Metrics& metrics) : metrics_(metrics) {}
  // Declare a dependency ("redis", "redis_subscriber", "mqtt"), down until set_up(true).
  Dependency& dependency(const std::string& name);
  void start_draining() noexcept { draining_.store(true); }
  bool draining() const noexcept { return draining_.load(); }
  bool all_up() const noexcept;
  // Status code and JSON body of GET /readyz.
  std::pair<int, std::string> report() const;

 private:
  Metrics& metrics_;
  std::deque<Dependency> dependencies_;
  std::atomic<bool> draining_{false};
};

}  // namespace boxgate::ops
