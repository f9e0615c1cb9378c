#include "routes.hpp"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "api/access_log.hpp"
#include "api/auth.hpp"
#include "api/browser_guard.hpp"
#include "api/caller.hpp"
#include "api/console.hpp"
#include "api/errors.hpp"
#include "api/openapi.hpp"
#include "api/rate_limiter.hpp"
#include "boxgate/ops/endpoints.hpp"
#include "commands/command_api.hpp"
#include "devices/device_api.hpp"
#include "events/event_api.hpp"
#include "notify/outcome_api.hpp"
#include "queue/queue_api.hpp"

namespace boxgate::gateway {

namespace {

// A request's path parameters, still percent-encoded: views into its path.
struct Params {
  std::string_view box;  // {boxId}
  std::string_view id;   // {requestId}
};

// What a handler gets besides the exchange. `caller` is set when the path
// names a box ({boxId}): its token was checked for that box.
struct Call {
  const Families& families;
  const Caller* caller;
  Params params;
};

using Serve = void (*)(http::Exchange, const Call&);

void post_command(http::Exchange ex, const Call& c) { c.families.commands.post_command(std::move(ex), *c.caller); }
void get_status(http::Exchange ex, const Call& c) {
  c.families.commands.get_status(std::move(ex), *c.caller, c.params.id);
}
void post_message(http::Exchange ex, const Call& c) { c.families.commands.post_message(std::move(ex), *c.caller); }
void list_queue(http::Exchange ex, const Call& c) { c.families.queue.list(std::move(ex), *c.caller); }
void cancel_command(http::Exchange ex, const Call& c) {
  c.families.queue.cancel(std::move(ex), *c.caller, c.params.id);
}
void read_device(http::Exchange ex, const Call& c) { c.families.devices.read(std::move(ex), *c.caller); }
void get_state(http::Exchange ex, const Call& c) { c.families.events.get_state(std::move(ex), *c.caller); }
void get_events(http::Exchange ex, const Call& c) { c.families.events.get_events(std::move(ex), *c.caller); }
void fleet_events(http::Exchange ex, const Call& c) { c.families.events.fleet(std::move(ex)); }
void outcome_stream(http::Exchange ex, const Call& c) { c.families.outcomes.stream(std::move(ex)); }
void console(http::Exchange ex, const Call&) { console_page(std::move(ex)); }
void openapi(http::Exchange ex, const Call&) { openapi_document(std::move(ex)); }

// Registered by ops::serve_endpoints (every daemon serves them alike); listed
// here so the table names every path the gateway serves.
constexpr Serve kCoreOps = nullptr;

enum class Method { GET, POST, DELETE };
using enum Method;
enum class Listener { api, ops };
using enum Listener;

struct Route {
  Method method;            // the one method it takes
  std::string_view path;    // as documented; a {name} segment matches any non-empty segment
  const char* log;          // the access log's endpoint name; nullptr: not logged
  Listener listener;        // ops: the ops listener (the API's unless ops_port is set)
  Serve serve;
};

// Every route of the gateway. tests/docs/routes_doc_check.py reads these rows
// and checks README.md and docs/ against them: keep one row per line.
// clang-format off
constexpr Route kRoutes[] = {
    {POST, "/v1/devices/{boxId}/commands",             "command",      api, post_command},
    {GET,  "/v1/devices/{boxId}/commands/{requestId}", "status",       api, get_status},
    {DELETE, "/v1/devices/{boxId}/commands/{requestId}", "cancel",     api, cancel_command},
    {GET,  "/v1/devices/{boxId}/commands",             "queue",        api, list_queue},
    {POST, "/v1/devices/{boxId}/messages",             "message",      api, post_message},
    {GET,  "/v1/devices/{boxId}",                      "device",       api, read_device},
    {GET,  "/v1/devices/{boxId}/state",                "state",        api, get_state},
    {GET,  "/v1/devices/{boxId}/events",               "events",       api, get_events},
    {GET,  "/v1/events",                               "fleet_events", api, fleet_events},
    {GET,  "/v1/commands",                             "outcomes",     api, outcome_stream},
    {GET,  "/console",                                 nullptr,        api, console},
    {GET,  "/openapi.yaml",                            nullptr,        ops, openapi},
    {GET,  "/healthz",                                 nullptr,        ops, kCoreOps},
    {GET,  "/readyz",                                  nullptr,        ops, kCoreOps},
    {GET,  "/metrics",                                 nullptr,        ops, kCoreOps},
};
// clang-format on

// The next '/'-separated segment of `s` (which starts after a '/'); `s` moves past it.
std::string_view next_segment(std::string_view& s) {
  auto slash = s.find('/');
  std::string_view segment = s.substr(0, slash);
  s = slash == std::string_view::npos ? std::string_view{} : s.substr(slash + 1);
  return segment;
}

// Whether `path` matches `pattern` segment by segment; fills `params` from its {name} segments.
bool matches(std::string_view pattern, std::string_view path, Params& params) {
  if (pattern.empty() || path.empty() || path[0] != '/') return false;
  pattern.remove_prefix(1);
  path.remove_prefix(1);
  bool more = true;
  while (more) {
    more = pattern.find('/') != std::string_view::npos;
    if (more != (path.find('/') != std::string_view::npos)) return false;
    std::string_view want = next_segment(pattern);
    std::string_view got = next_segment(path);
    if (want.starts_with('{')) {
      if (got.empty()) return false;
      (want == "{boxId}" ? params.box : params.id) = got;
    } else if (want != got) {
      return false;
    }
  }
  return true;
}

// The part of a pattern before its first {name}: what http::Server routes on.
std::string_view literal_prefix(std::string_view pattern) { return pattern.substr(0, pattern.find('{')); }

const char* method_name(const http::Exchange& ex) {
  return ex.is_get() ? "GET" : ex.is_post() ? "POST" : ex.is_delete() ? "DELETE" : "other";
}

const char* name_of(Method method) {
  switch (method) {
    case GET: return "GET";
    case POST: return "POST";
    case DELETE: return "DELETE";
  }
  return "GET";
}

bool takes(const http::Exchange& ex, Method method) {
  switch (method) {
    case GET: return ex.is_get();
    case POST: return ex.is_post();
    case DELETE: return ex.is_delete();
  }
  return false;
}

// The Allow header of a 405: every method some row takes on `path`.
std::string allowed_on(std::string_view path) {
  std::string allowed;
  for (const Route& r : kRoutes) {
    Params unused;
    if (!r.serve || !matches(r.path, path, unused)) continue;
    if (allowed.find(name_of(r.method)) != std::string::npos) continue;
    if (!allowed.empty()) allowed += ", ";
    allowed += name_of(r.method);
  }
  return allowed;
}

void not_found(http::Exchange& ex) { ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})"); }

// Serves the route once the caller's token is within its rate (429
// rate_limited otherwise). Every /v1/ call of a token counts; /v1/events
// and /v1/commands check their token in their handler, so here it is only
// looked up (an invalid one is answered 401 there, unmetered). No token (the
// API is open, or a path outside /v1/): served at once.
void serve_within_rate(http::Exchange ex, const Route& route, Call call, std::optional<Caller> caller,
                       const Authorizer& auth, RateLimiter& rate) {
  std::shared_ptr<const ApiToken> token;
  if (caller) {
    token = caller->token;
  } else if (ex.path().starts_with("/v1/")) {
    token = auth.peek(ex.header("Authorization"));
  }
  if (!token) {
    call.caller = caller ? &*caller : nullptr;
    return route.serve(std::move(ex), call);
  }
  auto waiting = std::make_shared<http::Exchange>(std::move(ex));
  auto held = std::make_shared<std::optional<Caller>>(std::move(caller));
  rate.admit(*token, [&route, call, waiting, held](std::optional<std::chrono::milliseconds> retry_after) mutable {
    if (!waiting->open()) return;
    call.caller = *held ? &**held : nullptr;
    if (retry_after) {
      return reply_rate_limited(*waiting, *retry_after, call.caller ? &call.caller->id.str() : nullptr,
                                call.caller ? &call.caller->box.str() : nullptr);
    }
    route.serve(std::move(*waiting), call);
  });
}

}  // namespace

