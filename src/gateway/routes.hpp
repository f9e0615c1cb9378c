#pragma once
// The gateway's route table: every path it serves, in one place -- kRoutes in
// routes.cpp, one row per endpoint: method, path as documented, access-log
// name, listener (API or ops) and handler. A {name} segment of a path matches
// any non-empty segment, still percent-encoded.
//
// For every API call (the /v1/ paths) it starts the one access-log line
// (api/access_log.hpp), then checks the method -- any other is 405 with the
// one body every route answers (http::reply_method_not_allowed) -- then what
// keeps browsers out (api/browser_guard.hpp: Host, Origin, and a POST's
// Content-Type), then, under /v1/devices/, the request id, the box and the
// caller's token (api/caller.hpp) before the family's handler runs; then, for
// a caller with a token, the token's request rate (api/rate_limiter.hpp: 429
// rate_limited), on every /v1/ route. A path that names no endpoint is 404
// not_found. An API request that announces a body and carries no valid
// token is answered 401 before its body is read (api/caller.hpp,
// refuse_before_body).
//
// This is the only file that includes the families (commands/, devices/,
// events/, notify/, queue/); they include api/ and core only (queue/ also the
// commands' record and service, whose commands it sends; events/ and notify/
// also streams/, the SSE mechanism both serve). Loop thread only.

#include "boxgate/http/server.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"

namespace boxgate::gateway {

class Authorizer;
class BrowserGuard;
class RateLimiter;
class CommandApi;
class DeviceApi;
class EventApi;
class OutcomeApi;
class QueueApi;

// The families' handlers; each outlives the Routes.
struct Families {
  CommandApi& commands;
  DeviceApi& devices;
  EventApi& events;
  OutcomeApi& outcomes;
  QueueApi& queue;
};

class Routes {
 public:
  // Registers every route: the API and the console on `api`; the ops
  // endpoints and /openapi.yaml on `ops` (the same server unless the ops
  // endpoints have a listener of their own). `access_log`: false turns the
  // access log off (access_log=false).
  Routes(http::Server& api, http::Server& ops, Families families, Authorizer& auth, RateLimiter& rate,
         const BrowserGuard& browser,
         const ops::Metrics& metrics, const ops::Readiness& readiness, bool access_log);
  Routes(const Routes&) = delete;
  Routes& operator=(const Routes&) = delete;

 private:
  // Finds the request's row in the table (routes.cpp) and serves it.
  void dispatch(http::Exchange ex);
  // Before the body of a request that announces one (http::Server::admit_bodies).
  std::optional<http::Refusal> admit(const http::RequestHead& head) const;

  Families families_;
  Authorizer& auth_;
  RateLimiter& rate_;
  const BrowserGuard& browser_;
  bool access_log_;
};

}  // namespace boxgate::gateway
