#include "notify/webhook_feed.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>

#include <random>

#include "boxgate/logging.hpp"
#include "commands/command_record.hpp"

namespace boxgate::gateway {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kBackoffCapMs = 600000;

// After the n-th failed attempt (n >= 1): full = min(cap, initial x 2^(n-1)),
// uniform in [full/2, full], so replicas retrying after a shared outage spread.
std::chrono::milliseconds retry_delay(int attempts, std::chrono::milliseconds initial) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::int64_t full = initial.count();
  for (int i = 1; i < attempts && full < kBackoffCapMs; ++i) full *= 2;
  full = std::min(full, kBackoffCapMs);
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(full / 2, full)(random));
}
// A dead-letter write that failed is tried again after this.
constexpr std::chrono::seconds kDeadLetterRetry{5};
constexpr std::size_t kIdsPerClaim = 100;

std::string labels(const std::string& endpoint) { return "endpoint=\"" + endpoint + "\""; }

std::string_view str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string_view(r->str, r->len)
                                                                              : std::string_view();
}

bool is_error(const redisReply* r, std::string_view code) {
  return r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with(code);
}

}  // namespace

WebhookFeed::WebhookFeed(EventLoop& loop, redis::Commands& redis, http::Client& client, const Topics& topics,
                         WebhookEndpoint endpoint, WebhookSettings settings, ops::Metrics& metrics)
    : loop_(loop),
      redis_(redis),
      client_(client),
      topics_(topics),
      endpoint_(std::move(endpoint)),
      settings_(std::move(settings)),
      group_(group_name(endpoint_.name)),
      tick_timer_(loop, [this] { tick(); }),
      maintain_timer_(loop, [this] { maintain(); }),
      delivered_(metrics.counter("boxgate_webhook_delivered_total", "webhook deliveries answered 2xx",
                                 labels(endpoint_.name))),
      failed_(metrics.counter("boxgate_webhook_attempts_failed_total",
                              "webhook attempts not answered 2xx in time (each is retried or dead-lettered)",
                              labels(endpoint_.name))),
      dead_lettered_(metrics.counter("boxgate_webhook_dead_lettered_total",
                                     "webhook deliveries given up after webhook_retry_for_ms",
                                     labels(endpoint_.name))),
      lost_(metrics.counter("boxgate_webhook_lost_total",
                            "entries trimmed from their stream before they were delivered", labels(endpoint_.name))),
      claimed_(metrics.counter("boxgate_webhook_claimed_total",
                               "deliveries taken over from a replica that stopped", labels(endpoint_.name))),
      held_gauge_(metrics.gauge("boxgate_webhook_held", "entries read and not yet delivered, on this replica",
                                labels(endpoint_.name))),
      lag_gauge_(metrics.gauge("boxgate_webhook_lag_seconds",
                               "age of the oldest entry this replica holds undelivered", labels(endpoint_.name))) {
  for (WebhookSource kind : kWebhookSources) {
    if (!endpoint_.reads(kind)) continue;
    std::string stream = kind == WebhookSource::commands   ? topics_.outcome_stream()
                         : kind == WebhookSource::presence ? topics_.presence_stream()
                         : kind == WebhookSource::events   ? topics_.fleet_events_stream()
                                                           : topics_.webhook_replay_stream();
    sources_.push_back(Source{kind, std::move(stream)});
  }
}

WebhookFeed::~WebhookFeed() {
  held_gauge_.set(0);
  lag_gauge_.set(0);
}

void WebhookFeed::start() {
  tick_timer_.start(settings_.poll, true);
  // The lag gauge each second; leases renewed every lease/3 (a short lease
  // needs the timer more often than that).
  maintain_timer_.start(std::min(std::chrono::milliseconds(1000), settings_.lease / 3), true);
  tick();
}

void WebhookFeed::update(WebhookEndpoint endpoint) { endpoint_ = std::move(endpoint); }

bool WebhookFeed::room() const noexcept {
  return held_.size() < settings_.max_held && held_bytes_ < settings_.max_held_bytes;
}

std::size_t WebhookFeed::max_in_flight() const noexcept {
  return endpoint_.max_in_flight > 0 ? endpoint_.max_in_flight : settings_.max_in_flight;
}

