#pragma once
// PresenceTracker: device status messages from MQTT into one Redis hash per
// box (docs/contract.md, "Presence").
//
// A device publishes `online` / `offline` (or a JSON object with a boolean
// "online") retained on {prefix}/{box}/status, the offline one also as its
// MQTT will. The tracker validates the topic like replies are validated
// (Topics / BoxId), parses the payload without recursion and keeps
// {prefix}/{box}/presence = {online: 1|0, since: <ms since epoch>} where
// `since` is when the state CHANGED: the compare-and-set runs in Redis as a
// one-key Lua script (EVALSHA, EVAL after NOSCRIPT), so a retained message
// delivered again (a bridge reconnects) or the same message handled by every
// bridge leaves `since` alone, and the one key keeps it Redis-Cluster-safe.
//
// A change to online is also announced on {prefix}/_queue/wake (the box id),
// so the gateways send the commands queued for the box at once.
//
// Thread ownership: loop thread only. accept() runs inside the MQTT client's
// message handler; updates written in one loop iteration leave in the same
// pipeline as the replies (Commands writes once per iteration).
//
// Overflow policy: presence is latest-wins, so the queue holds at most one
// update per box -- a newer one for a box already waiting replaces it
// (counted as superseded, not a loss) -- and at most queue_capacity boxes;
// an update for one more box is dropped and counted (reason="queue_full").
// While Redis is down updates wait there and are flushed on reconnect; one in
// flight when the connection breaks goes back to the queue unless a newer
// update for its box is already there. Memory: about one key string and a
// few integers per queued box, plus at most kMaxInFlight in flight.
//
// Ordering: one bridge writes a box's updates in the order MQTT delivered
// them (one pipeline, requeue keeps the newest). Several bridges each write
// every update; a box that flaps faster than their skew can briefly show an
// older state, and the last write is always some bridge's newest message.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "boxgate/logging.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/outcome_events.hpp"
#include "boxgate/topics.hpp"

namespace boxgate::bridge {

// Status payloads longer than this are dropped (reason="too_large") before
// any parsing: a status is a word or a tiny JSON object.
inline constexpr std::size_t kMaxStatusBytes = 4096;

// The state a status payload announces: true = online. Exactly `online` or
// `offline` (case-sensitive, nothing around them), or a JSON object (strict
// RFC 8259, at most 16 levels deep) with exactly one top-level "online"
// member whose value is a boolean; anything else, or more than
// kMaxStatusBytes, is nullopt. Never recurses beyond the depth limit, never
// throws but std::bad_alloc. Pure; any thread.
std::optional<bool> parse_status_payload(std::string_view payload);

// The compare-and-set script (KEYS[1] the presence hash, ARGV[1] "1"/"0",
// ARGV[2] the time in ms): returns 1 when it changed the state, 0 when the
// state was already that.
extern const char* const kPresenceScript;

struct PresenceSettings {
  std::size_t queue_capacity;  // boxes whose update may wait for Redis
  std::int64_t stream_maxlen = 0;  // the presence stream's cap (0: not written)
};

class PresenceTracker {
 public:
  PresenceTracker(const Topics& topics, PresenceSettings settings, redis::Commands& redis, ops::Metrics& metrics);

  // Validate and enqueue, then write; never blocks on the network.
  void accept(std::string_view topic, std::string_view payload);
  // Write what is queued (called on Redis reconnect too).
  void flush();
  // Updates queued or on their way to Redis.
  std::size_t backlog() const noexcept { return queued_.size() + in_flight_; }
  // At exit: counts and logs every update still queued.
  void abandon();

 private:
  struct Update {
    std::string key;  // the presence hash
    std::string box;
    bool online;
    std::int64_t at_ms;  // when the bridge received it (ms since epoch)
    std::uint64_t seq;   // arrival order, to keep the newest on requeue
  };
  enum class Drop { invalid_topic, invalid_payload, too_large, queue_full, redis_error, shutdown };
  static constexpr int kDropReasons = 6;

  void drop(Drop reason, std::string_view what);
  void enqueue(Update update, bool at_front);
  void send(Update update, bool use_eval);
  void answered(Update& update, bool use_eval, const redisReply* reply);
  void set_queued_gauge();
  // The box came online: the gateways send what its queue holds.
  void wake(const std::string& box);

  const Topics& topics_;
  PresenceSettings settings_;
  redis::Commands& redis_;
  StreamAppender changes_stream_;  // every change, for readers and webhooks (outcome_events.hpp)
  std::string script_sha_;  // SHA-1 of kPresenceScript, lowercase hex

  // The queue: box keys in arrival order, and each one's newest update.
  // Invariant: every key in order_ is in queued_ and the other way round.
  std::deque<std::string> order_;
  std::unordered_map<std::string, Update> queued_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_seq_ = 0;
  log::RateLimit drop_log_;

  ops::Counter& received_;
  ops::Counter& superseded_;
  ops::Counter* updates_[2];  // [online]: applied in Redis, by state
  ops::Counter* changes_[2];  // [online]: those that changed the stored state
  ops::Counter* dropped_[kDropReasons];
  ops::Gauge& queued_gauge_;
  ops::Counter& wakes_;
};

}  // namespace boxgate::bridge
