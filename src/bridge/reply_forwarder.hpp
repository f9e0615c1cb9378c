#pragma once
// ReplyForwarder: device replies from MQTT into Redis (SET result key + PUBLISH).
//
// Only under an id a gateway issued: a reply is stored when its command
// record ({prefix}/{box}/command/{id}, written by the gateway before it
// publishes the command, kept timeout + result_ttl_ms) exists: EXISTS of
// the record first, then SET+PUBLISH. Otherwise it is not stored and is
// counted as dropped (reason="unsolicited"), so a device cannot fill Redis
// with result keys nobody asked for; one up to reply_inline_max_bytes is
// still published (nobody listens but a gateway waiting for that id, one
// whose record a Redis restart without persistence lost). A late reply
// (after the gateway's timeout) finds its record and is stored.
//
// Thread ownership: loop thread only. accept() runs inside the MQTT client's
// message handler: it validates the reply, queues it and hands what Redis can
// take to the command connection (EXISTS of the record, then a SET+PUBLISH
// pair; a burst's commands pipelined), then returns.
//
// Overflow policy: the queue and the pairs in flight hold at most
// queue_capacity replies and queue_max_bytes payload bytes (while Redis is
// down they wait there and are flushed on reconnect); a reply that does not
// fit is dropped and counted as reason="queue_full". A pair that fails because
// the connection broke goes back to the head of the queue, so a reply the
// device sent is only lost to overflow, a Redis error reply or a stop while
// Redis is away (reason="shutdown", each logged with its key), never silently.
//
// Memory: a reply's payload is held once here until Redis acknowledged it;
// hiredis holds a second copy of the pairs in flight until written, which
// kMaxInFlightBytes bounds. Replies above reply_inline_max_bytes are
// PUBLISHed as a stored-reply notice (stored_reply.hpp), not a third copy.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>
#include <string_view>

#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/outcome_events.hpp"
#include "boxgate/topics.hpp"
#include "outbox.hpp"

namespace boxgate::bridge {

struct ForwarderSettings {
  std::size_t max_reply_bytes;
  std::int64_t result_ttl_ms;
  std::size_t queue_capacity;
  std::size_t queue_max_bytes;
  std::size_t reply_inline_max_bytes;
  std::int64_t outcome_stream_maxlen = 0;  // the outcome stream's cap (0: `succeeded` not written)
};

class ReplyForwarder {
 public:
  ReplyForwarder(EventLoop& loop, const Topics& topics, ForwarderSettings settings, redis::Commands& redis,
                 ops::Metrics& metrics);

  // Validate and enqueue, then forward; never blocks on the network.
  void accept(std::string_view topic, std::string_view payload);
  // Forward what is queued.
  void flush();
  // The Redis connection is (back) up: flush(). For kRecheckWindow after, a
  // reply whose record is missing is checked again every kRecheckEvery
  // before it is dropped: a Redis restarted without persistence lost the
  // records of waiting commands, and their gateways write them back once
  // they have reconnected too. Such a reply stays in the queue meanwhile
  // (its bytes count against queue_max_bytes); at other times an id no
  // gateway issued is dropped at once.
  void redis_connected();
  static constexpr std::chrono::milliseconds kRecheckWindow{3000};
  static constexpr std::chrono::milliseconds kRecheckEvery{100};
  // Replies queued or on their way to Redis.
  std::size_t backlog() const noexcept { return outbox_.backlog(); }
  // At exit: counts and logs (with its key) every reply still queued.
  void abandon();

 private:
  struct Reply {
    std::string key;     // the channel and result key
    std::string record;  // the command record that must exist
    std::string payload;
    std::string box;
    std::string request_id;
    std::size_t cost() const noexcept { return payload.size(); }
  };
  enum class Drop { invalid_topic, invalid_id, too_large, queue_full, redis_error, shutdown, unsolicited };
  static constexpr int kDropReasons = 7;
  void drop(Drop reason, std::string_view topic);
  // EXISTS of the record, then store() (false when not connected).
  bool send(const std::shared_ptr<Reply>& reply);
  // SET + PUBLISH (or the stored-reply notice).
  bool store(const std::shared_ptr<Reply>& reply);
  void sent(Reply& reply, redis::Commands::Status status, long long receivers);
  void unsolicited(Reply& reply);
  // The outcome stream's `succeeded`; late: no gateway was waiting (it came
  // after the timeout, after its gateway stopped, or repeats a reply).
  void tell_succeeded(const Reply& reply, bool late);
  void recheck();

  const Topics& topics_;
  ForwarderSettings settings_;
  redis::Commands& redis_;
  StreamAppender outcomes_;  // `succeeded`, once stored (outcome_events.hpp)
  log::RateLimit drop_log_;

  ops::Counter& received_;
  ops::Counter& forwarded_;
  ops::Counter& unclaimed_;
  ops::Counter* dropped_[kDropReasons];
  Outbox<Reply> outbox_;  // after the gauges it reports to
  std::chrono::steady_clock::time_point recheck_until_{};
  std::vector<std::shared_ptr<Reply>> rechecks_;  // in flight, their record not found yet
  Timer recheck_timer_;
};

}  // namespace boxgate::bridge
