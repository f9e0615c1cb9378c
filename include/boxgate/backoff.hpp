#pragma once
// The reconnect delay every boxgate connection uses (Redis and MQTT): one
// formula in one place, so all of them back off the same way.
//
//   full  = min(cap_ms, 100 ms * 2^attempt)
//   delay = uniform in [full / 2, full]
//
// The random half spreads the reconnects of many replicas after a shared
// outage, so they do not all hit the server in the same millisecond.
// Thread-safe: the random generator is per thread.

#include <chrono>
#include <cstdint>

namespace boxgate {

// attempt: 0 for the first retry after a failure, then 1, 2, ...
std::chrono::milliseconds jittered_backoff(int attempt, std::int64_t cap_ms);

}  // namespace boxgate
