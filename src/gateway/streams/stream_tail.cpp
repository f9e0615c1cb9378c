#include "streams/stream_tail.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>

#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {
constexpr int kBlockMs = 5000;
constexpr const char* kReadCount = "64";
// An error reply (a key of another type, an ACL refusal) repeats if the same
// command goes again at once: a busy loop against Redis. Ask again this late.
constexpr std::chrono::milliseconds kRetryAfterError{1000};

std::string stream_label(const std::string& label) { return "stream=\"" + label + "\""; }

}  // namespace

StreamTail::StreamTail(EventLoop& loop, const redis::Commands& commands, Source source, ops::Readiness& readiness,
                       ops::Metrics& metrics)
    : loop_(loop),
      commands_(commands),
      stream_(std::move(source.key)),
      what_(std::move(source.what)),
      up_gauge_(metrics.gauge("boxgate_event_tail_up", "1 while a stream's reader (the tail of live streams) is connected",
                              stream_label(source.label))),
      reconnects_(metrics.counter("boxgate_event_tail_reconnects_total", "reconnections of a stream's reader",
                                  stream_label(source.label))),
      dependency_(readiness, source.label + "_tail", up_gauge_, reconnects_),
      watchdog_(loop, [this] {
        if (connection_) connection_->force_reconnect("stream read got no answer in time");
      }),
      retarget_timer_(loop, [this] { retarget(); }),
      retry_timer_(loop, [this] { connected(); }),
      delivered_(metrics.counter("boxgate_event_tail_events_total", "a stream's entries read for live streams",
                                 stream_label(source.label))) {}

StreamTail::~StreamTail() { stop(); }

void StreamTail::stop() {
  watchdog_.cancel();
  retarget_timer_.cancel();
  retry_timer_.cancel();
  if (connection_) connection_->stop();  // outstanding callbacks run now, with no reply
}

void StreamTail::join(Listener* listener) {
  listeners_.push_back(listener);
  if (!retarget_timer_.pending()) {
    connect();
    retarget_timer_.start(std::chrono::seconds(1), true);
  }
  if (positioned_) listener->on_positioned();
}

void StreamTail::connect() {
  std::optional<RedisSettings> target = commands_.settings_for_key(stream_);
  if (!target) return;  // cluster map not known yet: the next retarget() tries
  settings_ = *target;
  connection_ = std::make_unique<redis::Connection>(
      loop_, settings_, "redis " + what_ + " tail connection", dependency_,
      redis::Connection::Events{[this] { connected(); }, [this] { in_hiredis_ = false; }});
  connection_->start();
}

// A timer's callback, never inside hiredis: the old connection may go. Only a
// cluster changes where the stream is (a slot migration or a failover); the
// new connection resumes after the last id seen, so nothing is skipped.
void StreamTail::retarget() {
  std::optional<RedisSettings> target = commands_.settings_for_key(stream_);
  if (connection_ && target && target->host == settings_.host && target->port == settings_.port) return;
  if (connection_ && !target) return;  // keep what we have until the map is known again
  if (connection_) {
    log::get("events")->info("{} moved to {}:{}; reading it there", what_, target->host, target->port);
    connection_->stop();  // our outstanding read gets its null reply now
    connection_.reset();
  }
  connect();
}

void StreamTail::leave(Listener* listener) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
}

void StreamTail::connected() {
  redisAsyncContext* ctx = connection_->context();
  if (!ctx || in_hiredis_) return;
  if (positioned_) return read_next();  // resume after the last id seen: nothing is skipped
  if (redisAsyncCommand(ctx, &StreamTail::on_position_reply, this, "XREVRANGE %b + - COUNT 1", stream_.data(),
                        stream_.size()) != REDIS_OK) {
    return;
  }
  in_hiredis_ = true;
  watchdog_.start(std::chrono::milliseconds(settings_.dead_after_ms));
  connection_->flush_soon();
}

void StreamTail::on_position_reply(redisAsyncContext*, void* r, void* arg) {
  auto* self = static_cast<StreamTail*>(arg);
  self->in_hiredis_ = false;
  self->watchdog_.cancel();
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) return;  // connection lost: connected() asks again
  if (self->failed(reply, "cannot read the " + self->what_ + "'s position")) return;
  std::vector<redis::StoredEvent> last = redis::parse_entries(reply);
  // An empty stream: everything from its first entry on is new.
  self->last_id_ = last.empty() ? "0-0" : last[0].id;
  self->positioned_ = true;
  log::get("events")->debug("{} reader positioned after {}", self->what_, self->last_id_);
  self->read_next();
  std::vector<Listener*> waiting = self->listeners_;
  for (Listener* l : waiting) {
    if (std::find(self->listeners_.begin(), self->listeners_.end(), l) != self->listeners_.end()) l->on_positioned();
  }
}

void StreamTail::read_next() {
  redisAsyncContext* ctx = connection_ ? connection_->context() : nullptr;
  if (!ctx || in_hiredis_) return;
  std::string block = std::to_string(kBlockMs);
  if (redisAsyncCommand(ctx, &StreamTail::on_read_reply, this, "XREAD COUNT %s BLOCK %b STREAMS %b %b", kReadCount,
                        block.data(), block.size(), stream_.data(), stream_.size(), last_id_.data(),
                        last_id_.size()) != REDIS_OK) {
    return;
  }
  in_hiredis_ = true;
  watchdog_.start(std::chrono::milliseconds(kBlockMs + settings_.dead_after_ms));
  connection_->flush_soon();
}

void StreamTail::on_read_reply(redisAsyncContext*, void* r, void* arg) {
  auto* self = static_cast<StreamTail*>(arg);
  self->in_hiredis_ = false;
  self->watchdog_.cancel();
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) return;  // connection lost: connected() resumes from last_id_
  if (self->failed(reply, self->what_ + " read failed")) return;
  if (reply->type == REDIS_REPLY_ARRAY) self->deliver(reply);
  // nil: the BLOCK time passed with nothing new.
  self->read_next();
}

bool StreamTail::failed(const redisReply* reply, const std::string& what) {
  auto logger = log::get("events");
  if (reply->type != REDIS_REPLY_ERROR) {
    if (auto solved = errors_.resolve()) {
      logger->info("{} reader works again (after {} more failures like: {})", what_, solved->second, solved->first);
    }
    return false;
  }
  std::string problem = what + ": " + std::string(reply->str, reply->len);
  if (errors_.report(problem)) {
    logger->error("{}; asking again every {} ms", problem, kRetryAfterError.count());
  } else {
    logger->debug("{} (again)", problem);
  }
  retry_timer_.start(kRetryAfterError);  // connected() sends the command that failed again
  return true;
}

void StreamTail::deliver(const redisReply* reply) {
  // [[stream, [entries...]]]
  for (std::size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (!stream || stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
    const redisReply* entries = stream->element[1];
    // The position moves past every entry, even one without our fields.
    if (auto last = redis::last_entry_id(entries)) last_id_ = std::move(*last);
    for (const redis::StoredEvent& event : redis::parse_entries(entries)) {
      delivered_.inc();
      // A listener may leave (or others join) from inside on_event.
      std::vector<Listener*> now = listeners_;
      for (Listener* l : now) {
        if (std::find(listeners_.begin(), listeners_.end(), l) != listeners_.end()) l->on_event(event);
      }
    }
  }
}

}  // namespace boxgate::gateway
