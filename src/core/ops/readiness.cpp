#include "boxgate/ops/readiness.hpp"

#include <map>

#include <nlohmann/json.hpp>

namespace boxgate::ops {

Dependency& Readiness::dependency(const std::string& name) {
  auto& up = metrics_.gauge("boxgate_dependency_up", "1 while the connection to the dependency is up",
                            "dependency=\"" + name + "\"");
  auto& reconnects = metrics_.counter("boxgate_reconnects_total", "reconnections made to the dependency",
                                      "dependency=\"" + name + "\"");
  return dependencies_.emplace_back(name, up, reconnects);
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
  std::map<std::string, bool> up;
  for (const auto& d : dependencies_) {
    auto [it, first] = up.try_emplace(d.name().substr(0, d.name().find('_')), true);
    it->second = it->second && d.up();
  }
  for (const auto& [key, is_up] : up) body[key] = is_up ? "up" : "down";
  return {ready ? 200 : 503, body.dump()};
}

}  // namespace boxgate::ops
