#include "boxgate/ops/readiness.hpp"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

namespace boxgate::ops {

Dependency& Readiness::dependency(const std::string& name) {
  auto& up = metrics_.gauge("boxgate_dependency_up", "1 while the connection to the dependency is up",
                            "dependency=\"" + name + "\"");
  auto& reconnects = metrics_.counter("boxgate_reconnects_total", "reconnections made to the dependency",
                                      "dependency=\"" + name + "\"");
  return dependencies_.emplace_back(*this, name, up, reconnects);
}

void Dependency::set_up(bool up) noexcept {
  if (up) {
    std::lock_guard<std::mutex> lock(reason_mutex_);
    reason_.clear();
  }
  set(up ? State::up : State::down);
}

void Dependency::set_down(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(reason_mutex_);
    reason_ = reason;
  }
  set(State::down);
}

std::string Dependency::reason() const {
  if (state_.load() == State::up) return {};
  std::lock_guard<std::mutex> lock(reason_mutex_);
  return reason_;
}

void Dependency::set_stalled(bool stalled) noexcept {
  State now = state_.load();
  if (stalled && now == State::up) set(State::stalled);
  if (!stalled && now == State::stalled) set(State::up);
}

void Dependency::set(State state) noexcept {
  if (state_.exchange(state) == state) return;
  up_.set(state == State::up ? 1 : 0);
  if (owner_.listener_) owner_.listener_();
}

bool Readiness::all_up() const noexcept {
  for (const auto& d : dependencies_) {
    if (!d.up()) return false;
  }
  return true;
}

std::pair<int, std::string> Readiness::report() const {
  nlohmann::json body;
  bool ready = all_up() && !draining();
  body["status"] = draining() ? "draining" : ready ? "ready" : "not_ready";
  // The contract names "redis" and "mqtt"; a Redis dependency split over two
  // connections reports "up" only when both are.
  // The worst state wins: down, then stalled, then up. A dependency that is
  // not up and knows why adds "<name>_error" (the worst one's reason; the
  // first declared among equals).
  struct Summary {
    Dependency::State state = Dependency::State::up;
    std::string reason;
  };
  std::map<std::string, Summary> states;
  for (const auto& d : dependencies_) {
    auto& summary = states[d.name().substr(0, d.name().find('_'))];
    Dependency::State state = d.state();
    std::string reason = d.reason();
    if (state < summary.state) {
      summary = {state, std::move(reason)};
    } else if (state == summary.state && summary.reason.empty()) {
      summary.reason = std::move(reason);
    }
  }
  static const char* names[] = {"down", "stalled", "up"};
  for (const auto& [key, summary] : states) {
    body[key] = names[static_cast<int>(summary.state)];
    if (summary.state != Dependency::State::up && !summary.reason.empty()) body[key + "_error"] = summary.reason;
  }
  return {ready ? 200 : 503, body.dump()};
}

}  // namespace boxgate::ops
