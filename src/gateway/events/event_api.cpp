#include "events/event_api.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "api/errors.hpp"
#include "api/query.hpp"
#include "boxgate/logging.hpp"
#include "streams/sse_request.hpp"
#include "streams/stream_pages.hpp"

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
};

bool valid_limit(std::string_view value) { return parse_decimal(value, 4, 1, EventApi::kMaxHistory).has_value(); }

constexpr QueryParamSpec kLimit{"limit", Error::invalid_limit, "limit must be one integer from 1 to 1000.",
                                valid_limit};

// The parameters this endpoint takes (`takes`), read into `q`; false once answered.
bool parse_event_query(http::Exchange& ex, std::initializer_list<QueryParamSpec> takes, EventQuery& q,
                       const std::string* rid, const std::string* bid) {
  std::optional<Query> query = read_query(ex, takes, rid, bid);
  if (!query) return false;
  if (auto after = query->get("after")) q.after = std::string(*after);
  if (auto limit = query->get("limit")) {
    q.limit = static_cast<std::size_t>(*parse_decimal(*limit, 4, 1, EventApi::kMaxHistory));
  }
  return true;
}

// One JSON history page, read in XRANGEs sized to the byte budget
// (streams/stream_pages.hpp) until it holds `limit` events, the next event would take
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
        next_page_count(max_bytes_ - body_.size(), largest_, std::min(limit_ - count_, SseStreams::kPageEntries));
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

EventApi::EventApi(const Topics& topics, redis::Commands& redis, StreamTail& tail, SseStreams& streams,
                   Authorizer& auth, std::size_t page_max_bytes)
    : topics_(topics), redis_(redis), tail_(tail), streams_(streams), auth_(auth), page_max_bytes_(page_max_bytes) {}

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
    if (!parse_event_query(ex, {kAfterParam}, q, &rid, &bid) || !resume_point(ex, q.after, &rid, &bid)) return;
    StreamFilter filter;
    if (!streams_.admit(ex, caller.token.get(), filter, &rid, &bid)) return;
    ex.set_header("X-Request-Id", rid);
    filter.box = bid;
    return streams_.open(std::move(ex), tail_, std::move(filter), topics_.box_events_stream(box), std::move(q.after),
                         StreamKind::box);
  }
  if (!parse_event_query(ex, {kAfterParam, kLimit}, q, &rid, &bid)) return;
  auto read = std::make_shared<HistoryRead>(std::move(ex), redis_, topics_.box_events_stream(box), rid, bid,
                                            std::move(q.after), q.limit.value_or(kDefaultHistory), page_max_bytes_);
  read->next();
}

void EventApi::fleet(http::Exchange ex) {
  // An exact box's catch-up reads that box's own stream: the same ids, only its events.
  serve_pattern_stream(std::move(ex), auth_, streams_,
                       {tail_, topics_.fleet_events_stream(),
                        [this](const BoxId& box) { return topics_.box_events_stream(box); }, "/v1/events",
                        StreamKind::fleet});
}

}  // namespace boxgate::gateway
