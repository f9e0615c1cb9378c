#include "streams/sse_request.hpp"

#include <algorithm>
#include <cctype>

#include "api/errors.hpp"
#include "boxgate/redis/stream_entries.hpp"

namespace boxgate::gateway {

bool wants_event_stream(const char* accept) {
  if (!accept) return false;
  std::string lower(accept);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("text/event-stream") != std::string::npos;
}

bool resumable(std::string_view value) { return redis::is_stream_id(value) && !redis::is_last_stream_id(value); }

bool resume_point(http::Exchange& ex, std::optional<std::string>& after, const std::string* rid,
                  const std::string* bid) {
  const char* last = ex.header("Last-Event-ID");
  if (!last) return true;
  if (!resumable(last)) {
    reply_error(ex, Error::invalid_after,
                "Last-Event-ID must be a stream id (<ms>-<seq>, decimal, each part below 2^64).", rid, bid);
    return false;
  }
  after = std::string(last);
  return true;
}

void serve_pattern_stream(http::Exchange ex, Authorizer& auth, SseStreams& streams, const PatternStream& route) {
  Decision access = auth.authenticate(ex.header("Authorization"));
  if (access.verdict != Verdict::allowed) {
    return reply_unauthorized(ex, access.verdict == Verdict::missing_token, nullptr, nullptr);
  }
  std::optional<Query> query = read_query(ex, {kBoxParam, kAfterParam}, nullptr, nullptr);
  if (!query) return;
  std::optional<std::string> after;
  if (auto given = query->get("after")) after = std::string(*given);
  if (!resume_point(ex, after, nullptr, nullptr)) return;
  std::optional<std::string_view> box = query->get("box");
  std::optional<Scope> pattern = Scope::parse(box ? http::percent_decode(*box) : std::string("*"));
  if (!pattern) {
    return reply_error(ex, Error::invalid_box_pattern,
                       "box must be a box id, a prefix pattern such as box-* or *.", nullptr, nullptr);
  }
  if (!wants_event_stream(ex.header("Accept"))) {
    return reply_error(ex, Error::not_acceptable,
                       std::string(route.path) + " is a stream: send Accept: text/event-stream.", nullptr, nullptr);
  }
  // The catch-up reads as little as it can: nothing when no box of the
  // pattern is in the token's scope; a box's own stream (the same ids, only
  // its entries) when the pattern names one box and the route has one; else
  // the route's stream, at a bounded scan rate (sse_streams.hpp).
  std::string history = route.history_key;
  if (access.token && !access.token->may_allow(*pattern)) {
    after.reset();
  } else if (std::optional<BoxId> one = pattern->exact() ? BoxId::parse(*pattern->exact()) : std::nullopt;
             one && route.box_history) {
    history = route.box_history(*one);
  }
  StreamFilter filter;
  if (!streams.admit(ex, access.token.get(), filter, nullptr, nullptr)) return;
  filter.pattern = std::move(pattern);
  filter.token = std::move(access.token);
  streams.open(std::move(ex), route.tail, std::move(filter), std::move(history), std::move(after), route.kind);
}

}  // namespace boxgate::gateway
