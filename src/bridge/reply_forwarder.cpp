#include "reply_forwarder.hpp"

#include "boxgate/json_scan.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/stored_reply.hpp"

namespace boxgate::bridge {

namespace {
// Pairs handed to hiredis before waiting for answers: bounds the memory of a
// slow Redis (hiredis's copy of each pair) while keeping the pipeline full.
// One pair always goes, however large.
constexpr std::size_t kMaxInFlight = 4096;
constexpr std::size_t kMaxInFlightBytes = 32 << 20;

const char* drop_reason(int reason) {
  static const char* names[] = {"invalid_topic", "invalid_id", "too_large", "queue_full", "redis_error", "shutdown"};
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

ReplyForwarder::ReplyForwarder(const Topics& topics, ForwarderSettings settings,
                               redis::Commands& redis, ops::Metrics& metrics)
    : topics_(topics),
      settings_(settings),
      redis_(redis),
      received_(metrics.counter("boxgate_replies_received_total", "device replies received from MQTT")),
      forwarded_(metrics.counter("boxgate_replies_forwarded_total", "replies stored and published in Redis")),
      unclaimed_(metrics.counter("boxgate_replies_unclaimed_total",
                                 "forwarded replies no gateway was waiting for (late, duplicate or unknown)")),
      queued_(metrics.gauge("boxgate_replies_queued", "replies waiting to be forwarded to Redis")),
      held_bytes_gauge_(metrics.gauge("boxgate_replies_held_bytes",
                                      "payload bytes of replies queued or in flight to Redis")) {
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
  if (queue_.size() >= settings_.queue_capacity || payload.size() > settings_.queue_max_bytes - held_bytes_) {
    return drop(Drop::queue_full, topic);
  }
  held_bytes_ += payload.size();
  queue_.push_back({topics_.response_channel(address->box, *address->request), std::string(payload)});
  queued_.set(static_cast<std::int64_t>(queue_.size()));
  held_bytes_gauge_.set(static_cast<std::int64_t>(held_bytes_));
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
  while (redis_.up() && in_flight_ < kMaxInFlight && !queue_.empty()) {
    // One pair always goes, however large; more only within the byte bound.
    if (in_flight_ > 0 && in_flight_bytes_ + queue_.front().payload.size() > kMaxInFlightBytes) return;
    Reply reply = std::move(queue_.front());
    queue_.pop_front();
    queued_.set(static_cast<std::int64_t>(queue_.size()));
    send(std::move(reply));
  }
}

void ReplyForwarder::send(Reply reply) {
  // Shared so the views handed to hiredis and the retry copy are one string.
  auto owned = std::make_shared<Reply>(std::move(reply));
  ++in_flight_;
  in_flight_bytes_ += owned->payload.size();
  // A large reply goes through the result key alone; its channel gets a notice.
  std::string notice;
  if (reply_goes_stored(owned->payload, settings_.reply_inline_max_bytes)) {
    notice = stored_reply_notice(owned->payload.size());
  }
  std::string_view message = notice.empty() ? std::string_view(owned->payload) : std::string_view(notice);
  bool accepted = redis_.set_and_publish(owned->key, owned->payload, message, settings_.result_ttl_ms,
                                         [this, owned](redis::Commands::Status status, long long receivers) {
                                           sent(*owned, status, receivers);
                                         });
  if (!accepted) {
    landed(*owned);
    requeue(std::move(*owned));
  }
}

void ReplyForwarder::landed(const Reply& reply) {
  --in_flight_;
  in_flight_bytes_ -= reply.payload.size();
}

void ReplyForwarder::release(const Reply& reply) {
  held_bytes_ -= reply.payload.size();
  held_bytes_gauge_.set(static_cast<std::int64_t>(held_bytes_));
}

void ReplyForwarder::requeue(Reply&& reply) {
  queue_.push_front(std::move(reply));
  queued_.set(static_cast<std::int64_t>(queue_.size()));
}

void ReplyForwarder::sent(Reply& reply, redis::Commands::Status status, long long receivers) {
  landed(reply);
  switch (status) {
    case redis::Commands::Status::ok:
      forwarded_.inc();
      // Nobody subscribed: the command timed out, was already answered
      // (duplicate reply) or never came from a gateway. The result key keeps
      // it for a retry with the same X-Request-Id.
      if (receivers == 0) unclaimed_.inc();
      break;
    case redis::Commands::Status::lost:
      // The connection broke before Redis answered: send again after reconnect.
      return requeue(std::move(reply));
    case redis::Commands::Status::error:
      drop(Drop::redis_error, reply.key);
      break;
  }
  release(reply);
  flush();  // room in flight again
}

void ReplyForwarder::abandon() {
  std::deque<Reply> left;
  left.swap(queue_);
  for (const Reply& reply : left) held_bytes_ -= reply.payload.size();
  queued_.set(0);
  held_bytes_gauge_.set(static_cast<std::int64_t>(held_bytes_));
  if (left.empty()) return;
  auto logger = log::get("bridge");
  for (const Reply& reply : left) {
    dropped_[static_cast<int>(Drop::shutdown)]->inc();
    logger->error("reply not forwarded (stopping while Redis is unavailable): key {} ({} bytes)", reply.key,
                  reply.payload.size());
  }
  logger->error("{} replies not forwarded at exit", left.size());
}

std::size_t ReplyForwarder::backlog() const {
  return queue_.size() + in_flight_;
}

}  // namespace boxgate::bridge