void WebhookFeed::tick() {
  if (paused_) return;
  for (std::size_t i = 0; i < sources_.size(); ++i) read(i);
  send_due();
}

// ---- reading --------------------------------------------------------------

void WebhookFeed::create_group(std::size_t index) {
  Source& s = sources_[index];
  s.busy = true;
  std::weak_ptr<WebhookFeed> weak = weak_from_this();
  // A new group starts at the end ($): an endpoint gets what happens after it
  // was added. One that vanished under a running feed (a Redis restarted
  // without persistence) starts at the new stream's beginning (0), or what
  // was written before this read -- a bridge flushing the replies it held --
  // would never be delivered.
  const char* from = s.group_lost ? "0" : "$";
  bool sent = redis_.run({"XGROUP", "CREATE", s.stream, group_, from, "MKSTREAM"}, [weak, index](const redisReply* r) {
    auto self = weak.lock();
    if (!self) return;
    Source& s = self->sources_[index];
    s.busy = false;
    // BUSYGROUP: another replica (or an earlier run) made it.
    if (r && (r->type != REDIS_REPLY_ERROR || is_error(r, "BUSYGROUP"))) s.group_ready = true;
  });
  if (!sent) s.busy = false;
}

void WebhookFeed::read(std::size_t index) {
  Source& s = sources_[index];
  // A claim that was due goes first: it waits for the read in flight, and
  // under steady traffic reads follow one another without a gap.
  if (s.claim_due && !s.busy && s.group_ready) return claim(index);
  if (s.busy || !redis_.up() || !room()) return;
  if (!s.group_ready) return create_group(index);
  std::size_t step = s.kind == WebhookSource::events ? kEventReadCount : kReadCount;
  std::size_t count = std::min(step, settings_.max_held - held_.size());
  bool history = !s.history_done;
  s.busy = true;
  std::weak_ptr<WebhookFeed> weak = weak_from_this();
  std::string n = std::to_string(count);
  bool sent = redis_.run(
      {"XREADGROUP", "GROUP", group_, settings_.consumer, "COUNT", n, "STREAMS", s.stream,
       history ? std::string_view(s.history_after) : std::string_view(">")},
      [weak, index, history](const redisReply* r) {
        auto self = weak.lock();
        if (!self) return;
        Source& s = self->sources_[index];
        s.busy = false;
        if (is_error(r, "NOGROUP")) {  // the stream or group went (a Redis without persistence restarted)
          s.group_ready = false;
          s.group_lost = true;
          return;
        }
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
          if (history && r && r->type != REDIS_REPLY_ERROR) s.history_done = true;
          return;
        }
        const redisReply* stream = r->element[0];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return;
        const redisReply* entries = stream->element[1];
        if (history && (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)) s.history_done = true;
        self->on_entries(index, entries, history);
        // A full batch: more are waiting, read on at once.
        if (entries->type == REDIS_REPLY_ARRAY && entries->elements > 0) self->read(index);
        self->send_due();
      });
  if (!sent) s.busy = false;
}

void WebhookFeed::on_entries(std::size_t index, const redisReply* entries, bool from_history) {
  if (!entries || entries->type != REDIS_REPLY_ARRAY) return;
  Source& s = sources_[index];
  std::vector<redis::StoredEvent> parsed = redis::parse_entries(entries);
  std::size_t next = 0;
  std::vector<std::string> not_wanted;
  auto now = Clock::now();
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const redisReply* e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) continue;
    std::string id(str(e->element[0]));
    if (from_history) s.history_after = id;
    if (held_.count({index, id})) continue;  // already ours (a claim of what we hold)
    // Entries that are not the layout (a foreign writer's, or deleted ones in
    // a history read) and entries the endpoint does not want are acknowledged.
    const redis::StoredEvent* entry = next < parsed.size() && parsed[next].id == id ? &parsed[next++] : nullptr;
    std::optional<std::string> kind = entry ? webhook_kind(s.kind, *entry) : std::nullopt;
    bool wanted = false;
    if (kind) {
      wanted = s.kind == WebhookSource::replay ? entry->box == endpoint_.name : endpoint_.wants(*kind, entry->box);
    }
    if (!wanted) {
      not_wanted.push_back(std::move(id));
      continue;
    }
    Delivery d{index, id, {}, 0, {}, false, false, {}};
    if (s.kind == WebhookSource::replay) {
      // A replayed delivery carries its original id and body (dead_letters.hpp).
      std::string_view name = entry->name;
      std::size_t space = name.find(' ');
      std::string type(space == std::string_view::npos ? std::string_view("replay") : name.substr(space + 1));
      d.message = WebhookMessage{std::string(name.substr(0, space)), std::move(type), entry->box, entry->payload,
                                 stream_id_ms(id)};
      if (auto original = std::strtoll(entry->received_ms.c_str(), nullptr, 10); original > 0) {
        d.message.written_ms = original;
      }
    } else {
      d.message = webhook_message(s.kind, *entry, std::move(*kind));
    }
    d.due = now;
    held_bytes_ += d.message.body.size();
    held_.emplace(Key{index, std::move(id)}, std::move(d));
  }
  ack(index, not_wanted);
  set_gauges();
}

