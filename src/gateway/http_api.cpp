#include "http_api.hpp"

#include <charconv>
#include <memory>

#include <nlohmann/json.hpp>

#include "boxgate/logging.hpp"
#include "command_body.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::string_view kPrefix = "/v1/devices/";
constexpr std::string_view kSuffix = "/commands";

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
    case Outcome::too_many_pending:
      return {429, "too_many_pending", "The gateway has too many commands waiting; retry later."};
    case Outcome::too_many_bytes:
      return {429, "too_many_pending", "The gateway holds too many command bytes waiting; retry later."};
    case Outcome::device_busy:
      return {429, "device_busy", "This device has too many commands waiting; retry later."};
    case Outcome::mqtt_unavailable:
      return {503, "mqtt_unavailable", "The MQTT broker is unavailable; the command was not sent."};
    case Outcome::redis_unavailable:
      return {503, "redis_unavailable", "Redis is unavailable; the command was not sent."};
    case Outcome::shutting_down:
      return {503, "shutting_down", "This gateway is shutting down; retry on another replica."};
    case Outcome::device_timeout:
      return {504, "device_timeout", "The device did not reply within the timeout."};
    case Outcome::delivered:  // answered by reply_delivered(), not as an error
    case Outcome::ok:
    case Outcome::replayed:
    case Outcome::client_gone:
      break;
  }
  return {500, "internal", "Unexpected outcome."};
}

void reply_error(http::Exchange& ex, int status, const char* code, const std::string& message,
                 const std::string* request_id, const std::string* box_id) {
  nlohmann::ordered_json body = {{"error", code}, {"message", message}};
  if (request_id) {
    body["request_id"] = *request_id;
    ex.set_header("X-Request-Id", *request_id);
  }
  if (box_id) body["box_id"] = *box_id;
  if (status == 429 || status == 503) ex.set_header("Retry-After", "1");
  // Never throws on bytes that are not UTF-8 (they are replaced): an error
  // answer must not turn into a 500.
  ex.reply(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// A caller's bytes quoted in a message: printable ASCII only (others as '?'),
// at most 64 of them.
std::string quoted_name(std::string_view raw) {
  std::string out(raw.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
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

// timeout_ms: decimal digits only, 1..max.
std::optional<std::chrono::milliseconds> parse_timeout(std::string_view text, std::chrono::milliseconds max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > max.count()) return std::nullopt;
  return std::chrono::milliseconds(value);
}

}  // namespace

HttpApi::HttpApi(http::Server& server, CommandService& service, Authorizer& auth, ApiLimits limits)
    : service_(service), auth_(auth), limits_(limits) {
  server.route_prefix(std::string(kPrefix), [this](http::Exchange ex) { handle(std::move(ex)); });
}

void HttpApi::handle(http::Exchange ex) {
  std::string_view path = ex.path();
  std::string_view segment = path.substr(kPrefix.size());
  auto slash = segment.find('/');
  if (slash == std::string_view::npos && devices_) return devices_(std::move(ex));  // GET /v1/devices/{id}
  if (slash == std::string_view::npos || segment.substr(slash) != kSuffix) {
    return ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})");
  }
  if (!ex.is_post()) {
    ex.set_header("Allow", "POST");
    return ex.reply(405, R"({"error":"method_not_allowed","message":"use POST"})");
  }

  // The request id first, so every later error can carry it.
  std::optional<RequestId> request_id;
  bool caller_id = false;
  if (const char* given = ex.header("X-Request-Id")) {
    request_id = RequestId::parse(given);
    if (!request_id) {
      return reply_error(ex, 400, "invalid_request_id",
                         "X-Request-Id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$.", nullptr, nullptr);
    }
    caller_id = true;
  } else {
    request_id = new_request_id();
  }
  const std::string& rid = request_id->str();

  auto box = BoxId::parse(http::percent_decode(segment.substr(0, slash)));
  if (!box) {
    return reply_error(ex, 400, "invalid_box_id", "The box id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$.",
                       &rid, nullptr);
  }
  const std::string& bid = box->str();

  // Before the query and the body: a caller without a valid token for this
  // box learns nothing more, and costs no body scan.
  Decision access = auth_.authorize(ex.header("Authorization"), *box);
  if (access.verdict == Verdict::missing_token || access.verdict == Verdict::invalid_token) {
    bool missing = access.verdict == Verdict::missing_token;
    log::get("gateway")->debug("box {} request {}: 401, {}", bid, rid, missing ? "no token" : "invalid token");
    // RFC 6750: no error attribute when no credentials were sent at all.
    ex.set_header("WWW-Authenticate", missing ? "Bearer" : R"(Bearer error="invalid_token")");
    return reply_error(ex, 401, "unauthorized",
                       missing ? "This API needs an Authorization: Bearer <token> header."
                               : "The bearer token is not valid.",
                       &rid, &bid);
  }
  if (access.verdict == Verdict::forbidden) {
    log::get("gateway")->debug("box {} request {}: 403, token '{}' is not scoped for this box", bid, rid,
                               access.token->name);
    return reply_error(ex, 403, "forbidden", "This token may not command this box.", &rid, &bid);
  }

  auto timeout = limits_.default_timeout;
  std::optional<std::string_view> timeout_text;
  // Strict: a parameter the gateway would not act on is refused, never ignored.
  for (const http::QueryParam& param : http::split_query(ex.raw_query())) {
    if (param.name != "timeout_ms") {
      return reply_error(ex, 400, "invalid_query",
                         "Unknown query parameter '" + quoted_name(param.name) +
                             "'; the only one is timeout_ms.",
                         &rid, &bid);
    }
    if (timeout_text) {
      return reply_error(ex, 400, "invalid_timeout", "timeout_ms is given more than once.", &rid, &bid);
    }
    timeout_text = param.value;
  }
  if (timeout_text) {
    auto parsed = parse_timeout(*timeout_text, limits_.max_timeout);
    if (!parsed) {
      return reply_error(ex, 400, "invalid_timeout",
                         "timeout_ms must be an integer from 1 to " + std::to_string(limits_.max_timeout.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    timeout = *parsed;
  }

  std::string_view body = ex.body();
  if (body.size() > limits_.max_body_bytes) {
    return reply_error(ex, 413, "body_too_large",
                       "The command body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes.", &rid, &bid);
  }
  auto command = command_payload(body, *request_id);
  if (!command.payload) return reply_error(ex, 400, "invalid_body", command.problem, &rid, &bid);
  ex.discard_body();  // the payload is the one copy from here on

  // The exchange waits in the completion; a caller that leaves cancels the command.
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  shared->on_disconnect([this, id = *request_id] { service_.cancel(id); });
  CommandRequest request{*box, *request_id, caller_id, std::move(*command.payload), timeout};
  service_.submit(std::move(request), [shared, rid, bid](CommandResult&& result) {
    http::Exchange& exchange = *shared;
    if (result.outcome == Outcome::ok || result.outcome == Outcome::replayed) {
      exchange.set_header("X-Request-Id", rid);
      return exchange.reply(200, std::move(result.reply));
    }
    if (result.outcome == Outcome::client_gone) return;
    if (result.outcome == Outcome::delivered) return reply_delivered(exchange, rid, bid);
    ErrorInfo info = error_for(result.outcome);
    reply_error(exchange, info.status, info.code, info.message, &rid, &bid);
  });
}

}  // namespace boxgate::gateway