Routes::Routes(http::Server& api_server, http::Server& ops_server, Families families, Authorizer& auth,
               RateLimiter& rate, const BrowserGuard& browser, const ops::Metrics& metrics,
               const ops::Readiness& readiness, bool access_log)
    : families_(families), auth_(auth), rate_(rate), browser_(browser), access_log_(access_log) {
  // http::Server routes a literal path exactly, a templated one by its
  // literal prefix (once per prefix and server); dispatch() walks the table.
  std::vector<std::pair<const http::Server*, std::string_view>> prefixes;
  for (const Route& route : kRoutes) {
    if (!route.serve) continue;
    http::Server& server = route.listener == api ? api_server : ops_server;
    std::string_view prefix = literal_prefix(route.path);
    auto handler = [this](http::Exchange ex) { dispatch(std::move(ex)); };
    if (prefix == route.path) {
      server.route(std::string(prefix), handler);
    } else if (std::find(prefixes.begin(), prefixes.end(), std::pair{&std::as_const(server), prefix}) ==
               prefixes.end()) {
      prefixes.emplace_back(&server, prefix);
      server.route_prefix(std::string(prefix), handler);
    }
  }
  api_server.admit_bodies([this](const http::RequestHead& head) { return admit(head); });
  // Ops endpoints stay open (load balancers and Prometheus carry no token):
  // on their own listener they can be kept off the network the API faces.
  ops::serve_endpoints(ops_server, metrics, readiness);
}


