#include "event_forwarder.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::bridge {

namespace {
// Both XADDs in one script, so the fleet entry and the box entry share one
// stream id: a client resuming with Last-Event-ID names the same event in
// either stream. The box stream's ids are a subset of the fleet stream's, so
// the fleet id is always above the box stream's last one -- unless the fleet
// stream was deleted while the box stream stayed: then the box entry gets an
// id of its own rather than being lost.
// KEYS: box stream, fleet stream. ARGV: box maxlen, fleet maxlen, box, name,
// payload, received_ms. Returns the id.
constexpr const char* kAddEvent = R"lua(
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'box', ARGV[3], 'name', ARGV[4], 'payload', ARGV[5], 'received_ms', ARGV[6])
local ok = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id,
  'box', ARGV[3], 'name', ARGV[4], 'payload', ARGV[5], 'received_ms', ARGV[6])
if type(ok) == 'table' and ok.err then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'box', ARGV[3], 'name', ARGV[4], 'payload', ARGV[5], 'received_ms', ARGV[6])
end
return id
)lua";

const char* drop_reason(int reason) {
  static const char* names[] = {"invalid_topic", "too_large", "queue_full", "redis_error", "shutdown"};
  return names[reason];
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::string EventForwarder::state_document(std::string_view payload, std::int64_t received_ms) {
  std::string doc = R"({"state":)";
  // Validated iteratively (json_scan.hpp): a state nested at every byte costs
  // a bit per level, never the stack. Stored verbatim, so readers get the
  // device's own bytes back.
  if (json::scan(payload).ok()) {
    doc.append(payload);
  } else {
    doc += nlohmann::json(std::string(payload)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  doc += R"(,"received_ms":)";
  doc += std::to_string(received_ms);
  doc += '}';
  return doc;
}

EventForwarder::EventForwarder(const Topics& topics, EventSettings settings, redis::Commands& redis,
                               ops::Metrics& metrics)
    : topics_(topics),
      settings_(settings),
      redis_(redis),
      events_received_(metrics.counter("boxgate_events_received_total", "device events received from MQTT")),
      states_received_(metrics.counter("boxgate_states_received_total", "device states received from MQTT")),
      events_forwarded_(metrics.counter("boxgate_events_forwarded_total",
                                        "events added to the box and fleet streams and published")),
      states_forwarded_(metrics.counter("boxgate_states_forwarded_total", "states stored and published")),
      // No count of its own: the bytes bound it, each item costing 128 at least.
      outbox_({std::numeric_limits<std::size_t>::max(), settings.queue_max_bytes},
              metrics.gauge("boxgate_events_queued", "events and states waiting to be forwarded to Redis"),
              metrics.gauge("boxgate_events_held_bytes",
                            "bytes (payload + 128 each) of events and states queued or in flight")) {
  for (int i = 0; i < kDropReasons; ++i) {
    std::string reason = std::string("reason=\"") + drop_reason(i) + "\"";
    dropped_[0][i] = &metrics.counter("boxgate_events_dropped_total", "events dropped, by reason", reason);
    dropped_[1][i] = &metrics.counter("boxgate_states_dropped_total", "states dropped, by reason", reason);
  }
}

bool EventForwarder::accept(std::string_view topic, std::string_view payload) {
  Topics::DataKind shape = topics_.data_kind(topic);
  if (shape == Topics::DataKind::none) return false;
  Kind kind = shape == Topics::DataKind::event ? Kind::event : Kind::state;
  (kind == Kind::event ? events_received_ : states_received_).inc();
  if (payload.size() > settings_.max_event_bytes) {
    drop(kind, Drop::too_large, topic);
    return true;
  }
  std::int64_t received = now_ms();
  std::optional<Item> item;
  if (kind == Kind::event) {
    if (auto address = topics_.parse_event_topic(topic)) {
      item = Item{kind, std::move(address->box), address->name.str(), std::string(payload), received};
    }
  } else if (auto box = topics_.parse_state_topic(topic)) {
    item = Item{kind, std::move(*box), {}, state_document(payload, received), received};
  }
  if (!item) {
    drop(kind, Drop::invalid_topic, topic);
    return true;
  }
  if (!outbox_.push(std::move(*item))) {
    drop(kind, Drop::queue_full, topic);
    return true;
  }
  flush();
  return true;
}

void EventForwarder::drop(Kind kind, Drop reason, std::string_view what) {
  dropped_[kind == Kind::event ? 0 : 1][static_cast<int>(reason)]->inc();
  // A flood of garbage must not flood the log.
  if (drop_log_.allow()) {
    log::get("bridge")->warn("dropped {} '{}': {} (further drops this second not logged)",
                             kind == Kind::event ? "an event" : "a state", what.substr(0, 200),
                             drop_reason(static_cast<int>(reason)));
  }
}

void EventForwarder::flush() {
  outbox_.flush(redis_.up(), [this](const std::shared_ptr<Item>& item) { return send(item); });
}

bool EventForwarder::send(const std::shared_ptr<Item>& owned) {
  auto done = [this, owned](const redisReply* reply) { sent(*owned, reply); };
  bool accepted;
  std::string channel;
  if (owned->kind == Kind::event) {
    auto name = EventName::parse(owned->name);  // valid: it came from parse_event_topic
    std::string box_stream = topics_.box_events_stream(owned->box);
    std::string fleet_stream = topics_.fleet_events_stream();
    std::string box_maxlen = std::to_string(settings_.box_maxlen);
    std::string fleet_maxlen = std::to_string(settings_.fleet_maxlen);
    std::string received = std::to_string(owned->received_ms);
    if (redis_.may_combine(box_stream, fleet_stream)) {
      accepted = redis_.run({"EVAL", kAddEvent, "2", box_stream, fleet_stream, box_maxlen, fleet_maxlen,
                             owned->box.view(), owned->name, owned->payload, received},
                            done);
    } else {
      accepted = add_in_two_steps(owned, std::move(done));
    }
    channel = topics_.event_channel(owned->box, *name);
  } else {
    channel = topics_.state_key(owned->box);
    accepted = redis_.run({"SET", channel, owned->payload}, done);
  }
  if (!accepted) return false;
  // Pub/sub is for listeners present now (at most once); the stream and the
  // key are what is kept. No callback: its answer changes nothing.
  redis_.run({"PUBLISH", channel, owned->payload}, {});
  return true;
}

// A Redis Cluster keeps the two streams on different slots, where no script
// may name both: the fleet XADD first, then the box XADD with the id it got
// (the script's steps, not atomic). Replies come back in order on the fleet
// node's connection, so each box stream still grows in id order. A box XADD
// refused for its id (the box stream is ahead: its fleet stream was deleted)
// gets an id of its own, as in the script.
bool EventForwarder::add_in_two_steps(const std::shared_ptr<Item>& owned, redis::Commands::ReplyCallback done) {
  std::string received = std::to_string(owned->received_ms);
  std::string fleet_maxlen = std::to_string(settings_.fleet_maxlen);
  auto box_step = [this, owned, done, received](const redisReply* fleet) {
    if (!fleet || fleet->type != REDIS_REPLY_STRING) return done(fleet);
    std::string id(fleet->str, fleet->len);
    std::string box_stream = topics_.box_events_stream(owned->box);
    std::string box_maxlen = std::to_string(settings_.box_maxlen);
    auto add = [this, owned, box_stream, box_maxlen, received](std::string_view with_id,
                                                               redis::Commands::ReplyCallback then) {
      return redis_.run({"XADD", box_stream, "MAXLEN", "~", box_maxlen, with_id, "box", owned->box.view(), "name",
                         owned->name, "payload", owned->payload, "received_ms", received},
                        std::move(then));
    };
    auto retry_own_id = [add, done](const redisReply* box) {
      if (box && box->type == REDIS_REPLY_ERROR) {
        if (!add("*", done)) done(nullptr);
        return;
      }
      done(box);
    };
    if (!add(id, retry_own_id)) done(nullptr);
  };
  return redis_.run({"XADD", topics_.fleet_events_stream(), "MAXLEN", "~", fleet_maxlen, "*", "box",
                     owned->box.view(), "name", owned->name, "payload", owned->payload, "received_ms", received},
                    std::move(box_step));
}

void EventForwarder::sent(Item& item, const redisReply* reply) {
  if (!reply) return outbox_.answered(item, true);  // the connection broke: again after reconnect
  if (reply->type == REDIS_REPLY_ERROR) {
    drop(item.kind, Drop::redis_error, std::string_view(reply->str, reply->len));
  } else {
    (item.kind == Kind::event ? events_forwarded_ : states_forwarded_).inc();
  }
  outbox_.answered(item, false);
  flush();  // room in flight again
}

void EventForwarder::abandon() {
  auto left = outbox_.abandon();
  for (const Item& item : left) dropped_[item.kind == Kind::event ? 0 : 1][static_cast<int>(Drop::shutdown)]->inc();
  if (!left.empty()) {
    log::get("bridge")->error("{} events/states not forwarded at exit (Redis unavailable)", left.size());
  }
}

}  // namespace boxgate::bridge
