#include "boxgate/backoff.hpp"

#include <algorithm>
#include <random>

namespace boxgate {

std::chrono::milliseconds jittered_backoff(int attempt, std::int64_t cap_ms) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  // The shift stops at 2^16 so a long outage cannot overflow it.
  std::int64_t full = std::min<std::int64_t>(cap_ms, 100LL << std::clamp(attempt, 0, 16));
  std::uniform_int_distribution<std::int64_t> jitter(full / 2, full);
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace boxgate
