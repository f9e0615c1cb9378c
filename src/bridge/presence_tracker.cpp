#include "presence_tracker.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "boxgate/json_scan.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::bridge {

namespace {

// Updates handed to hiredis before waiting for answers, as for the replies:
// bounds what a slow Redis makes hiredis hold while keeping the pipeline full.
constexpr std::size_t kMaxInFlight = 4096;
// nlohmann's parser recurses; the iterative scan refuses anything deeper
// first, so the recursion is bounded whatever a device sends.
constexpr std::size_t kMaxStatusDepth = 16;

const char* drop_reason(int reason) {
  static const char* names[] = {"invalid_topic", "invalid_payload", "too_large",
                                "queue_full",    "redis_error",     "shutdown"};
  return names[reason];
}

// The name Redis gives the script (EVALSHA); "" when libcrypto fails, and
// then only EVAL is sent (EVALSHA of "" is always NOSCRIPT).
std::string sha1_hex(std::string_view text) {
  try {
    return digest::to_hex(digest::sha1(text));
  } catch (const std::exception&) {
    return {};
  }
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// HGET + HSET on KEYS[1] only: the one key keeps it on one Redis Cluster
// slot, and the script runs atomically, so two bridges writing the same box
// cannot both see "changed" and `since` moves only on a real change.
const char* const kPresenceScript =
    "if redis.call('HGET', KEYS[1], 'online') == ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'online', ARGV[1], 'since', ARGV[2])\n"
    "return 1\n";

std::optional<bool> parse_status_payload(std::string_view payload) {
  if (payload.size() > kMaxStatusBytes) return std::nullopt;
  if (payload == "online") return true;
  if (payload == "offline") return false;
  json::ScanResult scan = json::scan(payload, kMaxStatusDepth);
  if (!scan.ok() || scan.top != json::Kind::object) return std::nullopt;
  // Two "online" members are ambiguous (parsers differ on which wins), so
  // the callback counts the top-level ones; nlohmann keeps only the last.
  std::size_t online_members = 0;
  nlohmann::json::parser_callback_t count = [&online_members](int depth, nlohmann::json::parse_event_t event,
                                                              nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed == "online") ++online_members;
    return true;
  };
  nlohmann::json doc = nlohmann::json::parse(payload, count, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || online_members != 1) return std::nullopt;
  auto online = doc.find("online");
  if (online == doc.end() || !online->is_boolean()) return std::nullopt;
  return online->get<bool>();
}

PresenceTracker::PresenceTracker(const Topics& topics, PresenceSettings settings, redis::Commands& redis,
                                 ops::Metrics& metrics)
    : topics_(topics),
      settings_(settings),
      redis_(redis),
      changes_stream_(redis, topics.presence_stream(), settings.stream_maxlen),
      script_sha_(sha1_hex(kPresenceScript)),
      received_(metrics.counter("boxgate_presence_received_total", "device status messages received from MQTT")),
      superseded_(metrics.counter("boxgate_presence_superseded_total",
                                  "queued status updates replaced by a newer one for the same box")),
      queued_gauge_(metrics.gauge("boxgate_presence_queued", "boxes whose status update waits for Redis")),
      wakes_(metrics.counter("boxgate_queue_wakes_sent_total",
                             "boxes that came online, announced to the gateways' queues")) {
  for (int online = 0; online < 2; ++online) {
    std::string label = online ? "state=\"online\"" : "state=\"offline\"";
    updates_[online] = &metrics.counter("boxgate_presence_updates_total",
                                        "status updates applied in Redis (changed or not), by state", label);
    changes_[online] = &metrics.counter("boxgate_presence_changes_total",
                                        "status updates that changed a box's stored state, by state", label);
  }
  for (int i = 0; i < kDropReasons; ++i) {
    dropped_[i] = &metrics.counter("boxgate_presence_dropped_total", "status messages dropped, by reason",
                                   std::string("reason=\"") + drop_reason(i) + "\"");
  }
}

void PresenceTracker::accept(std::string_view topic, std::string_view payload) {
  received_.inc();
  auto box = topics_.parse_status_topic(topic);
  if (!box) return drop(Drop::invalid_topic, topic);
  if (payload.size() > kMaxStatusBytes) return drop(Drop::too_large, topic);
  auto online = parse_status_payload(payload);
  if (!online) return drop(Drop::invalid_payload, topic);
  enqueue({topics_.presence_key(*box), box->str(), *online, wall_ms(), next_seq_++}, false);
  flush();
}

void PresenceTracker::drop(Drop reason, std::string_view what) {
  dropped_[static_cast<int>(reason)]->inc();
  // A flood of garbage must not flood the log.
  if (drop_log_.allow()) {
    log::get("bridge")->warn("dropped a status update ({}): {} (further drops this second not logged)",
                             what.substr(0, 200), drop_reason(static_cast<int>(reason)));
  }
}

void PresenceTracker::enqueue(Update update, bool at_front) {
  auto found = queued_.find(update.key);
  if (found != queued_.end()) {
    // Latest wins: of two updates for one box only the newer is worth writing.
    superseded_.inc();
    if (found->second.seq < update.seq) found->second = std::move(update);
    return;
  }
  if (queued_.size() >= settings_.queue_capacity) return drop(Drop::queue_full, update.key);
  std::string key = update.key;
  if (at_front) {
    order_.push_front(key);
  } else {
    order_.push_back(key);
  }
  queued_.emplace(std::move(key), std::move(update));
  set_queued_gauge();
}

void PresenceTracker::flush() {
  while (redis_.up() && in_flight_ < kMaxInFlight && !order_.empty()) {
    auto found = queued_.find(order_.front());
    order_.pop_front();
    Update update = std::move(found->second);
    queued_.erase(found);
    set_queued_gauge();
    send(std::move(update), script_sha_.empty());
  }
}

void PresenceTracker::send(Update update, bool use_eval) {
  auto owned = std::make_shared<Update>(std::move(update));
  ++in_flight_;
  const std::string at = std::to_string(owned->at_ms);
  const std::string_view state = owned->online ? "1" : "0";
  std::vector<std::string_view> argv = {use_eval ? "EVAL" : "EVALSHA",
                                        use_eval ? std::string_view(kPresenceScript) : std::string_view(script_sha_),
                                        "1",
                                        owned->key,
                                        state,
                                        at};
  bool accepted = redis_.run(argv, [this, owned, use_eval](const redisReply* reply) {
    answered(*owned, use_eval, reply);
  });
  if (!accepted) {
    --in_flight_;
    enqueue(std::move(*owned), true);
  }
}

void PresenceTracker::answered(Update& update, bool use_eval, const redisReply* reply) {
  --in_flight_;
  if (!reply) {
    // The connection broke before Redis answered: write it again after the
    // reconnect (the script is idempotent, so a write that did land is harmless).
    return enqueue(std::move(update), true);
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    std::string_view error(reply->str, reply->len);
    // A restarted Redis (or a failover) has an empty script cache: send the
    // script itself, which also caches it for the next EVALSHA.
    if (!use_eval && error.substr(0, 8) == "NOSCRIPT") return send(std::move(update), true);
    drop(Drop::redis_error, std::string(update.key) + ": " + std::string(error.substr(0, 200)));
  } else {
    updates_[update.online]->inc();
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
      changes_[update.online]->inc();
      changes_stream_.add(update.box, update.online ? "online" : "offline",
                          presence_payload(update.box, update.online, update.at_ms), update.at_ms);
      if (update.online) wake(update.box);
    }
  }
  flush();  // room in flight again
}

void PresenceTracker::wake(const std::string& box) {
  // At most once, like every pub/sub message: a gateway that misses it
  // finds the box's queue at its next sweep. In a cluster, a shard channel
  // (the gateways' subscriber uses SSUBSCRIBE there).
  redis_.run({redis_.clustered() ? "SPUBLISH" : "PUBLISH", topics_.queue_wake_channel(), box}, {});
  wakes_.inc();
}

void PresenceTracker::abandon() {
  std::size_t left = queued_.size();
  order_.clear();
  queued_.clear();
  set_queued_gauge();
  if (left == 0) return;
  dropped_[static_cast<int>(Drop::shutdown)]->inc(left);
  log::get("bridge")->error("{} status updates not written to Redis at exit (stopping while Redis is unavailable)",
                            left);
}

void PresenceTracker::set_queued_gauge() { queued_gauge_.set(static_cast<std::int64_t>(queued_.size())); }

}  // namespace boxgate::bridge
