#pragma once
// StreamTail: this gateway's one reader of one Redis Stream whose entries
// have the event fields (box, name, payload, received_ms), for every live
// SSE stream it serves of it: one tail reads the fleet event stream
// {prefix}/events, another the outcome stream {prefix}/commands
// (boxgate/outcome_events.hpp). Each tail counts in its own series of the
// boxgate_event_tail_* metrics, labelled stream="<label>".
//
// Why a stream read and not pub/sub: a PUBLISH carries no stream id, so a
// subscriber could not tell where the stored history (XRANGE) ends and the
// live messages begin, and a reconnect would lose what was published
// meanwhile. Reading the stream itself (XREAD BLOCK from the last id seen)
// delivers every event exactly once, in id order, across reconnects; one
// reader serves all streams, which filter by box (the bridge gives an event
// the same id in the box stream and in the fleet stream).
// The comments below say "fleet stream" for whichever stream the tail reads.
//
// Position: the first time a stream joins, the tail connects (its own
// connection: a blocked XREAD holds it) and reads the fleet stream's last id
// P (XREVRANGE + - COUNT 1); from then on it delivers every event after P.
// A stream that joined gets on_positioned() once P is known: history it then
// reads with XRANGE on another connection covers everything up to at least
// P, so history + live has no gap (duplicates are removed by id).
// The tail keeps running once started (reading the fleet while no stream is
// open costs that traffic; it starts with the first stream).
//
// Memory: one XREAD reply at a time, at most kReadCount entries (each up to
// the bridge's max_event_bytes), handed to the listeners and released.
//
// Thread ownership: loop thread only, like the connection it owns.

#include <memory>
#include <string>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/connection.hpp"
#include "boxgate/redis/stream_entries.hpp"

struct redisReply;

namespace boxgate::gateway {

class StreamTail {
 public:
  // Which stream a tail reads.
  struct Source {
    std::string key;    // the Redis key, e.g. Topics::fleet_events_stream()
    std::string label;  // its metrics' stream="<label>": "events", "commands"
    std::string what;   // in log lines: "fleet stream", "outcome stream"
  };

  class Listener {
   public:
    virtual void on_positioned() = 0;
    virtual void on_event(const redis::StoredEvent& event) = 0;

   protected:
    ~Listener() = default;
  };

  // `commands` says where the stream lives (settings_for_key): in cluster
  // mode, the master of its slot.
  StreamTail(EventLoop& loop, const redis::Commands& commands, Source source, ops::Readiness& readiness,
             ops::Metrics& metrics);
  ~StreamTail();

  // Starts the tail on the first join; on_positioned() runs once the
  // position is known (from inside join() when it already is).
  void join(Listener* listener);
  void leave(Listener* listener);
  void stop();

 private:
  static void on_position_reply(struct redisAsyncContext*, void* reply, void* self);
  static void on_read_reply(struct redisAsyncContext*, void* reply, void* self);
  void connect();
  void retarget();
  void connected();
  void read_next();
  void deliver(const redisReply* reply);
  // A reply of ours came back: an error is logged (once per change) and the
  // same command is sent again after kRetryAfterError; true when it was one.
  bool failed(const redisReply* reply, const std::string& what);

  EventLoop& loop_;
  const redis::Commands& commands_;
  RedisSettings settings_;  // of the connection now open (or last tried)
  std::string stream_;
  std::string what_;
  ops::Gauge& up_gauge_;
  ops::Counter& reconnects_;
  ops::Dependency dependency_;  // not part of /readyz: streams are extra, commands are not
  std::unique_ptr<redis::Connection> connection_;
  Timer watchdog_;         // a blocked read that outlives its BLOCK time by far: the link is dead
  Timer retarget_timer_;   // asks every second whether the stream moved (cluster mode)
  Timer retry_timer_;      // after an error reply: ask again in kRetryAfterError, not at once
  log::ProblemLog errors_; // an error reply is logged once per change, not once per retry
  std::string last_id_;
  bool positioned_ = false;
  bool in_hiredis_ = false;  // a command of ours waits for its reply
  std::vector<Listener*> listeners_;
  ops::Counter& delivered_;
};

}  // namespace boxgate::gateway
