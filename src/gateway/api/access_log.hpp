#pragma once
// The access log: one info line per API call answered, on the logger
// "access" -- method, endpoint, box, request id, status, outcome and
// duration; in JSON mode (log_json) each of them is a field of the line.
// Off with access_log=false (or log_levels access=warn). Loop thread only.

#include <string_view>

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// Starts timing `ex` and logs its line when it ends (http::Exchange::on_end).
// `method` and `endpoint` (routes.cpp: "command", "status", "message",
// "device", "state", "events", "fleet_events") must be
// string literals. The box is read from the path's `box_segment` (percent-
// decoded; "-" when it is not a valid id), the request id from the response's
// X-Request-Id, the outcome from the exchange's note (an error code, or
// ok / replayed / accepted / delivered; client_gone when it ended unanswered).
void attach_access_log(http::Exchange& ex, const char* method, const char* endpoint, std::string_view box_segment);

}  // namespace boxgate::gateway
