#pragma once
// RateLimiter: each API token's request rate, shared by every gateway of a
// deployment (docs/security.md, "Per-token limits"). One token bucket per
// token in Redis, {prefix}/_tokens/<name>/rate (a box id cannot start with
// '_', so no box key can be it), taken in one round trip by a Lua script
// (EVALSHA; EVAL when Redis answers NOSCRIPT). One key per token keeps the
// script on one Redis Cluster slot. The clock is Redis's (TIME), so replicas
// whose clocks differ still share one bucket fairly.
//
// Redis unreachable or failing: the request goes on (fail open) and is
// counted in boxgate_rate_limit_skipped_total. The limit guards the capacity
// of the whole deployment, not a secret; refusing every request while Redis
// is away would also refuse the commands that dependency_grace_ms is there
// to hold through a Redis blip, and the per-gateway shares (pending commands,
// streams) still bound what one token can hold meanwhile.
//
// Thread ownership: loop thread only; `done` runs on the loop thread,
// possibly from inside admit().

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "api/auth.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"

namespace boxgate::gateway {

class RateLimiter {
 public:
  // nullopt: the request may go on; otherwise how long until one may.
  using Done = std::function<void(std::optional<std::chrono::milliseconds> retry_after)>;

  RateLimiter(std::string prefix, redis::Commands& redis, ops::Metrics& metrics);

  // Takes one request from `token`'s bucket (at once when its rate is 0).
  void admit(const ApiToken& token, Done done);

  // The script (KEYS[1] the bucket, ARGV rate and burst; returns 0 or the
  // milliseconds until a request may go).
  static const char* const kScript;

 private:
  void send(std::string key, std::string rate, std::string burst, bool use_eval, Done done);

  std::string prefix_;
  redis::Commands& redis_;
  std::string script_sha_;
  ops::Counter& limited_;
  ops::Counter& skipped_;
};

}  // namespace boxgate::gateway
