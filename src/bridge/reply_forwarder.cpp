#include "reply_forwarder.hpp"

#include <nlohmann/json.hpp>

#include "boxgate/logging.hpp"

namespace boxgate::bridge {

namespace {
// Pairs handed to hiredis before waiting for answers: bounds the memory of a
// slow Redis while keeping the pipeline full.
constexpr std::size_t kMaxInFlight = 4096;

const char* drop_reason(int reason) {
  static const char* names[] = {"invalid_topic", "invalid_id", "too_large", "queue_full", "redis_error"};
  return names[reason];
}

// The request id of a reply sent without one in its topic: the payload's "id".
std::optional<RequestId> id_from_payload(std::string_view payload) {
  auto doc = nlohmann::json::parse(payload, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  auto it = doc.find("id");
  if (it == doc.end() || !it->is_string()) return std::nullopt;
  return RequestId::parse(it->get_ref<const std::string&>());
}
}  // namespace

ReplyForwarder::ReplyForwarder(EventLoop& loop, const Topics& topics, ForwarderSettings settings,
                               redis::Commands& redis, ops::Metrics& metrics)
    : loop_(loop),
      topics_(topics),
      settings_(settings),
      redis_(redis),
      received_(metrics.counter("boxgate_replies_received_total", "device replies received from MQTT")),
      forwarded_(metrics.counter("boxgate_replies_forwarded_total", "replies stored and published in Redis")),
      unclaimed_(metrics.counter("boxgate_replies_unclaimed_total",
                                 "forwarded replies no gateway was waiting for (late, duplicate or unknown)")),
      queued_(metrics.gauge("boxgate_replies_queued", "replies waiting to be forwarded to Redis")) {
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
  if (queue_.size() >= settings_.queue_capacity) return drop(Drop::queue_full, topic);
  queue_.push_back({topics_.response_channel(address->box, *address->request), std::string(payload)});
  queued_.set(static_cast<std::int64_t>(queue_.size()));
  flush();
}

void ReplyForwarder::drop(Drop reason, std::string_view topic) {
  dropped_[static_cast<int>(reason)]->inc();
  // At most one line a second: a flood of garbage must not flood the log.
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  if (now - last_drop_log_ms_ >= 1000) {
    last_drop_log_ms_ = now;
    log::get("bridge")->warn("dropped a reply on topic '{}': {} (further drops this second not logged)",
                             topic.substr(0, 200), drop_reason(static_cast<int>(reason)));
  }
}

void ReplyForwarder::flush() {
  while (redis_.up() && in_flight_ < kMaxInFlight && !queue_.empty()) {
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
  bool accepted = redis_.set_and_publish(owned->key, owned->payload, settings_.result_ttl_ms,
                                         [this, owned](redis::Commands::Status status, long long receivers) {
                                           sent(*owned, status, receivers);
                                         });
  if (!accepted) {
    --in_flight_;
    requeue(std::move(*owned));
  }
}

void ReplyForwarder::requeue(Reply&& reply) {
  queue_.push_front(std::move(reply));
  queued_.set(static_cast<std::int64_t>(queue_.size()));
}

void ReplyForwarder::sent(Reply& reply, redis::Commands::Status status, long long receivers) {
  --in_flight_;
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
  if (in_flight_ == kMaxInFlight - 1) flush();
}

std::size_t ReplyForwarder::backlog() const {
  return queue_.size() + in_flight_;
}

}  // namespace boxgate::bridge
