#include "events/event_api.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "api/errors.hpp"
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

// Strict, as everywhere in the API: unknown or repeated parameters are 400.
// `allowed`: the names this endpoint takes.
bool parse_query(http::Exchange& ex, std::initializer_list<std::string_view> allowed, EventQuery& q,
                 const std::string* rid, const std::string* bid) {
  for (const http::QueryParam& p : http::split_query(ex.raw_query())) {
    if (std::find(allowed.begin(), allowed.end(), p.name) == allowed.end()) {
      reply_error(ex, 400, "invalid_query", "Unknown query parameter '" + quoted_name(p.name) + "'.", rid, bid);
      return false;
    }
    if (p.name == "after") {
      if (q.after || !redis::is_stream_id(p.value)) {
        reply_error(ex, 400, "invalid_after", "after must be one stream id (<ms>-<seq>, decimal).", rid, bid);
        return false;
      }
      q.after = std::string(p.value);
    } else if (p.name == "limit") {
      std::size_t n = 0;
      bool ok = !q.limit && !p.value.empty() && p.value.size() <= 4 &&
                std::all_of(p.value.begin(), p.value.end(), [](char c) { return c >= '0' && c <= '9'; });
      for (char c : p.value) n = n * 10 + static_cast<std::size_t>(c - '0');
      if (!ok || n < 1 || n > EventApi::kMaxHistory) {
        reply_error(ex, 400, "invalid_limit", "limit must be one integer from 1 to 1000.", rid, bid);
        return false;
      }
      q.limit = n;
    } else if (p.name == "box") {
      if (q.box) {
        reply_error(ex, 400, "invalid_box_pattern", "box is given more than once.", rid, bid);
        return false;
      }
      q.box = http::percent_decode(p.value);
    }
  }
  return true;
}

// Last-Event-ID (an EventSource reconnecting) wins over ?after=.
bool resume_point(http::Exchange& ex, EventQuery& q, const std::string* rid, const std::string* bid) {
  const char* last = ex.header("Last-Event-ID");
  if (!last) return true;
  if (!redis::is_stream_id(last)) {
    reply_error(ex, 400, "invalid_after", "Last-Event-ID must be a stream id (<ms>-<seq>, decimal).", rid, bid);
    return false;
  }
  q.after = std::string(last);
  return true;
}

}  // namespace

bool wants_event_stream(const char* accept) {
  if (!accept) return false;
  std::string lower(accept);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("text/event-stream") != std::string::npos;
}

EventApi::EventApi(http::Server& server, const Topics& topics, redis::Commands& redis, EventStreams& streams,
                   Authorizer& auth)
    : topics_(topics), redis_(redis), streams_(streams), auth_(auth) {
  server.route("/v1/events", [this](http::Exchange ex) { fleet(std::move(ex)); });
}

void EventApi::get_state(http::Exchange ex, const BoxId& box, const std::string& rid) {
  const std::string& bid = box.str();
  if (!http::split_query(ex.raw_query()).empty()) {
    return reply_error(ex, 400, "invalid_query", "This endpoint takes no query parameters.", &rid, &bid);
  }
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  bool sent = redis_.get(topics_.state_key(box), [shared, rid, bid](bool ok, std::optional<std::string> value) {
    http::Exchange& exchange = *shared;
    if (!exchange.open()) return;
    if (!ok) return reply_error(exchange, 503, "redis_unavailable", "Redis is unavailable; retry later.", &rid, &bid);
    if (!value) {
      return reply_error(exchange, 404, "no_state", "This box has not reported a state (or it expired).", &rid, &bid);
    }
    exchange.set_header("X-Request-Id", rid);
    exchange.reply(200, std::move(*value));
  });
  if (!sent) reply_error(*shared, 503, "redis_unavailable", "Redis is unavailable; retry later.", &rid, &bid);
}

void EventApi::get_events(http::Exchange ex, const BoxId& box, const std::string& rid) {
  const std::string& bid = box.str();
  bool stream = wants_event_stream(ex.header("Accept"));
  EventQuery q;
  if (stream) {
    if (!parse_query(ex, {"after"}, q, &rid, &bid) || !resume_point(ex, q, &rid, &bid)) return;
    if (streams_.full()) {
      streams_.refused();
      return reply_error(ex, 429, "too_many_streams", "This gateway has too many event streams open.", &rid, &bid);
    }
    ex.set_header("X-Request-Id", rid);
    StreamFilter filter;
    filter.box = bid;
    return streams_.open(std::move(ex), std::move(filter), topics_.box_events_stream(box), std::move(q.after), "box");
  }
  if (!parse_query(ex, {"after", "limit"}, q, &rid, &bid)) return;
  std::size_t limit = q.limit.value_or(kDefaultHistory);
  std::string start = redis::range_start_after(q.after);
  std::string count = std::to_string(limit);
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  bool sent = redis_.run({"XRANGE", topics_.box_events_stream(box), start, "+", "COUNT", count},
                         [shared, rid, bid, limit](const redisReply* reply) {
                           http::Exchange& exchange = *shared;
                           if (!exchange.open()) return;
                           if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                             return reply_error(exchange, 503, "redis_unavailable",
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
  if (!sent) reply_error(*shared, 503, "redis_unavailable", "Redis is unavailable; retry later.", &rid, &bid);
}

void EventApi::fleet(http::Exchange ex) {
  if (!ex.is_get()) {
    ex.set_header("Allow", "GET");
    return ex.reply(405, R"({"error":"method_not_allowed","message":"use GET"})");
  }
  Decision access = auth_.authenticate(ex.header("Authorization"));
  if (access.verdict != Verdict::allowed) {
    return reply_unauthorized(ex, access.verdict == Verdict::missing_token, nullptr, nullptr);
  }
  EventQuery q;
  if (!parse_query(ex, {"box", "after"}, q, nullptr, nullptr) || !resume_point(ex, q, nullptr, nullptr)) return;
  std::optional<Scope> pattern = Scope::parse(q.box.value_or("*"));
  if (!pattern) {
    return reply_error(ex, 400, "invalid_box_pattern",
                       "box must be a box id, a prefix pattern such as box-* or *.", nullptr, nullptr);
  }
  if (!wants_event_stream(ex.header("Accept"))) {
    return reply_error(ex, 406, "not_acceptable", "/v1/events is a stream: send Accept: text/event-stream.", nullptr,
                       nullptr);
  }
  if (streams_.full()) {
    streams_.refused();
    return reply_error(ex, 429, "too_many_streams", "This gateway has too many event streams open.", nullptr, nullptr);
  }
  StreamFilter filter;
  filter.pattern = std::move(pattern);
  filter.token = access.token;
  streams_.open(std::move(ex), std::move(filter), topics_.fleet_events_stream(), std::move(q.after), "fleet");
}

}  // namespace boxgate::gateway
