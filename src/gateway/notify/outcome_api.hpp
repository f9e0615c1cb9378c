#pragma once
// OutcomeApi: the commands' outcomes, live over HTTP (docs/events.md,
// "Outcomes"; docs/contract.md):
//   GET /v1/commands   with Accept: text/event-stream, an SSE stream of the
//                      outcome stream {prefix}/commands (?box=<pattern>&after=,
//                      Last-Event-ID resumes): one event per state change,
//                      `event:` the state, `data:` its JSON payload.
// Framing, resume, heartbeat, slow-reader cut-off, box pattern and token
// scope are those of GET /v1/events: both are served by the streams room
// (streams/sse_request.hpp), and its streams count in the same max_streams
// and token share. The catch-up reads the outcome stream itself (there is
// no per-box outcome stream), at the bounded scan rate of sse_streams.hpp.
// The route table (routes.cpp) hands requests here once it checked the
// method: stream() checks the token itself, as its scope filters what is
// shown. Loop thread only.

#include "api/auth.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/topics.hpp"
#include "streams/sse_streams.hpp"
#include "streams/stream_tail.hpp"

namespace boxgate::gateway {

class OutcomeApi {
 public:
  // `tail` reads Topics::outcome_stream(); `streams` are the gateway's SSE
  // streams (one pool with the event streams).
  OutcomeApi(const Topics& topics, StreamTail& tail, SseStreams& streams, Authorizer& auth);

  void stream(http::Exchange ex);

 private:
  const Topics& topics_;
  StreamTail& tail_;
  SseStreams& streams_;
  Authorizer& auth_;
};

}  // namespace boxgate::gateway
