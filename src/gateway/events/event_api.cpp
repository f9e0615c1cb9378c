#include "events/event_api.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "api/errors.hpp"
#include "api/query.hpp"
#include "boxgate/logging.hpp"

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

bool valid_after(std::string_view value) { return redis::is_stream_id(value); }
bool valid_limit(std::string_view value) { return parse_decimal(value, 4, 1, EventApi::kMaxHistory).has_value(); }

constexpr QueryParamSpec kAfter{"after", Error::invalid_after, "after must be one stream id (<ms>-<seq>, decimal).",
                                valid_after};
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
  if (!redis::is_stream_id(last)) {
    reply_error(ex, Error::invalid_after, "Last-Event-ID must be a stream id (<ms>-<seq>, decimal).", rid, bid);
    return false;
  }
  q.after = std::string(last);
  return true;
}

// The caller's token's share of streams into `filter.slot` (nothing to take
// when the API is open); false once answered 429 token_streams_full.
bool take_stream_slot(http::Exchange& ex, const ApiToken* token, StreamFilter& filter, const std::string* rid,
                      const std::string* bid) {
  if (!token) return true;
  std::optional<TokenSlot> slot = token->take_stream();
  if (!slot) {
    reply_error(ex, Error::token_streams_full, "This token has as many event streams open as it may.", rid, bid);
    return false;
  }
  filter.slot = std::move(*slot);
  return true;
}

}  // namespace

bool wants_event_stream(const char* accept) {
  if (!accept) return false;
  std::string lower(accept);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("text/event-stream") != std::string::npos;
}

EventApi::EventApi(const Topics& topics, redis::Commands& redis, EventStreams& streams, Authorizer& auth)
    : topics_(topics), redis_(redis), streams_(streams), auth_(auth) {}

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
    StreamFilter filter;
    if (!take_stream_slot(ex, caller.token.get(), filter, &rid, &bid)) return;
    ex.set_header("X-Request-Id", rid);
    filter.box = bid;
    return streams_.open(std::move(ex), std::move(filter), topics_.box_events_stream(box), std::move(q.after), "box");
  }
  if (!parse_event_query(ex, {kAfter, kLimit}, q, &rid, &bid)) return;
  std::size_t limit = q.limit.value_or(kDefaultHistory);
  std::string start = redis::range_start_after(q.after);
  std::string count = std::to_string(limit);
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  bool sent = redis_.run({"XRANGE", topics_.box_events_stream(box), start, "+", "COUNT", count},
                         [shared, rid, bid, limit](const redisReply* reply) {
                           http::Exchange& exchange = *shared;
                           if (!exchange.open()) return;
                           if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                             return reply_error(exchange, Error::redis_unavailable,
                                                "Redis is unavailable; retry later.", &rid, &bid);
                           }
                           std::vector<redis::StoredEvent> events = redis::parse_entries(reply);
                           std::string body = R"({"box_id":)" + json_string(bid) + R"(,"events":[)";
                           for (std::size_t i = 0; i < events.size(); ++i) {
                             if (i) body += ',';
                             append_event_json(body, events[i]);
                           }
                           body += ']';
                           // A full page: there may be more after its last id.
                           if (reply->elements >= limit && !events.empty()) {
                             body += R"(,"next_after":)" + json_string(events.back().id);
                           }
                           body += '}';
                           exchange.set_header("X-Request-Id", rid);
                           exchange.reply(200, std::move(body));
                         });
  if (!sent) reply_error(*shared, Error::redis_unavailable, "Redis is unavailable; retry later.", &rid, &bid);
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
  StreamFilter filter;
  if (!take_stream_slot(ex, access.token.get(), filter, nullptr, nullptr)) return;
  filter.pattern = std::move(pattern);
  filter.token = std::move(access.token);
  streams_.open(std::move(ex), std::move(filter), topics_.fleet_events_stream(), std::move(q.after), "fleet");
}

}  // namespace boxgate::gateway
