#include "commands/command_api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/access_log.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/traceparent.hpp"
#include "commands/command_body.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::string_view kPrefix = "/v1/devices/";
constexpr const char* kIdPattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";

// What a path under /v1/devices/ names.
struct Route {
  enum class Kind { none, device, command, status, message, state, events } kind = Kind::none;
  std::string_view box;  // still percent-encoded
  std::string_view id;   // status: the command's id, still percent-encoded
};

Route route_of(std::string_view path) {
  std::string_view rest = path.substr(kPrefix.size());
  auto slash = rest.find('/');
  std::string_view box = rest.substr(0, slash);
  if (box.empty()) return {};
  if (slash == std::string_view::npos) return {Route::Kind::device, box, {}};
  std::string_view tail = rest.substr(slash);
  if (tail == "/commands") return {Route::Kind::command, box, {}};
  if (tail == "/messages") return {Route::Kind::message, box, {}};
  if (tail == "/state") return {Route::Kind::state, box, {}};
  if (tail == "/events") return {Route::Kind::events, box, {}};
  constexpr std::string_view kCommands = "/commands/";
  if (tail.substr(0, kCommands.size()) == kCommands) {
    std::string_view id = tail.substr(kCommands.size());
    if (!id.empty() && id.find('/') == std::string_view::npos) return {Route::Kind::status, box, id};
  }
  return {};
}

// The access log's name of an endpoint.
const char* endpoint_name(Route::Kind kind) {
  switch (kind) {
    case Route::Kind::command: return "command";
    case Route::Kind::status: return "status";
    case Route::Kind::message: return "message";
    case Route::Kind::device: return "device";
    case Route::Kind::state: return "state";
    case Route::Kind::events: return "events";
    case Route::Kind::none: break;
  }
  return "none";
}

// RFC 7240: a comma list of preferences, each a token with optional
// "=value" and ";params". Only respond-async is acted on.
bool prefers_async(const char* header) {
  if (!header) return false;
  std::string_view rest(header);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    item = item.substr(0, item.find_first_of("=;"));
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    constexpr std::string_view kAsync = "respond-async";
    if (item.size() == kAsync.size() &&
        std::equal(item.begin(), item.end(), kAsync.begin(), [](char a, char b) { return std::tolower(a) == b; })) {
      return true;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

struct ErrorInfo {
  int status;
  const char* code;
  const char* message;
};

// The one place where outcomes and request errors become HTTP statuses.
ErrorInfo error_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::duplicate_request_id:
      return {409, "duplicate_request_id", "A command with this X-Request-Id is already in flight."};
    case Outcome::request_id_reused:
      return {422, "request_id_reused", "This X-Request-Id was used for a command with another body."};
    case Outcome::timed_out_before:
      return {504, "device_timeout",
              "This X-Request-Id's command timed out earlier and is not sent again; use a new X-Request-Id to "
              "send it again."};
    case Outcome::too_many_pending:
      return {429, "too_many_pending", "The gateway has too many commands waiting; retry later."};
    case Outcome::too_many_bytes:
      return {429, "too_many_pending", "The gateway holds too many command bytes waiting; retry later."};
    case Outcome::device_busy:
      return {429, "device_busy", "This device has too many commands waiting; retry later."};
    case Outcome::device_offline:
      return {404, "device_offline", "The device is offline (its presence says so); the command was not sent."};
    case Outcome::mqtt_unavailable:
      return {503, "mqtt_unavailable", "The MQTT broker is unavailable; the command was not sent."};
    case Outcome::redis_unavailable:
      return {503, "redis_unavailable", "Redis is unavailable; the command was not sent."};
    case Outcome::shutting_down:
      return {503, "shutting_down", "This gateway is shutting down; retry on another replica."};
    case Outcome::device_timeout:
      return {504, "device_timeout", "The device did not reply within the timeout."};
    case Outcome::delivered:  // answered by reply_delivered(), not as an error
    case Outcome::accepted:   // answered by reply_accepted()
    case Outcome::ok:
    case Outcome::replayed:
    case Outcome::client_gone:
      break;
  }
  return {500, "internal", "Unexpected outcome."};
}

