#pragma once
// EventForwarder: device events and state from MQTT into Redis
// (docs/events.md, docs/contract.md "Device data plane").
//
// An event {prefix}/{box}/event/{name}: one EVAL that XADDs it to the box's
// stream {prefix}/{box}/events and, under the same stream id, to the fleet
// stream {prefix}/events (fields box, name, payload, received_ms; each
// trimmed to its caps in entries and in bytes), then PUBLISH of the payload verbatim on the channel of the topic's
// name. The same id in both streams lets one SSE id (Last-Event-ID) resume a
// box stream or the fleet stream alike. A state {prefix}/{box}/state: SET of
// {"state":<payload if JSON, else a string>,"received_ms":N} on the key of
// that name, and PUBLISH of the same document on the channel of that name.
//
// Thread ownership: loop thread only. accept() runs inside the MQTT client's
// message handler: it validates, queues and hands what Redis can take to the
// command connection, then returns. Commands queued in one loop iteration
// leave in one write (redis::Commands), so a burst is one pipeline.
//
// Overflow policy: queued and in-flight items hold at most queue_max_bytes,
// each counting its payload plus kItemOverheadBytes (so the count is bounded
// too); one that does not fit is dropped and counted (reason="queue_full").
// An item whose command fails because the connection broke goes back to the
// head of the queue and is sent again after the reconnect: at-least-once (an
// EVAL that ran but whose answer was lost is added twice). Lost otherwise
// only to overflow, a Redis error reply, or a stop while Redis is away
// (reason="shutdown"), never silently.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "outbox.hpp"

namespace boxgate::bridge {

struct EventSettings {
  std::size_t max_event_bytes;
  std::int64_t box_maxlen;
  std::int64_t fleet_maxlen;
  std::int64_t box_max_bytes;
  std::int64_t fleet_max_bytes;
  std::size_t queue_max_bytes;
};

class EventForwarder {
 public:
  // What one queued item costs beyond its payload (keys, name, bookkeeping).
  static constexpr std::size_t kItemOverheadBytes = 128;

  EventForwarder(const Topics& topics, EventSettings settings, redis::Commands& redis, ops::Metrics& metrics);

  // false when the topic is neither an event nor a state topic (by its
  // shape); then nothing was counted and another forwarder may take it.
  bool accept(std::string_view topic, std::string_view payload);
  // Forward what is queued (called on Redis reconnect too).
  void flush();
  // Items queued or on their way to Redis.
  std::size_t backlog() const noexcept { return outbox_.backlog(); }
  // At exit: counts every item still queued.
  void abandon();

  // The stored state document (exposed for tests): the payload verbatim when
  // it is a JSON text, else a JSON string of it (invalid UTF-8 replaced).
  static std::string state_document(std::string_view payload, std::int64_t received_ms);

 private:
  enum class Kind { event, state };
  struct Item {
    Kind kind;
    BoxId box;
    std::string name;     // event name ("" for a state)
    std::string payload;  // event: verbatim; state: the document
    std::int64_t received_ms;
    std::size_t cost() const { return payload.size() + kItemOverheadBytes; }
  };
  enum class Drop { invalid_topic, too_large, queue_full, redis_error, shutdown };
  static constexpr int kDropReasons = 5;
  void drop(Kind kind, Drop reason, std::string_view what);
  // A stream an event goes to, its byte-count hash and its caps.
  struct Stream {
    std::string name;
    std::string bytes_key;
    std::int64_t max_len;
    std::int64_t max_bytes;
  };
  bool send(const std::shared_ptr<Item>& item);  // false when not connected
  // The add script on `streams` (one call; the first stream gets `id`).
  // false when not connected.
  bool add(const std::shared_ptr<Item>& owned, const std::vector<Stream>& streams, std::string_view id,
           redis::Commands::ReplyCallback done);
  // Cluster mode: one call per stream (a script cannot span the two
  // streams' slots). false when not connected.
  bool add_in_two_steps(const std::shared_ptr<Item>& owned, Stream fleet, Stream box,
                        redis::Commands::ReplyCallback done);
  void sent(Item& item, const struct redisReply* reply);

  const Topics& topics_;
  EventSettings settings_;
  redis::Commands& redis_;

  log::RateLimit drop_log_;

  ops::Counter& events_received_;
  ops::Counter& states_received_;
  ops::Counter& events_forwarded_;
  ops::Counter& states_forwarded_;
  ops::Counter* dropped_[2][kDropReasons];
  Outbox<Item> outbox_;
};

}  // namespace boxgate::bridge
