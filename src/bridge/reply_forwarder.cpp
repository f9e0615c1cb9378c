#include "reply_forwarder.hpp"

#include <hiredis/hiredis.h>

#include "boxgate/json_scan.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/stored_reply.hpp"

namespace boxgate::bridge {

namespace {
const char* drop_reason(int reason) {
  static const char* names[] = {"invalid_topic", "invalid_id", "too_large", "queue_full",
                                "redis_error",   "shutdown",   "unsolicited"};
  return names[reason];
}

// The request id of a reply sent without one in its topic: the payload's one
// top-level "id", a string. The payload must be valid JSON; two "id" members
// are ambiguous (parsers differ on which wins), so neither is trusted. The
// scan is iterative and needs no depth limit: a payload up to
// max_reply_bytes nested at every byte costs a bit per level, not the stack.
std::optional<RequestId> id_from_payload(std::string_view payload) {
  json::ScanResult scan = json::scan(payload);
  if (!scan.ok() || scan.top != json::Kind::object || scan.id_count != 1 || !scan.id_string) return std::nullopt;
  return RequestId::parse(*scan.id_string);
}
}  // namespace

ReplyForwarder::ReplyForwarder(EventLoop& loop, const Topics& topics, ForwarderSettings settings,
                               redis::Commands& redis, ops::Metrics& metrics)
    : topics_(topics),
      settings_(settings),
      redis_(redis),
      outcomes_(redis, topics.outcome_stream(), settings.outcome_stream_maxlen),
      received_(metrics.counter("boxgate_replies_received_total", "device replies received from MQTT")),
      forwarded_(metrics.counter("boxgate_replies_forwarded_total", "replies stored and published in Redis")),
      unclaimed_(metrics.counter("boxgate_replies_unclaimed_total",
                                 "forwarded replies no gateway was waiting for (late or duplicate)")),
      outbox_({settings.queue_capacity, settings.queue_max_bytes},
              metrics.gauge("boxgate_replies_queued", "replies waiting to be forwarded to Redis"),
              metrics.gauge("boxgate_replies_held_bytes", "payload bytes of replies queued or in flight to Redis")),
      recheck_timer_(loop, [this] { recheck(); }) {
  for (int i = 0; i < kDropReasons; ++i) {
    dropped_[i] = &metrics.counter("boxgate_replies_dropped_total", "replies dropped, by reason",
                                   std::string("reason=\"") + drop_reason(i) + "\"");
  }
}

void ReplyForwarder::accept(std::string_view topic, std::string_view payload) {
  received_.inc();
  auto address = topics_.parse_reply_topic(topic);
  if (!address) return drop(Drop::invalid_topic, topic);
  if (payload.size() > settings_.max_reply_bytes) return drop(Drop::too_large, topic);
  if (!address->request) {
    address->request = id_from_payload(payload);
    if (!address->request) return drop(Drop::invalid_id, topic);
  }
  if (!outbox_.push({topics_.response_channel(address->box, *address->request),
                     topics_.command_key(address->box, *address->request), std::string(payload),
                     address->box.str(), address->request->str()})) {
    return drop(Drop::queue_full, topic);
  }
  flush();
}

void ReplyForwarder::drop(Drop reason, std::string_view topic) {
  dropped_[static_cast<int>(reason)]->inc();
  // A flood of garbage must not flood the log.
  if (drop_log_.allow()) {
    log::get("bridge")->warn("dropped a reply on topic '{}': {} (further drops this second not logged)",
                             topic.substr(0, 200), drop_reason(static_cast<int>(reason)));
  }
}

void ReplyForwarder::flush() {
  outbox_.flush(redis_.up(), [this](const std::shared_ptr<Reply>& reply) { return send(reply); });
}

void ReplyForwarder::redis_connected() {
  recheck_until_ = std::chrono::steady_clock::now() + kRecheckWindow;
  flush();
}

void ReplyForwarder::recheck() {
  auto due = std::move(rechecks_);
  rechecks_.clear();
  for (const auto& reply : due) {
    if (!send(reply)) sent(*reply, redis::Commands::Status::lost, 0);  // back to the queue
  }
}

// EXISTS of the record, then SET+PUBLISH once it answered 1: one more round
// trip, but the cheapest on Redis, the resource every gateway and bridge
// shares (bench/instructions --redis, per command: Redis +5.6k instructions,
// the bridge +7.2k, against +28.2k and -1.4k for a Lua script doing all three;
// docs/performance.md, "The reply's record check"), and one way for every
// redis_mode (in a cluster the two keys sit on different slots).
bool ReplyForwarder::send(const std::shared_ptr<Reply>& reply) {
  return redis_.run({"EXISTS", reply->record}, [this, reply](const redisReply* answer) {
    using Status = redis::Commands::Status;
    if (!answer) return sent(*reply, Status::lost, 0);
    if (answer->type == REDIS_REPLY_ERROR) return sent(*reply, Status::error, 0);
    if (answer->type != REDIS_REPLY_INTEGER || answer->integer == 0) {
      if (std::chrono::steady_clock::now() < recheck_until_) {
        rechecks_.push_back(reply);
        if (!recheck_timer_.pending()) recheck_timer_.start(kRecheckEvery);
        return;
      }
      // Published (a small reply), never kept: only a gateway waiting for
      // that very id listens (one whose record a Redis restart without
      // persistence lost), and a message nobody listens to costs nothing.
      if (!reply_goes_stored(reply->payload, settings_.reply_inline_max_bytes)) {
        redis_.run({redis_.clustered() ? "SPUBLISH" : "PUBLISH", reply->key, reply->payload}, {});
      }
      return unsolicited(*reply);
    }
    if (!store(reply)) sent(*reply, Status::lost, 0);  // the connection broke meanwhile
  });
}

bool ReplyForwarder::store(const std::shared_ptr<Reply>& reply) {
  // A large reply goes through the result key alone; its channel gets a notice.
  std::string notice;
  if (reply_goes_stored(reply->payload, settings_.reply_inline_max_bytes)) {
    notice = stored_reply_notice(reply->payload.size());
  }
  std::string_view message = notice.empty() ? std::string_view(reply->payload) : std::string_view(notice);
  return redis_.set_and_publish(reply->key, reply->payload, message, settings_.result_ttl_ms,
                                [this, reply](redis::Commands::Status status, long long receivers) {
                                  sent(*reply, status, receivers);
                                });
}

void ReplyForwarder::sent(Reply& reply, redis::Commands::Status status, long long receivers) {
  switch (status) {
    case redis::Commands::Status::ok:
      forwarded_.inc();
      // Nobody subscribed: the command timed out or was already answered
      // (duplicate reply). The result key keeps
      // it for a retry with the same X-Request-Id.
      if (receivers == 0) unclaimed_.inc();
      tell_succeeded(reply, receivers == 0);
      break;
    case redis::Commands::Status::lost:
      // The connection broke before Redis answered: send again after reconnect.
      return outbox_.answered(reply, true);
    case redis::Commands::Status::error:
      drop(Drop::redis_error, reply.key);
      break;
  }
  outbox_.answered(reply, false);
  flush();  // room in flight again
}

void ReplyForwarder::tell_succeeded(const Reply& reply, bool late) {
  if (!outcomes_.enabled()) return;
  OutcomeEvent e;
  e.box = reply.box;
  e.request_id = reply.request_id;
  e.state = "succeeded";
  e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  e.late = late;
  e.reply_bytes = static_cast<std::int64_t>(reply.payload.size());
  outcomes_.add(e);
}

// No gateway issued the id (or its record expired: a reply later than
// timeout + result_ttl_ms, which no caller could read any more).
void ReplyForwarder::unsolicited(Reply& reply) {
  drop(Drop::unsolicited, reply.key);
  outbox_.answered(reply, false);
  flush();
}

void ReplyForwarder::abandon() {
  // Still no record for these: as unsolicited as they would have been.
  recheck_timer_.cancel();
  auto waiting = std::move(rechecks_);
  rechecks_.clear();
  for (const auto& reply : waiting) {
    drop(Drop::unsolicited, reply->key);
    outbox_.answered(*reply, false);
  }
  auto left = outbox_.abandon();
  if (left.empty()) return;
  auto logger = log::get("bridge");
  for (const Reply& reply : left) {
    dropped_[static_cast<int>(Drop::shutdown)]->inc();
    logger->error("reply not forwarded (stopping while Redis is unavailable): key {} ({} bytes)", reply.key,
                  reply.payload.size());
  }
  logger->error("{} replies not forwarded at exit", left.size());
}

}  // namespace boxgate::bridge