// 202: the command was published, but this gateway stops before its reply.
// Not an error and not a 5xx, so no client or proxy retries it elsewhere.
void reply_delivered(http::Exchange& ex, const std::string& request_id, const std::string& box_id) {
  nlohmann::ordered_json body = {
      {"status", "delivered"},
      {"message",
       "The command was sent to the device, but this gateway is shutting down before its reply; it may still run. "
       "Do not resend it: its reply, if any, is stored under its request id."},
      {"request_id", request_id},
      {"box_id", box_id}};
  ex.set_header("X-Request-Id", request_id);
  ex.reply(202, body.dump());
}

// 202 for an async command: where to poll, and its record.
void reply_accepted(http::Exchange& ex, const std::string& request_id, const std::string& box_id,
                    std::string record) {
  ex.set_header("X-Request-Id", request_id);
  ex.set_header("Location", std::string(kPrefix) + box_id + "/commands/" + request_id);
  ex.set_header("Preference-Applied", "respond-async");
  ex.reply(202, std::move(record));
}

// timeout_ms, wait_ms: decimal digits only, min..max.
std::optional<std::chrono::milliseconds> parse_ms(std::string_view text, std::int64_t min,
                                                   std::chrono::milliseconds max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max.count()) return std::nullopt;
  return std::chrono::milliseconds(value);
}

// The one query parameter `name` an endpoint takes (strict: any other is
// refused, never ignored). Answers and returns false on a bad query.
bool one_param(http::Exchange& ex, std::string_view name, std::optional<std::string_view>& value,
               const std::string& rid, const std::string& bid, const char* twice_code) {
  for (const http::QueryParam& param : http::split_query(ex.raw_query())) {
    if (param.name != name) {
      reply_error(ex, 400, "invalid_query",
                  "Unknown query parameter '" + quoted_name(param.name) + "'; the only one is " +
                      std::string(name) + ".",
                  &rid, &bid);
      return false;
    }
    if (value) {
      reply_error(ex, 400, twice_code, std::string(name) + " is given more than once.", &rid, &bid);
      return false;
    }
    value = param.value;
  }
  return true;
}

// Answers and returns false when the query is not empty.
bool no_params(http::Exchange& ex, const std::string& rid, const std::string& bid) {
  if (http::split_query(ex.raw_query()).empty()) return true;
  reply_error(ex, 400, "invalid_query", "This endpoint takes no query parameters.", &rid, &bid);
  return false;
}

}  // namespace

struct HttpApi::Caller {
  RequestId id;
  bool caller_supplied_id;
  BoxId box;
};

HttpApi::HttpApi(http::Server& server, ApiServices services, Authorizer& auth, ApiLimits limits)
    : services_(services), auth_(auth), limits_(limits) {
  server.route_prefix(std::string(kPrefix), [this](http::Exchange ex) { handle(std::move(ex)); });
}

void HttpApi::handle(http::Exchange ex) {
  Route route = route_of(ex.path());
  if (route.kind == Route::Kind::none || (route.kind == Route::Kind::device && !devices_)) {
    return ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})");
  }
  bool get = route.kind == Route::Kind::device || route.kind == Route::Kind::status ||
             route.kind == Route::Kind::state || route.kind == Route::Kind::events;
  if (limits_.access_log) {
    attach_access_log(ex, ex.is_get() ? "GET" : ex.is_post() ? "POST" : "other", endpoint_name(route.kind), route.box);
  }
  if (get ? !ex.is_get() : !ex.is_post()) {
    ex.set_header("Allow", get ? "GET" : "POST");
    return ex.reply(405, get ? R"({"error":"method_not_allowed","message":"use GET"})"
                             : R"({"error":"method_not_allowed","message":"use POST"})");
  }
  std::optional<Caller> caller = identify(ex, route.box);
  if (!caller) return;
  switch (route.kind) {
    case Route::Kind::command: return post_command(std::move(ex), std::move(*caller));
    case Route::Kind::status: return get_status(std::move(ex), std::move(*caller), route.id);
    case Route::Kind::message: return post_message(std::move(ex), std::move(*caller));
    case Route::Kind::state:
      if (services_.events) return services_.events->get_state(std::move(ex), caller->box, caller->id.str());
      break;
    case Route::Kind::events:
      if (services_.events) return services_.events->get_events(std::move(ex), caller->box, caller->id.str());
      break;
    case Route::Kind::device:
      if (!no_params(ex, caller->id.str(), caller->box.str())) return;
      return devices_(std::move(ex), caller->box, caller->id);
    case Route::Kind::none: break;
  }
  ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})");
}

