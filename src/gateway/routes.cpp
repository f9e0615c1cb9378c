#include "routes.hpp"

#include <string_view>

#include "api/access_log.hpp"
#include "api/auth.hpp"
#include "api/caller.hpp"
#include "api/console.hpp"
#include "api/openapi.hpp"
#include "boxgate/ops/endpoints.hpp"
#include "commands/command_api.hpp"
#include "devices/device_api.hpp"
#include "events/event_api.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::string_view kDevices = "/v1/devices/";

enum class Method { get, post };

// An endpoint under /v1/devices/{boxId}.
enum class Endpoint { none, device, command, status, message, state, events };

struct DevicePath {
  Endpoint endpoint = Endpoint::none;
  std::string_view box;  // still percent-encoded
  std::string_view id;   // status: the command's id, still percent-encoded
};

DevicePath device_path_of(std::string_view path) {
  std::string_view rest = path.substr(kDevices.size());
  auto slash = rest.find('/');
  std::string_view box = rest.substr(0, slash);
  if (box.empty()) return {};
  if (slash == std::string_view::npos) return {Endpoint::device, box, {}};
  std::string_view tail = rest.substr(slash);
  if (tail == "/commands") return {Endpoint::command, box, {}};
  if (tail == "/messages") return {Endpoint::message, box, {}};
  if (tail == "/state") return {Endpoint::state, box, {}};
  if (tail == "/events") return {Endpoint::events, box, {}};
  constexpr std::string_view kCommands = "/commands/";
  if (tail.substr(0, kCommands.size()) == kCommands) {
    std::string_view id = tail.substr(kCommands.size());
    if (!id.empty() && id.find('/') == std::string_view::npos) return {Endpoint::status, box, id};
  }
  return {};
}

// The access log's name of an endpoint, and the one method it takes.
struct EndpointInfo {
  const char* name;
  Method method;
};

EndpointInfo info_of(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::command: return {"command", Method::post};
    case Endpoint::status: return {"status", Method::get};
    case Endpoint::message: return {"message", Method::post};
    case Endpoint::device: return {"device", Method::get};
    case Endpoint::state: return {"state", Method::get};
    case Endpoint::events: return {"events", Method::get};
    case Endpoint::none: break;
  }
  return {"none", Method::get};
}

const char* method_name(const http::Exchange& ex) { return ex.is_get() ? "GET" : ex.is_post() ? "POST" : "other"; }

// The one method check: false (answered 405) when `ex` is not `method`.
bool method_is(http::Exchange& ex, Method method) {
  if (method == Method::get ? ex.is_get() : ex.is_post()) return true;
  http::reply_method_not_allowed(ex, method == Method::get ? "GET" : "POST");
  return false;
}

// A route that only serves GET.
template <typename Serve>
http::Handler get_only(Serve serve) {
  return [serve](http::Exchange ex) {
    if (method_is(ex, Method::get)) serve(std::move(ex));
  };
}

void not_found(http::Exchange& ex) { ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})"); }

}  // namespace

Routes::Routes(http::Server& api, http::Server& ops_server, Families families, Authorizer& auth,
               const ops::Metrics& metrics, const ops::Readiness& readiness, bool access_log)
    : families_(families), auth_(auth), access_log_(access_log) {
  api.route_prefix(std::string(kDevices), [this](http::Exchange ex) { device_path(std::move(ex)); });
  api.route("/v1/events", [this](http::Exchange ex) { fleet_events(std::move(ex)); });
  api.route("/console", get_only(console_page));
  // Ops endpoints stay open (load balancers and Prometheus carry no token):
  // on their own listener they can be kept off the network the API faces.
  ops::serve_endpoints(ops_server, metrics, readiness);
  ops_server.route("/openapi.yaml", get_only(openapi_document));
}

void Routes::device_path(http::Exchange ex) {
  DevicePath path = device_path_of(ex.path());
  if (path.endpoint == Endpoint::none) return not_found(ex);
  EndpointInfo info = info_of(path.endpoint);
  if (access_log_) attach_access_log(ex, method_name(ex), info.name, path.box);
  if (!method_is(ex, info.method)) return;
  std::optional<Caller> caller = identify(ex, path.box, auth_);
  if (!caller) return;
  switch (path.endpoint) {
    case Endpoint::command: return families_.commands.post_command(std::move(ex), *caller);
    case Endpoint::status: return families_.commands.get_status(std::move(ex), *caller, path.id);
    case Endpoint::message: return families_.commands.post_message(std::move(ex), *caller);
    case Endpoint::device: return families_.devices.read(std::move(ex), *caller);
    case Endpoint::state: return families_.events.get_state(std::move(ex), *caller);
    case Endpoint::events: return families_.events.get_events(std::move(ex), *caller);
    case Endpoint::none: break;
  }
  not_found(ex);
}

void Routes::fleet_events(http::Exchange ex) {
  // No box in the path: the line's box is "-".
  if (access_log_) attach_access_log(ex, method_name(ex), "fleet_events", {});
  if (method_is(ex, Method::get)) families_.events.fleet(std::move(ex));
}

}  // namespace boxgate::gateway
