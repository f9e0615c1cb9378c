#pragma once
// Readiness: the state of each dependency and of the drain, as /readyz and the
// boxgate_dependency_up / boxgate_reconnects_total metrics report it.
// Dependencies are declared at start-up; their state may then be updated and
// read from any thread (atomics; the reason under a mutex). A dependency is
// up, stalled (connected but not answering: not ready, yet not torn down) or
// down, and when down it may carry a reason: one line for operators (such as
// "tls: certificate verify failed"), which /readyz shows as "<name>_error".
// The reason holds no secret: the caller words it. The change listener runs
// on the thread that changed the state.

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "boxgate/ops/metrics.hpp"

namespace boxgate::ops {

class Readiness;

class Dependency {
 public:
  enum class State { down, stalled, up };
  Dependency(Readiness& owner, std::string name, Gauge& up, Counter& reconnects)
      : owner_(owner), name_(std::move(name)), up_(up), reconnects_(reconnects) {}
  const std::string& name() const noexcept { return name_; }
  // Connected (or not); a new connection is never stalled. Up clears the
  // reason; down keeps the last one (still the last failure seen).
  void set_up(bool up) noexcept;
  // Down, and why ("" leaves the reason unknown).
  void set_down(const std::string& reason);
  // The reason of the last failure while not up; "" when up or unknown.
  std::string reason() const;
  // Connected but not answering (or answering again).
  void set_stalled(bool stalled) noexcept;
  bool up() const noexcept { return state_.load() == State::up; }
  State state() const noexcept { return state_.load(); }
  void count_reconnect() noexcept { reconnects_.inc(); }

 private:
  void set(State state) noexcept;
  Readiness& owner_;
  std::string name_;
  Gauge& up_;
  Counter& reconnects_;
  std::atomic<State> state_{State::down};
  mutable std::mutex reason_mutex_;
  std::string reason_;  // guarded by reason_mutex_
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
  // Called after any dependency changed state (set before start-up ends).
  void on_change(std::function<void()> listener) { listener_ = std::move(listener); }

 private:
  friend class Dependency;
  Metrics& metrics_;
  std::function<void()> listener_;
  std::deque<Dependency> dependencies_;
  std::atomic<bool> draining_{false};
};

}  // namespace boxgate::ops
