#pragma once
// EventApi: the read side of the device data plane (docs/contract.md,
// docs/events.md):
//   GET /v1/devices/{boxId}/state    the latest state (404 no_state)
//   GET /v1/devices/{boxId}/events   JSON history (?after=&limit=), or with
//                                    Accept: text/event-stream an SSE stream
//                                    (Last-Event-ID or ?after= resumes)
//   GET /v1/events                   SSE stream of the fleet (?box=<pattern>&after=)
// The route table (routes.cpp) hands the first two here once it checked the
// method, the request id, the box and the caller's token for it; /v1/events
// only once it checked the method: fleet() checks the token itself, as its
// scope filters the events shown. Loop thread only.

#include <string>
#include <string_view>

#include "api/auth.hpp"
#include "api/caller.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "streams/sse_streams.hpp"
#include "streams/stream_tail.hpp"

namespace boxgate::gateway {

class EventApi {
 public:
  static constexpr std::size_t kMaxHistory = 1000;
  static constexpr std::size_t kDefaultHistory = 100;

  // `page_max_bytes` (events_page_max_bytes): a JSON history page ends early,
  // with next_after, once its body reaches this.
  // `tail` reads the fleet event stream; `streams` are the gateway's SSE
  // streams (one pool for every SSE route).
  EventApi(const Topics& topics, redis::Commands& redis, StreamTail& tail, SseStreams& streams, Authorizer& auth,
           std::size_t page_max_bytes);

  void get_state(http::Exchange ex, const Caller& caller);
  void get_events(http::Exchange ex, const Caller& caller);
  void fleet(http::Exchange ex);

 private:
  const Topics& topics_;
  redis::Commands& redis_;
  StreamTail& tail_;
  SseStreams& streams_;
  Authorizer& auth_;
  std::size_t page_max_bytes_;
};

}  // namespace boxgate::gateway
