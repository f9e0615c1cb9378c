#pragma once
// What every SSE route asks of its request (docs/contract.md): the Accept
// header, the resume point (Last-Event-ID, else ?after=), and -- for the
// routes that show the boxes of a pattern, GET /v1/events and
// GET /v1/commands -- the whole request: token, ?box=, ?after=, then the
// stream from SseStreams. Loop thread only (pure where it says so).

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/auth.hpp"
#include "api/query.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/ids.hpp"
#include "streams/sse_streams.hpp"
#include "streams/stream_tail.hpp"

namespace boxgate::gateway {

// True when an Accept header value asks for text/event-stream. Pure.
bool wants_event_stream(const char* accept);

// A stream id to resume after: in range, and not the last id there can be
// (nothing follows it; Redis refuses it as an exclusive start). Pure.
bool resumable(std::string_view value);

inline constexpr QueryParamSpec kAfterParam{
    "after", Error::invalid_after, "after must be one stream id (<ms>-<seq>, decimal, each part below 2^64).",
    resumable};
inline constexpr QueryParamSpec kBoxParam{"box", Error::invalid_box_pattern};

// Last-Event-ID (an EventSource reconnecting), when sent, into `after`: it
// wins over ?after=. False once answered 400 invalid_after.
bool resume_point(http::Exchange& ex, std::optional<std::string>& after, const std::string* request_id,
                  const std::string* box_id);

// A route that streams the entries of boxes matching ?box=<pattern> (default
// *) within the caller's token scope, with no box in its path.
struct PatternStream {
  StreamTail& tail;
  std::string history_key;  // the tail's stream: what the catch-up reads
  // A stream with the same ids holding only one box's entries, read instead
  // when the pattern names that box exactly (none: always history_key).
  std::function<std::string(const BoxId& box)> box_history;
  const char* path;  // named in the 406 answer
  StreamKind kind;
};

// Serves one request of such a route: 401 without a valid token (when the
// API has tokens), 400 for a bad query, box pattern or Last-Event-ID, 406
// without Accept: text/event-stream, 429 too_many_streams or
// token_streams_full; else the stream. Boxes outside the token's scope are
// not shown (no 403); a pattern outside it reads no history.
void serve_pattern_stream(http::Exchange ex, Authorizer& auth, SseStreams& streams, const PatternStream& route);

}  // namespace boxgate::gateway