std::optional<HttpApi::Caller> HttpApi::identify(http::Exchange& ex, std::string_view box_segment) {
  // The request id first, so every later error can carry it.
  std::optional<RequestId> request_id;
  bool caller_id = false;
  const char* given = ex.header("X-Request-Id");
  // The IETF httpapi draft's name for the same thing.
  const char* key = ex.header("Idempotency-Key");
  if (given && key && std::string_view(given) != key) {
    reply_error(ex, 400, "invalid_request_id", "X-Request-Id and Idempotency-Key differ; send one of them.", nullptr,
                nullptr);
    return std::nullopt;
  }
  if (!given) given = key;
  if (given) {
    request_id = RequestId::parse(given);
    if (!request_id) {
      reply_error(ex, 400, "invalid_request_id",
                  std::string("X-Request-Id (or Idempotency-Key) must match ") + kIdPattern + ".", nullptr, nullptr);
      return std::nullopt;
    }
    caller_id = true;
  } else {
    request_id = new_request_id();
  }
  const std::string& rid = request_id->str();

  auto box = BoxId::parse(http::percent_decode(box_segment));
  if (!box) {
    reply_error(ex, 400, "invalid_box_id", std::string("The box id must match ") + kIdPattern + ".", &rid, nullptr);
    return std::nullopt;
  }
  const std::string& bid = box->str();

  // Before the query and the body: a caller without a valid token for this
  // box learns nothing more, and costs no body scan.
  Decision access = auth_.authorize(ex.header("Authorization"), *box);
  if (access.verdict == Verdict::missing_token || access.verdict == Verdict::invalid_token) {
    bool missing = access.verdict == Verdict::missing_token;
    log::Fields fields{{"request_id", rid}, {"box_id", bid}};
    log::get("gateway")->debug("box {} request {}: 401, {}", bid, rid, missing ? "no token" : "invalid token");
    reply_unauthorized(ex, missing, &rid, &bid);
    return std::nullopt;
  }
  if (access.verdict == Verdict::forbidden) {
    log::Fields fields{{"request_id", rid}, {"box_id", bid}};
    log::get("gateway")->debug("box {} request {}: 403, token '{}' is not scoped for this box", bid, rid,
                               access.token->name);
    reply_error(ex, 403, "forbidden", "This token is not scoped for this box.", &rid, &bid);
    return std::nullopt;
  }
  return Caller{std::move(*request_id), caller_id, std::move(*box)};
}

std::optional<std::string> HttpApi::payload_of(http::Exchange& ex, const Caller& caller) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  std::string_view body = ex.body();
  if (body.size() > limits_.max_body_bytes) {
    reply_error(ex, 413, "body_too_large",
                "The body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes.", &rid, &bid);
    return std::nullopt;
  }
  auto command = command_payload(body, caller.id);
  if (!command.payload) {
    reply_error(ex, 400, "invalid_body", command.problem, &rid, &bid);
    return std::nullopt;
  }
  return std::move(command.payload);
}

