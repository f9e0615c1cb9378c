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
  // The worst state wins: down, then stalled, then up.
  std::map<std::string, Dependency::State> states;
  for (const auto& d : dependencies_) {
    auto [it, first] = states.try_emplace(d.name().substr(0, d.name().find('_')), Dependency::State::up);
    it->second = std::min(it->second, d.state());
  }
  static const char* names[] = {"down", "stalled", "up"};
  for (const auto& [key, state] : states) body[key] = names[static_cast<int>(state)];
  return {ready ? 200 : 503, body.dump()};
}

}  // namespace boxgate::ops
