#include "events/event_tail.hpp"

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

std::string_view str_of(const redisReply* r) {
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

// "ms-seq" -> (ms, seq); "ms" -> (ms, 0).
std::pair<std::string_view, std::string_view> halves(std::string_view id) {
  auto dash = id.find('-');
  if (dash == std::string_view::npos) return {id, "0"};
  return {id.substr(0, dash), id.substr(dash + 1)};
}

bool digits(std::string_view s) {
  return !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal strings without leading zeros compare by length, then bytes.
bool number_less(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a[0] == '0') a.remove_prefix(1);
  while (b.size() > 1 && b[0] == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}
}  // namespace

bool is_stream_id(std::string_view id) noexcept {
  auto [ms, seq] = halves(id);
  return digits(ms) && digits(seq);
}

bool stream_id_less(std::string_view a, std::string_view b) noexcept {
  auto [ams, aseq] = halves(a);
  auto [bms, bseq] = halves(b);
  if (ams != bms && (number_less(ams, bms) || number_less(bms, ams))) return number_less(ams, bms);
  return number_less(aseq, bseq);
}

std::vector<StoredEvent> parse_entries(const redisReply* array) {
  std::vector<StoredEvent> out;
  if (!array || array->type != REDIS_REPLY_ARRAY) return out;
  out.reserve(array->elements);
  for (std::size_t i = 0; i < array->elements; ++i) {
    const redisReply* entry = array->element[i];
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    const redisReply* fields = entry->element[1];
    if (!fields || fields->type != REDIS_REPLY_ARRAY) continue;
    StoredEvent event;
    event.id = std::string(str_of(entry->element[0]));
    bool has_box = false, has_name = false;
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      std::string_view key = str_of(fields->element[f]);
      std::string_view value = str_of(fields->element[f + 1]);
      if (key == "box") event.box = value, has_box = true;
      else if (key == "name") event.name = value, has_name = true;
      else if (key == "payload") event.payload = value;
      else if (key == "received_ms") event.received_ms = value;
    }
    if (has_box && has_name && is_stream_id(event.id)) out.push_back(std::move(event));
  }
  return out;
}

EventTail::EventTail(EventLoop& loop, const redis::Commands& commands, const Topics& topics,
                     ops::Readiness& readiness, ops::Metrics& metrics)
    : loop_(loop),
      commands_(commands),
      topics_(topics),
      stream_(topics.fleet_events_stream()),
      up_gauge_(metrics.gauge("boxgate_event_tail_up", "1 while the fleet event stream reader is connected")),
      reconnects_(metrics.counter("boxgate_event_tail_reconnects_total", "reconnections of the fleet stream reader")),
      dependency_(readiness, "event_tail", up_gauge_, reconnects_),
      watchdog_(loop, [this] {
        if (connection_) connection_->force_reconnect("fleet stream read got no answer in time");
      }),
      retarget_timer_(loop, [this] { retarget(); }),
      retry_timer_(loop, [this] { connected(); }),
      delivered_(metrics.counter("boxgate_event_tail_events_total", "fleet stream entries read for live streams")) {}

EventTail::~EventTail() { stop(); }

void EventTail::stop() {
  watchdog_.cancel();
  retarget_timer_.cancel();
  retry_timer_.cancel();
  if (connection_) connection_->stop();  // outstanding callbacks run now, with no reply
}

void EventTail::join(Listener* listener) {
  listeners_.push_back(listener);
  if (!retarget_timer_.pending()) {
    connect();
    retarget_timer_.start(std::chrono::seconds(1), true);
  }
  if (positioned_) listener->on_positioned();
}

void EventTail::connect() {
  std::optional<RedisSettings> target = commands_.settings_for_key(stream_);
  if (!target) return;  // cluster map not known yet: the next retarget() tries
  settings_ = *target;
  connection_ = std::make_unique<redis::Connection>(
      loop_, settings_, "redis event tail connection", dependency_,
      redis::Connection::Events{[this] { connected(); }, [this] { in_hiredis_ = false; }});
  connection_->start();
}

// A timer's callback, never inside hiredis: the old connection may go. Only a
// cluster changes where the stream is (a slot migration or a failover); the
// new connection resumes after the last id seen, so nothing is skipped.
void EventTail::retarget() {
  std::optional<RedisSettings> target = commands_.settings_for_key(stream_);
  if (connection_ && target && target->host == settings_.host && target->port == settings_.port) return;
  if (connection_ && !target) return;  // keep what we have until the map is known again
  if (connection_) {
    log::get("events")->info("fleet stream moved to {}:{}; reading it there", target->host, target->port);
    connection_->stop();  // our outstanding read gets its null reply now
    connection_.reset();
  }
  connect();
}

