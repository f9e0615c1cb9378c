#include "api/rate_limiter.hpp"

#include <exception>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include <hiredis/hiredis.h>

#include "boxgate/digest.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {

// The name Redis gives the script (EVALSHA); "" when libcrypto fails, and
// then only EVAL is sent.
std::string sha1_hex(std::string_view text) {
  try {
    return digest::to_hex(digest::sha1(text));
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace

// The bucket is a hash: l, its level in thousandths of a request (whole
// numbers, exact in a Lua double), and t, Redis's clock in ms when it was
// last taken from. A full bucket is no key: the key expires once it would
// have refilled, so an idle token costs Redis nothing. A refused request
// writes nothing. replicate_commands: Redis 5 and 6 replicate a script that
// reads TIME only by its effects (Redis 7 always does).
const char* const RateLimiter::kScript =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local rate = tonumber(ARGV[1])\n"
    "local cap = tonumber(ARGV[2]) * 1000\n"
    "local clock = redis.call('TIME')\n"
    "local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)\n"
    "local saved = redis.call('HMGET', KEYS[1], 'l', 't')\n"
    "local level = cap\n"
    "if saved[1] and saved[2] then\n"
    "  level = math.min(cap, tonumber(saved[1]) + math.max(0, now - tonumber(saved[2])) * rate)\n"
    "end\n"
    "if level < 1000 then return math.ceil((1000 - level) / rate) end\n"
    "level = level - 1000\n"
    "redis.call('HSET', KEYS[1], 'l', string.format('%d', level), 't', string.format('%d', now))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil((cap - level) / rate) + 1000)\n"
    "return 0\n";

RateLimiter::RateLimiter(std::string prefix, redis::Commands& redis, ops::Metrics& metrics)
    : prefix_(std::move(prefix)),
      redis_(redis),
      script_sha_(sha1_hex(kScript)),
      limited_(metrics.counter("boxgate_rate_limited_total", "API requests refused by a token's rate limit (429)")),
      skipped_(metrics.counter("boxgate_rate_limit_skipped_total",
                               "API requests let through unmetered: Redis could not run the rate limit")) {}

void RateLimiter::admit(const ApiToken& token, Done done) {
  if (token.limits.rate <= 0) return done(std::nullopt);
  send(prefix_ + "/_tokens/" + token.name + "/rate", std::to_string(token.limits.rate),
       std::to_string(token.limits.burst), script_sha_.empty(), std::move(done));
}

void RateLimiter::send(std::string key, std::string rate, std::string burst, bool use_eval, Done done) {
  // Fail open at once when Redis is known to be away: no caller waits for a
  // reconnect on a limit.
  if (!redis_.up()) {
    skipped_.inc();
    return done(std::nullopt);
  }
  std::vector<std::string_view> argv = {use_eval ? "EVAL" : "EVALSHA",
                                        use_eval ? std::string_view(kScript) : std::string_view(script_sha_),
                                        "1",
                                        key,
                                        rate,
                                        burst};
  auto pending = std::make_shared<Done>(std::move(done));
  bool sent = redis_.run(argv, [this, key, rate, burst, use_eval, pending](const redisReply* reply) {
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      std::string_view error(reply->str, reply->len);
      // A restarted Redis (or a failover) has an empty script cache: send
      // the script itself, which also caches it for the next EVALSHA.
      if (!use_eval && error.substr(0, 8) == "NOSCRIPT") return send(key, rate, burst, true, std::move(*pending));
      // Counted below; at debug only, as it would repeat on every request.
      log::get("gateway")->debug("rate limit of {}: {}", key, error.substr(0, 200));
    }
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
      skipped_.inc();
      return (*pending)(std::nullopt);
    }
    if (reply->integer <= 0) return (*pending)(std::nullopt);
    limited_.inc();
    (*pending)(std::chrono::milliseconds(reply->integer));
  });
  if (!sent) {
    skipped_.inc();
    (*pending)(std::nullopt);
  }
}

}  // namespace boxgate::gateway
