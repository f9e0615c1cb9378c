#pragma once
// The reconnect delay every boxgate connection uses (Redis and MQTT): one
// formula in one place, so all of them back off the same way.
//
//   attempt 0:  0 ms -- the first retry after a lost connection is immediate
//               (a restarted peer is usually back within milliseconds)
//   attempt n:  full = min(cap_ms, 25 ms * 2^n), delay uniform in [full/2, full]
//               (25-50, 50-100, 100-200 ms, ... up to the cap; the daemons'
//               default cap is 400 ms, so a peer that returns is found
//               within 0.4 s, at 2.5-5 attempts a second while it is away)
//
// The random half spreads the reconnects of many replicas after a shared
// outage, so they do not all hit the server in the same millisecond.
// Thread-safe: the random generator is per thread.

#include <chrono>
#include <cstdint>

namespace boxgate {

// attempt: 0 for the first retry after a loss, then 1, 2, ...
std::chrono::milliseconds jittered_backoff(int attempt, std::int64_t cap_ms);

}  // namespace boxgate