// A body is announced: for a row that takes it and names a box, the caller
// is checked as far as it can be without the body (api/caller.hpp).
std::optional<http::Refusal> Routes::admit(const http::RequestHead& head) const {
  const std::string_view path = head.target.substr(0, head.target.find('?'));
  for (const Route& r : kRoutes) {
    Params p;
    if (r.serve && r.listener == api && name_of(r.method) == head.method && matches(r.path, path, p)) {
      return p.box.empty() ? std::nullopt : refuse_before_body(head, p.box, auth_);
    }
  }
  return std::nullopt;
}

void Routes::dispatch(http::Exchange ex) {
  Params params;
  const Route* route = nullptr;
  // The first row whose path and method match serves; a path that matches
  // only with another method is remembered for the 405. Stopping at the first
  // full match keeps the command path (the first row) to one comparison.
  for (const Route& r : kRoutes) {
    Params p;
    if (!r.serve || !matches(r.path, ex.path(), p)) continue;
    if (!route || takes(ex, r.method)) {
      route = &r;
      params = p;
    }
    if (takes(ex, r.method)) break;
  }
  if (!route) return not_found(ex);
  if (access_log_ && route->log) attach_access_log(ex, method_name(ex), route->log, params.box);
  if (!takes(ex, route->method)) return http::reply_method_not_allowed(ex, allowed_on(ex.path()).c_str());
  // Browsers (api/browser_guard.hpp): before the token, so nothing is read or
  // published for a page that may not call the API. The ops rows are for
  // scrapers and operators on the internal network, as the core ops endpoints.
  if (route->listener == api && (!browser_.host_allowed(ex) || !browser_.origin_allowed(ex))) return;
  if (route->method == POST && !json_declared(ex)) return;
  std::optional<Caller> caller;
  if (!params.box.empty()) {
    caller = identify(ex, params.box, auth_);
    if (!caller) return;
  }
  serve_within_rate(std::move(ex), *route, Call{families_, nullptr, params}, std::move(caller), auth_, rate_);
}

}  // namespace boxgate::gateway