void WebhookFeed::ack(std::size_t index, const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  std::vector<std::string_view> argv = {"XACK", sources_[index].stream, group_};
  for (const std::string& id : ids) argv.push_back(id);
  redis_.run(argv, {});  // lost with the connection: given again, then acknowledged again
}

// ---- delivering -------------------------------------------------------------

void WebhookFeed::send_due() {
  if (paused_) return;
  auto now = Clock::now();
  for (auto& [key, d] : held_) {
    if (in_flight_ >= max_in_flight()) return;
    if (d.in_flight || d.dead_letter_sent || d.due > now) continue;
    send(key, d);
  }
}

void WebhookFeed::send(const Key& key, Delivery& d) {
  d.in_flight = true;
  ++in_flight_;
  std::int64_t timestamp = now_ms() / 1000;
  http::Request request;
  request.url = endpoint_.url;
  request.timeout = settings_.timeout;
  request.body = d.message.body;
  request.headers = {{"Content-Type", "application/json"},
                     {"webhook-id", d.message.id},
                     {"webhook-timestamp", std::to_string(timestamp)},
                     {"webhook-signature", webhook_signature(endpoint_.secret, d.message.id, timestamp, d.message.body)}};
  std::weak_ptr<WebhookFeed> weak = weak_from_this();
  client_.post(std::move(request), [weak, key](http::Response response) {
    if (auto self = weak.lock()) self->answered(key, std::move(response));
  });
}

void WebhookFeed::answered(const Key& key, http::Response response) {
  --in_flight_;
  auto it = held_.find(key);
  if (it == held_.end()) return;
  Delivery& d = it->second;
  d.in_flight = false;
  if (response.status >= 200 && response.status < 300) {
    delivered_.inc();
    ack(key.first, {key.second});
    forget(key);
    return send_due();
  }
  failed_.inc();
  ++d.attempts;
  d.last_error = response.status ? "HTTP " + std::to_string(response.status) : response.error;
  auto delay = retry_delay(d.attempts, settings_.retry_initial);
  std::int64_t age = now_ms() - d.message.written_ms;
  if (age + delay.count() > settings_.retry_for.count()) return dead_letter(key, d);
  d.due = Clock::now() + delay;
  log::Fields fields{{"endpoint", endpoint_.name}, {"webhook_id", d.message.id}};
  log::get("webhooks")->info("{} {}: attempt {} failed ({}); again in {} ms", endpoint_.name, d.message.id,
                             d.attempts, d.last_error.substr(0, 200), delay.count());
  send_due();
}