void HttpApi::post_command(http::Exchange ex, Caller caller) {
  const std::string rid = caller.id.str();
  const std::string bid = caller.box.str();
  CommandMode mode = prefers_async(ex.header("Prefer")) ? CommandMode::async : CommandMode::sync;
  auto max_timeout = mode == CommandMode::async ? limits_.max_async_timeout : limits_.max_timeout;

  std::optional<std::string_view> timeout_text;
  if (!one_param(ex, "timeout_ms", timeout_text, rid, bid, "invalid_timeout")) return;
  auto timeout = limits_.default_timeout;
  if (timeout_text) {
    auto parsed = parse_ms(*timeout_text, 1, max_timeout);
    if (!parsed) {
      return reply_error(ex, 400, "invalid_timeout",
                         "timeout_ms must be an integer from 1 to " + std::to_string(max_timeout.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    timeout = *parsed;
  }
  std::optional<std::string> payload = payload_of(ex, caller);
  if (!payload) return;
  std::string hash = body_sha256(ex.body());
  ex.discard_body();  // the payload is the one copy from here on
  // W3C trace context: passed on to the device when well-formed, else
  // dropped (a tracing header never fails a command).
  std::string traceparent;
  if (const char* trace = ex.header("traceparent")) {
    if (is_valid_traceparent(trace)) {
      traceparent = trace;
    } else {
      log::get("gateway")->debug("box {} request {}: invalid traceparent dropped", bid, rid);
    }
  }

  // The exchange waits in the completion; a caller that leaves cancels the command.
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  shared->on_disconnect([this, id = caller.id] { services_.commands.cancel(id); });
  CommandRequest request{caller.box, caller.id, caller.caller_supplied_id, std::move(*payload), timeout,
                         std::move(hash), mode, std::move(traceparent)};
  services_.commands.submit(std::move(request), [shared, rid, bid](CommandResult&& result) {
    http::Exchange& exchange = *shared;
    exchange.set_note(outcome_name(result.outcome));
    if (result.outcome == Outcome::ok || result.outcome == Outcome::replayed) {
      exchange.set_header("X-Request-Id", rid);
      return exchange.reply(200, std::move(result.reply));
    }
    if (result.outcome == Outcome::client_gone) return;
    if (result.outcome == Outcome::delivered) return reply_delivered(exchange, rid, bid);
    if (result.outcome == Outcome::accepted) return reply_accepted(exchange, rid, bid, std::move(result.reply));
    ErrorInfo info = error_for(result.outcome);
    reply_error(exchange, info.status, info.code, info.message, &rid, &bid, result.delivered);
  });
}

void HttpApi::get_status(http::Exchange ex, Caller caller, std::string_view id_segment) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  auto command = RequestId::parse(http::percent_decode(id_segment));
  if (!command) {
    return reply_error(ex, 400, "invalid_request_id",
                       std::string("The command id must match ") + kIdPattern + ".", &rid, &bid);
  }
  std::optional<std::string_view> wait_text;
  if (!one_param(ex, "wait_ms", wait_text, rid, bid, "invalid_wait")) return;
  std::chrono::milliseconds wait{0};
  if (wait_text) {
    auto parsed = parse_ms(*wait_text, 0, limits_.max_timeout);
    if (!parsed) {
      return reply_error(ex, 400, "invalid_wait",
                         "wait_ms must be an integer from 0 to " + std::to_string(limits_.max_timeout.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    wait = *parsed;
  }
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  auto handle = std::make_shared<std::uint64_t>(0);
  *handle = services_.status.read(caller.box, *command, wait, [shared, rid, bid](StatusAnswer&& answer) {
    http::Exchange& exchange = *shared;
    switch (answer.kind) {
      case StatusAnswer::Kind::found:
        exchange.set_header("X-Request-Id", rid);
        return exchange.reply(200, std::move(answer.body));
      case StatusAnswer::Kind::unknown:
        return reply_error(exchange, 404, "unknown_command",
                           "No command with this id is recorded for this box (never sent, or expired).", &rid, &bid);
      case StatusAnswer::Kind::unavailable:
        return reply_error(exchange, 503, "redis_unavailable", "Redis is unavailable; the status cannot be read.",
                           &rid, &bid);
    }
  });
  if (shared->open()) shared->on_disconnect([this, handle] { services_.status.cancel(*handle); });
}

void HttpApi::post_message(http::Exchange ex, Caller caller) {
  const std::string rid = caller.id.str();
  const std::string bid = caller.box.str();
  if (!no_params(ex, rid, bid)) return;
  std::optional<std::string> payload = payload_of(ex, caller);
  if (!payload) return;
  ex.discard_body();
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  services_.messages.send(caller.box, caller.id, std::move(*payload), [shared, rid, bid](MessageService::Result r) {
    http::Exchange& exchange = *shared;
    if (!exchange.open()) return;  // the caller left; the message went its way
    switch (r) {
      case MessageService::Result::acknowledged: {
        nlohmann::ordered_json body = {{"status", "accepted"}, {"request_id", rid}, {"box_id", bid}};
        exchange.set_header("X-Request-Id", rid);
        return exchange.reply(202, body.dump());
      }
      case MessageService::Result::not_acknowledged:
        return reply_error(exchange, 503, "mqtt_unavailable",
                           "The broker did not acknowledge the message in time; it may or may not reach the device.",
                           &rid, &bid);
      case MessageService::Result::mqtt_unavailable:
        return reply_error(exchange, 503, "mqtt_unavailable", "The MQTT broker is unavailable; the message was not sent.",
                           &rid, &bid);
      case MessageService::Result::too_many:
        return reply_error(exchange, 429, "too_many_pending", "Too many messages await the broker; retry later.", &rid,
                           &bid);
      case MessageService::Result::shutting_down:
        return reply_error(exchange, 503, "shutting_down", "This gateway is shutting down; retry on another replica.",
                           &rid, &bid);
    }
  });
}

}  // namespace boxgate::gateway