void EventTail::leave(Listener* listener) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
}

void EventTail::connected() {
  redisAsyncContext* ctx = connection_->context();
  if (!ctx || in_hiredis_) return;
  if (positioned_) return read_next();  // resume after the last id seen: nothing is skipped
  if (redisAsyncCommand(ctx, &EventTail::on_position_reply, this, "XREVRANGE %b + - COUNT 1", stream_.data(),
                        stream_.size()) != REDIS_OK) {
    return;
  }
  in_hiredis_ = true;
  watchdog_.start(std::chrono::milliseconds(settings_.dead_after_ms));
  connection_->flush_soon();
}

void EventTail::on_position_reply(redisAsyncContext*, void* r, void* arg) {
  auto* self = static_cast<EventTail*>(arg);
  self->in_hiredis_ = false;
  self->watchdog_.cancel();
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) return;  // connection lost: connected() asks again
  if (self->failed(reply, "cannot read the fleet stream's position")) return;
  std::vector<StoredEvent> last = parse_entries(reply);
  // An empty stream: everything from its first entry on is new.
  self->last_id_ = last.empty() ? "0-0" : last[0].id;
  self->positioned_ = true;
  log::get("events")->debug("fleet stream reader positioned after {}", self->last_id_);
  self->read_next();
  std::vector<Listener*> waiting = self->listeners_;
  for (Listener* l : waiting) {
    if (std::find(self->listeners_.begin(), self->listeners_.end(), l) != self->listeners_.end()) l->on_positioned();
  }
}

void EventTail::read_next() {
  redisAsyncContext* ctx = connection_ ? connection_->context() : nullptr;
  if (!ctx || in_hiredis_) return;
  std::string block = std::to_string(kBlockMs);
  if (redisAsyncCommand(ctx, &EventTail::on_read_reply, this, "XREAD COUNT %s BLOCK %b STREAMS %b %b", kReadCount,
                        block.data(), block.size(), stream_.data(), stream_.size(), last_id_.data(),
                        last_id_.size()) != REDIS_OK) {
    return;
  }
  in_hiredis_ = true;
  watchdog_.start(std::chrono::milliseconds(kBlockMs + settings_.dead_after_ms));
  connection_->flush_soon();
}

void EventTail::on_read_reply(redisAsyncContext*, void* r, void* arg) {
  auto* self = static_cast<EventTail*>(arg);
  self->in_hiredis_ = false;
  self->watchdog_.cancel();
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) return;  // connection lost: connected() resumes from last_id_
  if (self->failed(reply, "fleet stream read failed")) return;
  if (reply->type == REDIS_REPLY_ARRAY) self->deliver(reply);
  // nil: the BLOCK time passed with nothing new.
  self->read_next();
}

bool EventTail::failed(const redisReply* reply, const char* what) {
  auto logger = log::get("events");
  if (reply->type != REDIS_REPLY_ERROR) {
    if (auto solved = errors_.resolve()) {
      logger->info("fleet stream reader works again (after {} more failures like: {})", solved->second, solved->first);
    }
    return false;
  }
  std::string problem = std::string(what) + ": " + std::string(reply->str, reply->len);
  if (errors_.report(problem)) {
    logger->error("{}; asking again every {} ms", problem, kRetryAfterError.count());
  } else {
    logger->debug("{} (again)", problem);
  }
  retry_timer_.start(kRetryAfterError);  // connected() sends the command that failed again
  return true;
}

void EventTail::deliver(const redisReply* reply) {
  // [[stream, [entries...]]]
  for (std::size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (!stream || stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
    const redisReply* entries = stream->element[1];
    // The position moves past every entry, even one without our fields.
    if (entries && entries->type == REDIS_REPLY_ARRAY && entries->elements > 0) {
      const redisReply* last = entries->element[entries->elements - 1];
      if (last && last->type == REDIS_REPLY_ARRAY && last->elements >= 1) {
        std::string_view id = str_of(last->element[0]);
        if (is_stream_id(id)) last_id_ = std::string(id);
      }
    }
    for (const StoredEvent& event : parse_entries(entries)) {
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
