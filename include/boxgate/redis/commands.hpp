#pragma once
// Commands: the command connection to Redis (GET, SET+PUBLISH, heartbeat).
//
// Thread ownership: loop thread only, like the Connection it owns. Commands
// written in the same loop iteration leave in one write (hiredis buffers and
// libevent flushes once), so bursts pipeline by themselves. Every callback runs
// exactly once on the loop thread: with the reply, or with a failure when the
// connection is lost.
//
// Liveness is judged by progress: a PING every heartbeat_ms (one at a time);
// while a PING is outstanding, "quiet" is how long neither a reply came nor
// did bytes move on the socket either way (TCP_INFO). So a PING queued behind
// megabytes of SETs on a slow link, or behind a large GET, does not condemn a
// busy Redis; a frozen one is caught once the kernel buffers stop moving.
// Quiet for stall_after_ms: stalled -- up() is false (new commands wait in
// grace, readiness says "stalled") but nothing is torn down, and commands
// already sent still get their replies when Redis resumes. Quiet for
// dead_after_ms: dead -- the connection is dropped and on_dead runs (the
// subscriber, which cannot PING in hiredis 0.14, is restarted by its owner).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxgate/redis/connection.hpp"
#include "boxgate/redis/socket_progress.hpp"

struct redisReply;

namespace boxgate::redis {

class ClusterCommands;

// One command in RESP, its arguments binary-safe (what redis-cli sends).
std::string resp_command(const std::vector<std::string_view>& argv);

class Commands {
 public:
  // ok=false: connection failed before a reply; value empty = key absent.
  using GetCallback = std::function<void(bool ok, std::optional<std::string> value)>;
  // lost: the connection broke before Redis answered (worth retrying);
  // error: Redis answered with an error.
  enum class Status { ok, error, lost };
  // receivers: for PUBLISH, how many subscribers got the message.
  using DoneCallback = std::function<void(Status status, long long receivers)>;
  // Any command's reply: nullptr when the connection broke before Redis
  // answered. The reply is valid during the call only.
  using ReplyCallback = std::function<void(const redisReply* reply)>;

  // redis_mode cluster: the commands go to the slot's master of their
  // (first) key instead, through ClusterCommands (cluster_commands.hpp);
  // on_dead is not called (each node has its own heartbeat) and
  // set_and_publish uses SPUBLISH. The calls below keep their contract.
  Commands(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency,
           std::function<void()> on_up, std::function<void()> on_dead);
  ~Commands();

  void start();
  void stop();
  // Connected and not stalled: new work may start.
  bool up() const noexcept;

  // false when not connected (callback not called).
  bool get(const std::string& key, GetCallback done);
  // SET key payload PX ttl, then PUBLISH key message, pipelined (message is
  // the payload itself or a stored-reply notice). `done` gets the PUBLISH's
  // status.
  // Any command, its arguments binary-safe; `done` may be empty (the reply is
  // then ignored). false when not connected (callback not called).
  bool run(const std::vector<std::string_view>& argv, ReplyCallback done);
  bool set_and_publish(const std::string& key, std::string_view payload, std::string_view message,
                       std::int64_t ttl_ms, DoneCallback done);
  // redis_mode cluster: replies go on shard channels (SPUBLISH).
  bool clustered() const noexcept { return cluster_ != nullptr; }
  // Whether one command or script may name both keys: always in standalone;
  // in cluster mode only when they hash to one slot (else CROSSSLOT).
  bool may_combine(std::string_view key_a, std::string_view key_b) const noexcept;
  // The settings for a connection of its own that works on `key` alone (a
  // blocking read): these settings, or in cluster mode a standalone
  // connection to the master of the key's slot (nullopt while the map is
  // unknown). Ask again after that connection fails: the slot may have moved.
  std::optional<RedisSettings> settings_for_key(std::string_view key) const;

 private:
  using Clock = std::chrono::steady_clock;
  void heartbeat();
  void note_progress(Clock::time_point now);

  Connection connection_;
  std::unique_ptr<ClusterCommands> cluster_;  // set in redis_mode cluster
  ops::Dependency& dependency_;
  RedisSettings settings_;
  std::function<void()> on_dead_;
  Timer heartbeat_timer_;
  std::optional<Clock::time_point> ping_sent_;
  Clock::time_point last_progress_{};
  std::optional<TcpProgress> last_counters_;
};

}  // namespace boxgate::redis
