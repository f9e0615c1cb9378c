#pragma once
// The operations endpoints every daemon serves: GET /healthz, /readyz, /metrics.
// Registered on an http::Server (loop thread).

#include "boxgate/http/server.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"

namespace boxgate::ops {

void serve_endpoints(http::Server& server, const Metrics& metrics, const Readiness& readiness);

}  // namespace boxgate::ops
