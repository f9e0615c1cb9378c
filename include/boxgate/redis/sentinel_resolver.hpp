#pragma once
// SentinelResolver: asks Redis Sentinels where the master is, the way the
// Sentinel clients spec says (redis.io, "Sentinel client spec"): the
// sentinels are tried one at a time, in order; each gets
// `SENTINEL get-master-addr-by-name <name>` (after AUTH when the sentinels
// have their own password) and sentinel_timeout_ms to connect and answer.
// The first one that names a master wins and is moved to the front of the
// list, so the next resolution asks it first. The caller (redis::Connection)
// resolves before every connection and checks ROLE on the address it gets:
// a sentinel's answer may be stale for a moment during a failover.
//
// Thread ownership: the loop thread owns the resolver and its hiredis
// contexts (one at a time, to the sentinel being asked); every method and
// callback runs there. The `done` callback is called from a loop timer, never
// from inside a hiredis callback, so it may connect, free or resolve again.
// hiredis 0.14 rules kept: a context is never freed from inside its own
// callbacks (a zero-delay timer does it), and one freed by hiredis itself
// (failed connect, disconnect) is forgotten, not freed again.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"

struct redisAsyncContext;

namespace boxgate::redis {

class SentinelResolver {
 public:
  struct Result {
    std::optional<RedisAddress> master;
    // When no master: "no sentinel answered" (each sentinel's problem
    // follows) or "sentinels know no master <name>".
    std::string error;
  };
  using Done = std::function<void(const Result& result)>;

  SentinelResolver(EventLoop& loop, const RedisSettings& settings, std::string name);
  ~SentinelResolver();
  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;

  // Starts a resolution; `done` runs once with the outcome. A call while one
  // is running replaces its callback (one answer serves both).
  void resolve(Done done);
  // Stops a running resolution; its callback is never called.
  void cancel();
  bool busy() const noexcept { return static_cast<bool>(done_); }
  // The sentinels in the order the next resolution asks them.
  const std::vector<RedisAddress>& order() const noexcept { return order_; }

 private:
  enum class Outcome { none, master, no_master, failed };
  static void on_connect(const redisAsyncContext* ctx, int status);
  static void on_disconnect(const redisAsyncContext* ctx, int status);
  static void on_auth(redisAsyncContext* ctx, void* reply, void* privdata);
  static void on_answer(redisAsyncContext* ctx, void* reply, void* privdata);
  void ask(std::size_t index);
  void answered(Outcome outcome, std::string detail);
  void step();
  void close_context();
  void finish(Result result);

  EventLoop& loop_;
  RedisSettings settings_;
  std::string name_;
  std::vector<RedisAddress> order_;
  Done done_;
  redisAsyncContext* ctx_ = nullptr;
  std::size_t index_ = 0;  // the sentinel being asked
  Outcome outcome_ = Outcome::none;
  std::optional<RedisAddress> master_;
  std::string problems_;  // what each sentinel that failed said, for the error
  bool any_answered_ = false;
  Timer deadline_;  // the current sentinel's time is up
  Timer step_;      // leaves hiredis's callback before acting on an outcome
};

}  // namespace boxgate::redis
