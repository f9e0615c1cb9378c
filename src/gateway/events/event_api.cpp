#include "events/event_api.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "api/errors.hpp"
#include "api/query.hpp"
#include "boxgate/logging.hpp"
#include "events/event_pages.hpp"

namespace boxgate::gateway {

namespace {

std::string json_string(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One event of the JSON history: the payload verbatim when it is JSON
// (validated without recursion), else as a string in "payload_text".
void append_event_json(std::string& out, const redis::StoredEvent& e) {
  out += R"({"id":)";
  out += json_string(e.id);
  out += R"(,"name":)";
  out += json_string(e.name);
  bool numeric = !e.received_ms.empty() && e.received_ms.size() <= 18 &&
                 std::all_of(e.received_ms.begin(), e.received_ms.end(), [](char c) { return c >= '0' && c <= '9'; });
  out += R"(,"received_ms":)";
  out += numeric ? e.received_ms : "null";
  if (json::scan(e.payload).ok()) {
    out += R"(,"payload":)";
    out += e.payload;
  } else {
    out += R"(,"payload_text":)";
    out += json_string(e.payload);
  }
  out += '}';
}

struct EventQuery {
  std::optional<std::string> after;
  std::optional<std::size_t> limit;
  std::optional<std::string> box;
};

// A stream id to resume after: in range, and not the last id there can be
// (nothing follows it; Redis refuses it as an exclusive start).
bool resumable(std::string_view value) { return redis::is_stream_id(value) && !redis::is_last_stream_id(value); }
bool valid_limit(std::string_view value) { return parse_decimal(value, 4, 1, EventApi::kMaxHistory).has_value(); }

constexpr QueryParamSpec kAfter{"after", Error::invalid_after,
                                "after must be one stream id (<ms>-<seq>, decimal, each part below 2^64).", resumable};
constexpr QueryParamSpec kLimit{"limit", Error::invalid_limit, "limit must be one integer from 1 to 1000.",
                                valid_limit};
constexpr QueryParamSpec kBox{"box", Error::invalid_box_pattern};

// The parameters this endpoint takes (`takes`), read into `q`; false once answered.
bool parse_event_query(http::Exchange& ex, std::initializer_list<QueryParamSpec> takes, EventQuery& q,
                       const std::string* rid, const std::string* bid) {
  std::optional<Query> query = read_query(ex, takes, rid, bid);
  if (!query) return false;
  if (auto after = query->get("after")) q.after = std::string(*after);
  if (auto limit = query->get("limit")) {
    q.limit = static_cast<std::size_t>(*parse_decimal(*limit, 4, 1, EventApi::kMaxHistory));
  }
  if (auto box = query->get("box")) q.box = http::percent_decode(*box);
  return true;
}

// Last-Event-ID (an EventSource reconnecting) wins over ?after=.
bool resume_point(http::Exchange& ex, EventQuery& q, const std::string* rid, const std::string* bid) {
  const char* last = ex.header("Last-Event-ID");
  if (!last) return true;
  if (!resumable(last)) {
    reply_error(ex, Error::invalid_after,
                "Last-Event-ID must be a stream id (<ms>-<seq>, decimal, each part below 2^64).", rid, bid);
    return false;
  }
  q.after = std::string(last);
  return true;
}

// One JSON history page, read in XRANGEs sized to the byte budget
// (event_pages.hpp) until it holds `limit` events, the next event would take
// its body over `max_bytes` (it then ends early, with next_after; a first
// event larger than that comes alone), or the stream ends.
// Owned by the pending Redis callback; loop thread only.
class HistoryRead : public std::enable_shared_from_this<HistoryRead> {
 public:
  HistoryRead(http::Exchange ex, redis::Commands& redis, std::string key, std::string rid, std::string bid,
              std::optional<std::string> after, std::size_t limit, std::size_t max_bytes)
      : exchange_(std::move(ex)),
        redis_(redis),
        key_(std::move(key)),
        rid_(std::move(rid)),
        bid_(std::move(bid)),
        after_(std::move(after)),
        limit_(limit),
        max_bytes_(max_bytes),
        body_(R"({"box_id":)" + json_string(bid_) + R"(,"events":[)") {}

  void next() {
    std::size_t want =
        next_page_count(max_bytes_ - body_.size(), largest_, std::min(limit_ - count_, EventStreams::kPageEntries));
    bool sent = redis_.run({"XRANGE", key_, redis::range_start_after(after_), "+", "COUNT", std::to_string(want)},
                           [self = shared_from_this(), want](const redisReply* reply) { self->on_page(reply, want); });
    if (!sent) unavailable();
  }

 private:
  void on_page(const redisReply* reply, std::size_t asked) {
    if (!exchange_.open()) return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return unavailable();
    for (const redis::StoredEvent& event : redis::parse_entries(reply)) {
      largest_ = std::max(largest_, entry_bytes(event));
      std::size_t before = body_.size();
      if (count_) body_ += ',';
      append_event_json(body_, event);
      // Over the cap: the page ends before this event (unless it is the first).
      if (count_ && body_.size() > max_bytes_) {
        body_.resize(before);
        return finish(true);
      }
      after_ = event.id;
      // Full: there may be more after its last id.
      if (++count_ == limit_) return finish(true);
    }
    if (reply->elements < asked) return finish(false);  // the end of the stream
    if (body_.size() >= max_bytes_) return finish(true);  // one event as large as the cap
    if (auto last = redis::last_entry_id(reply)) after_ = std::move(last);  // past entries not shown
    next();
  }

  void finish(bool more) {
    body_ += ']';
    if (more) body_ += R"(,"next_after":)" + json_string(*after_);
    body_ += '}';
    exchange_.set_header("X-Request-Id", rid_);
    exchange_.reply(200, std::move(body_));
  }

  void unavailable() {
    if (!exchange_.open()) return;
    reply_error(exchange_, Error::redis_unavailable, "Redis is unavailable; retry later.", &rid_, &bid_);
  }

  http::Exchange exchange_;
  redis::Commands& redis_;
  std::string key_;
  std::string rid_;
  std::string bid_;
  std::optional<std::string> after_;  // the last entry read
  std::size_t limit_;
  std::size_t max_bytes_;
  std::string body_;
  std::size_t count_ = 0;    // events in the body
  std::size_t largest_ = 0;  // the largest entry_bytes() read
};

}  // namespace

bool wants_event_stream(const char* accept) {
  if (!accept) return false;
  std::string lower(accept);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("text/event-stream") != std::string::npos;
}

EventApi::EventApi(const Topics& topics, redis::Commands& redis, EventStreams& streams, Authorizer& auth,
                   std::size_t page_max_bytes)
    : topics_(topics), redis_(redis), streams_(streams), auth_(auth), page_max_bytes_(page_max_bytes) {}

void EventApi::get_state(http::Exchange ex, const Caller& caller) {
  const BoxId& box = caller.box;
  const std::string& rid = caller.id.str();
  const std::string& bid = box.str();
  if (!read_query(ex, {}, &rid, &bid)) return;
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  bool sent = redis_.get(topics_.state_key(box), [shared, rid, bid](bool ok, std::optional<std::string> value) {
    http::Exchange& exchange = *shared;
    if (!exchange.open()) return;
    if (!ok) return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; retry later.", &rid, &bid);
    if (!value) {
      return reply_error(exchange, Error::no_state, "This box has not reported a state (or it expired).", &rid, &bid);
    }
    exchange.set_header("X-Request-Id", rid);
    exchange.reply(200, std::move(*value));
  });
  if (!sent) reply_error(*shared, Error::redis_unavailable, "Redis is unavailable; retry later.", &rid, &bid);
}

void EventApi::get_events(http::Exchange ex, const Caller& caller) {
  const BoxId& box = caller.box;
  const std::string& rid = caller.id.str();
  const std::string& bid = box.str();
  bool stream = wants_event_stream(ex.header("Accept"));
  EventQuery q;
  if (stream) {
    if (!parse_event_query(ex, {kAfter}, q, &rid, &bid) || !resume_point(ex, q, &rid, &bid)) return;
    if (streams_.full()) {
      streams_.refused();
      return reply_error(ex, Error::too_many_streams, "This gateway has too many event streams open.", &rid, &bid);
    }
    ex.set_header("X-Request-Id", rid);
    StreamFilter filter;
    filter.box = bid;
    return streams_.open(std::move(ex), std::move(filter), topics_.box_events_stream(box), std::move(q.after), "box");
  }
  if (!parse_event_query(ex, {kAfter, kLimit}, q, &rid, &bid)) return;
  auto read = std::make_shared<HistoryRead>(std::move(ex), redis_, topics_.box_events_stream(box), rid, bid,
                                            std::move(q.after), q.limit.value_or(kDefaultHistory), page_max_bytes_);
  read->next();
}

void EventApi::fleet(http::Exchange ex) {
  Decision access = auth_.authenticate(ex.header("Authorization"));
  if (access.verdict != Verdict::allowed) {
    return reply_unauthorized(ex, access.verdict == Verdict::missing_token, nullptr, nullptr);
  }
  EventQuery q;
  if (!parse_event_query(ex, {kBox, kAfter}, q, nullptr, nullptr) || !resume_point(ex, q, nullptr, nullptr)) return;
  std::optional<Scope> pattern = Scope::parse(q.box.value_or("*"));
  if (!pattern) {
    return reply_error(ex, Error::invalid_box_pattern,
                       "box must be a box id, a prefix pattern such as box-* or *.", nullptr, nullptr);
  }
  if (!wants_event_stream(ex.header("Accept"))) {
    return reply_error(ex, Error::not_acceptable, "/v1/events is a stream: send Accept: text/event-stream.", nullptr,
                       nullptr);
  }
  if (streams_.full()) {
    streams_.refused();
    return reply_error(ex, Error::too_many_streams, "This gateway has too many event streams open.", nullptr, nullptr);
  }
  // The catch-up reads as little as it can: a box's own stream when the
  // pattern names one box (the same ids, only its events), nothing when no
  // box of the pattern is in the token's scope; else the fleet stream, at a
  // bounded scan rate (event_stream.hpp).
  std::string history = topics_.fleet_events_stream();
  if (access.token && !access.token->may_allow(*pattern)) {
    q.after.reset();
  } else if (std::optional<BoxId> box = pattern->exact() ? BoxId::parse(*pattern->exact()) : std::nullopt) {
    history = topics_.box_events_stream(*box);
  }
  StreamFilter filter;
  filter.pattern = std::move(pattern);
  filter.token = access.token;
  streams_.open(std::move(ex), std::move(filter), std::move(history), std::move(q.after), "fleet");
}

}  // namespace boxgate::gateway
