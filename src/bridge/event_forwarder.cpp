#include "event_forwarder.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::bridge {

namespace {
// Adds an event to one or two streams and trims each to its caps in entries
// and in bytes. KEYS: pairs of a stream and the hash counting its bytes
// (Topics::events_bytes_key: same slot). ARGV: the first stream's id ('*':
// Redis picks), box, name, payload, received_ms, then per stream its max
// entries and max bytes. Returns the first stream's id.
//
// Standalone: one call names the fleet stream and then the box stream, so
// both entries share one stream id and a client resuming with Last-Event-ID
// names the same event in either. Cluster: one call per stream, the box's
// with the fleet's id (add_in_two_steps). The box stream's ids are a subset
// of the fleet stream's, so that id is above the box stream's last one --
// unless the fleet stream was deleted while the box stream stayed: then the
// box entry gets an id of its own rather than being lost.
//
// The byte count: an entry counts its values plus 64 B (its id, field names
// and its share of the listpack and radix tree). The hash keeps `bytes` and
// `first`, the id of the oldest entry counted ("0-0": all are); entries
// older than that were there before the count started (an upgrade, a lost
// hash) and are trimmed without being subtracted. The count starts anew
// when the stream holds only the new entry.
//
// The trim: a stream over a cap loses its oldest entries, never the new
// one, down to 31/32 of each cap, so the XRANGE (the sizes) and XTRIM run
// once per few dozen events rather than on each, and a stream holds between
// 31/32 of a cap and the cap. At most 1000 entries (trim_budget) go per
// call: a lowered cap is reached over a few events, not in one long script.
// Redis frees an entry's memory when its whole node (4 KiB or 100 entries)
// is gone.
constexpr const char* kAddEvent = R"lua(
local fields = {'box', ARGV[2], 'name', ARGV[3], 'payload', ARGV[4], 'received_ms', ARGV[5]}
local trim_budget = 1000

local function size(f)
  local n = 64
  for i = 2, #f, 2 do n = n + #f[i] end
  return n
end

-- Stream ids are decimal "ms-seq" without leading zeros: a longer number is larger.
local function before(a, b)
  if b == '0-0' then return false end
  local am, as = string.match(a, '^(%d+)%-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)%-(%d+)$')
  if not am or not bm then return false end
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end

local function add(stream, counter, id, max_len, max_bytes)
  local added = redis.pcall('XADD', stream, id, unpack(fields))
  if type(added) == 'table' and added.err then
    added = redis.call('XADD', stream, '*', unpack(fields))
  end
  local len = redis.call('XLEN', stream)
  local kept = redis.call('HMGET', counter, 'bytes', 'first')
  local bytes, first = tonumber(kept[1]), kept[2]
  if len == 1 or not bytes or not first then bytes, first = 0, added end
  bytes = bytes + size(fields)
  if len > max_len or bytes > max_bytes then
    local low_len = max_len - math.floor(max_len / 32)
    local low_bytes = max_bytes - math.floor(max_bytes / 32)
    local removed, from = 0, '-'
    local function over() return len - removed > 1 and (len - removed > low_len or bytes > low_bytes) end
    while over() and removed < trim_budget do
      local want = math.max(1, len - removed - low_len)
      if bytes > low_bytes then want = math.max(want, math.ceil((bytes - low_bytes) * (len - removed) / bytes)) end
      local batch = redis.call('XRANGE', stream, from, '+', 'COUNT', math.min(want, trim_budget - removed))
      if #batch == 0 then break end
      for _, entry in ipairs(batch) do
        if not over() then break end
        if not before(entry[1], first) then
          bytes = bytes - size(entry[2])
          first = '0-0'
        end
        removed = removed + 1
        from = '(' .. entry[1]
      end
    end
    if removed > 0 then redis.call('XTRIM', stream, 'MAXLEN', len - removed) end
  end
  if bytes < 0 then bytes = 0 end
  redis.call('HSET', counter, 'bytes', string.format('%.0f', bytes), 'first', first)
  return added
end

local id = ARGV[1]
local first_id
for i = 1, #KEYS, 2 do
  id = add(KEYS[i], KEYS[i + 1], id, tonumber(ARGV[5 + i]), tonumber(ARGV[6 + i]))
  first_id = first_id or id
end
return first_id
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
    std::string fleet_stream = topics_.fleet_events_stream();
    std::string box_stream = topics_.box_events_stream(owned->box);
    std::vector<Stream> streams{
        {fleet_stream, topics_.events_bytes_key(fleet_stream), settings_.fleet_maxlen, settings_.fleet_max_bytes},
        {box_stream, topics_.events_bytes_key(box_stream), settings_.box_maxlen, settings_.box_max_bytes}};
    if (redis_.may_combine(fleet_stream, box_stream)) {
      accepted = add(owned, streams, "*", std::move(done));
    } else {
      accepted = add_in_two_steps(owned, std::move(streams[0]), std::move(streams[1]), std::move(done));
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

// By text (EVAL), not EVALSHA: a NOSCRIPT answer (a restarted or failed-over
// Redis) would send that event again behind others already stored, out of
// the order the bridge received them. Redis hashing the text costs no more
// than noise (INFO commandstats: 14.7 against 14.6 us per call).
bool EventForwarder::add(const std::shared_ptr<Item>& owned, const std::vector<Stream>& streams, std::string_view id,
                         redis::Commands::ReplyCallback done) {
  std::string keys = std::to_string(2 * streams.size());
  std::string received = std::to_string(owned->received_ms);
  std::vector<std::string> limits;
  for (const Stream& s : streams) {
    limits.push_back(std::to_string(s.max_len));
    limits.push_back(std::to_string(s.max_bytes));
  }
  std::vector<std::string_view> argv{"EVAL", kAddEvent, keys};
  for (const Stream& s : streams) {
    argv.push_back(s.name);
    argv.push_back(s.bytes_key);
  }
  argv.insert(argv.end(), {id, owned->box.view(), owned->name, owned->payload, received});
  argv.insert(argv.end(), limits.begin(), limits.end());
  return redis_.run(argv, std::move(done));
}

// A Redis Cluster keeps the two streams on different slots, where no script
// may name both: the fleet stream first, then the box stream with the id it
// got (the script's steps, not atomic). Replies come back in order on the
// fleet node's connection, so each box stream still grows in id order.
bool EventForwarder::add_in_two_steps(const std::shared_ptr<Item>& owned, Stream fleet, Stream box,
                                      redis::Commands::ReplyCallback done) {
  auto box_step = [this, owned, box, done](const redisReply* reply) {
    if (!reply || reply->type != REDIS_REPLY_STRING) return done(reply);
    if (!add(owned, {box}, std::string_view(reply->str, reply->len), done)) done(nullptr);
  };
  return add(owned, {fleet}, "*", std::move(box_step));
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