void WebhookFeed::dead_letter(const Key& key, Delivery& d) {
  d.dead_letter_sent = true;
  std::string maxlen = std::to_string(settings_.dead_maxlen);
  std::string attempts = std::to_string(d.attempts);
  std::string written = std::to_string(d.message.written_ms);
  std::string dead_at = std::to_string(now_ms());
  std::weak_ptr<WebhookFeed> weak = weak_from_this();
  bool sent = redis_.run(
      {"XADD", topics_.webhook_dead_stream(), "MAXLEN", "~", maxlen, "*", "endpoint", endpoint_.name, "webhook_id",
       d.message.id, "type", d.message.kind, "box", d.message.box, "body", d.message.body, "error", d.last_error,
       "attempts", attempts, "written_ms", written, "dead_ms", dead_at},
      [weak, key](const redisReply* r) {
        auto self = weak.lock();
        if (!self) return;
        auto it = self->held_.find(key);
        if (it == self->held_.end()) return;
        if (!r || r->type == REDIS_REPLY_ERROR) {
          it->second.dead_letter_sent = false;
          it->second.due = Clock::now() + kDeadLetterRetry;
          return;
        }
        self->dead_lettered_.inc();
        log::Fields fields{{"endpoint", self->endpoint_.name}, {"webhook_id", it->second.message.id}};
        log::get("webhooks")->warn("{} {}: dead-lettered after {} attempts ({})", self->endpoint_.name,
                                   it->second.message.id, it->second.attempts, it->second.last_error.substr(0, 200));
        self->ack(key.first, {key.second});
        self->forget(key);
      });
  if (!sent) {
    d.dead_letter_sent = false;
    d.due = Clock::now() + kDeadLetterRetry;
  }
}

void WebhookFeed::forget(const Key& key) {
  auto it = held_.find(key);
  if (it == held_.end()) return;
  held_bytes_ -= it->second.message.body.size();
  held_.erase(it);
  set_gauges();
}

// ---- leases -------------------------------------------------------------------

void WebhookFeed::maintain() {
  if (paused_) return;
  std::int64_t oldest = 0;
  std::int64_t now = now_ms();
  for (const auto& [key, d] : held_) {
    if (oldest == 0 || d.message.written_ms < oldest) oldest = d.message.written_ms;
  }
  lag_gauge_.set(oldest ? (now - oldest) / 1000 : 0);
  auto t = Clock::now();
  if (t < next_keep_alive_) return;
  next_keep_alive_ = t + settings_.lease / 3;
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    keep_alive(i);
    sources_[i].claim_due = true;
    claim(i);
  }
}

void WebhookFeed::keep_alive(std::size_t index) {
  // XCLAIM to ourselves with JUSTID resets the idle time without counting a
  // delivery: what we hold (also while it waits for a retry) is never taken
  // over while this replica lives.
  std::vector<std::string> ids;
  for (const auto& [key, d] : held_) {
    if (key.first == index) ids.push_back(key.second);
  }
  for (std::size_t from = 0; from < ids.size(); from += kIdsPerClaim) {
    std::vector<std::string_view> argv = {"XCLAIM", sources_[index].stream, group_, settings_.consumer, "0"};
    for (std::size_t i = from; i < std::min(ids.size(), from + kIdsPerClaim); ++i) argv.push_back(ids[i]);
    argv.push_back("JUSTID");
    redis_.run(argv, {});
  }
}

void WebhookFeed::claim(std::size_t index) {
  Source& s = sources_[index];
  if (s.busy || !s.group_ready || !redis_.up()) return;
  s.claim_due = false;
  if (!room()) return;
  s.busy = true;
  std::string idle = std::to_string(settings_.lease.count());
  std::size_t step = s.kind == WebhookSource::events ? kEventReadCount : kReadCount;
  std::string count = std::to_string(std::min(step, settings_.max_held - held_.size()));
  std::weak_ptr<WebhookFeed> weak = weak_from_this();
  bool sent = redis_.run(
      {"XAUTOCLAIM", s.stream, group_, settings_.consumer, idle, s.claim_cursor, "COUNT", count},
      [weak, index](const redisReply* r) {
        auto self = weak.lock();
        if (!self) return;
        Source& s = self->sources_[index];
        s.busy = false;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
        s.claim_cursor = std::string(str(r->element[0]));
        if (s.claim_cursor.empty()) s.claim_cursor = "0-0";
        std::size_t before = self->held_.size();
        self->on_entries(index, r->element[1], false);
        self->claimed_.inc(self->held_.size() - before);
        // Redis 7: the ids of pending entries trimmed from the stream meanwhile.
        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY) self->lost_.inc(r->element[2]->elements);
        self->send_due();
      });
  if (!sent) s.busy = false;
}

void WebhookFeed::set_gauges() { held_gauge_.set(static_cast<std::int64_t>(held_.size())); }

}  // namespace boxgate::gateway
