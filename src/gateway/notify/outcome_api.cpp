#include "notify/outcome_api.hpp"

#include "streams/sse_request.hpp"

namespace boxgate::gateway {

OutcomeApi::OutcomeApi(const Topics& topics, StreamTail& tail, SseStreams& streams, Authorizer& auth)
    : topics_(topics), tail_(tail), streams_(streams), auth_(auth) {}

void OutcomeApi::stream(http::Exchange ex) {
  serve_pattern_stream(std::move(ex), auth_, streams_,
                       {tail_, topics_.outcome_stream(), {}, "/v1/commands", StreamKind::commands});
}

}  // namespace boxgate::gateway
