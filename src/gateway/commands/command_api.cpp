#include "commands/command_api.hpp"

#include <algorithm>
#include <cctype>
#include <memory>

#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/query.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/traceparent.hpp"
#include "commands/command_body.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::string_view kPrefix = "/v1/devices/";
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
  Error error;
  const char* message;
};

// What each outcome of the command service tells the caller (its HTTP status
// is api/errors.cpp's).
ErrorInfo error_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::duplicate_request_id:
      return {Error::duplicate_request_id, "A command with this X-Request-Id is already in flight."};
    case Outcome::request_id_reused:
      return {Error::request_id_reused, "This X-Request-Id was used for a command with another body."};
    case Outcome::timed_out_before:
      return {Error::device_timeout,
              "This X-Request-Id's command timed out earlier and is not sent again; use a new X-Request-Id to "
              "send it again."};
    case Outcome::too_many_pending:
      return {Error::too_many_pending, "The gateway has too many commands waiting; retry later."};
    case Outcome::too_many_bytes:
      return {Error::too_many_pending, "The gateway holds too many command bytes waiting; retry later."};
    case Outcome::device_busy:
      return {Error::device_busy, "This device has too many commands waiting; retry later."};
    case Outcome::token_pending_full:
      return {Error::token_pending_full, "This token has as many commands waiting as it may; retry later."};
    case Outcome::device_offline:
      return {Error::device_offline, "The device is offline (its presence says so); the command was not sent."};
    case Outcome::mqtt_unavailable:
      return {Error::mqtt_unavailable, "The MQTT broker is unavailable; the command was not sent."};
    case Outcome::redis_unavailable:
      return {Error::redis_unavailable, "Redis is unavailable; the command was not sent."};
    case Outcome::shutting_down:
      return {Error::shutting_down, "This gateway is shutting down; retry on another replica."};
    case Outcome::device_timeout:
      return {Error::device_timeout, "The device did not reply within the timeout."};
    case Outcome::queue_full:
      return {Error::queue_full, "This device's command queue, or the gateway's queues together, are full; retry "
                                 "later or cancel queued commands."};
    case Outcome::delivered:  // answered by reply_delivered(), not as an error
    case Outcome::accepted:   // answered by reply_accepted()
    case Outcome::ok:
    case Outcome::replayed:
    case Outcome::client_gone:
      break;
  }
  return {Error::internal, "Unexpected outcome."};
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

}  // namespace

CommandApi::CommandApi(CommandServices services, CommandLimits limits) : services_(services), limits_(limits) {}

std::optional<std::string> CommandApi::payload_of(http::Exchange& ex, const Caller& caller) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  std::string_view body = ex.body();
  if (body.size() > limits_.max_body_bytes) {
    reply_error(ex, Error::body_too_large,
                "The body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes.", &rid, &bid);
    return std::nullopt;
  }
  auto command = command_payload(body, caller.id);
  if (!command.payload) {
    reply_error(ex, Error::invalid_body, command.problem, &rid, &bid);
    return std::nullopt;
  }
  return std::move(command.payload);
}

void CommandApi::post_command(http::Exchange ex, const Caller& caller) {
  const std::string rid = caller.id.str();
  const std::string bid = caller.box.str();
  CommandMode mode = prefers_async(ex.header("Prefer")) ? CommandMode::async : CommandMode::sync;
  auto max_timeout = mode == CommandMode::async ? limits_.max_async_timeout : limits_.max_timeout;

  std::optional<Query> query =
      read_query(ex, {{"timeout_ms", Error::invalid_timeout}, {"ttl_ms", Error::invalid_ttl}}, &rid, &bid);
  if (!query) return;
  std::optional<std::chrono::milliseconds> ttl;
  if (auto ttl_text = query->get("ttl_ms")) {
    // A queued command has no caller waiting: only an async one may wait.
    if (mode != CommandMode::async) {
      return reply_error(ex, Error::invalid_ttl, "ttl_ms needs Prefer: respond-async (a queued command is async).",
                         &rid, &bid);
    }
    auto parsed = parse_decimal(*ttl_text, 12, 1, limits_.max_queue_ttl.count());
    if (!parsed) {
      return reply_error(ex, Error::invalid_ttl,
                         "ttl_ms must be an integer from 1 to " + std::to_string(limits_.max_queue_ttl.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    ttl = std::chrono::milliseconds(*parsed);
  }
  auto timeout = limits_.default_timeout;
  if (auto timeout_text = query->get("timeout_ms")) {
    auto parsed = parse_decimal(*timeout_text, 10, 1, max_timeout.count());
    if (!parsed) {
      return reply_error(ex, Error::invalid_timeout,
                         "timeout_ms must be an integer from 1 to " + std::to_string(max_timeout.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    timeout = std::chrono::milliseconds(*parsed);
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
                         std::move(hash), mode, std::move(traceparent), caller.token, {}, ttl};
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
    reply_error(exchange, info.error, info.message, &rid, &bid, result.delivered);
  });
}

void CommandApi::get_status(http::Exchange ex, const Caller& caller, std::string_view id_segment) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  auto command = RequestId::parse(http::percent_decode(id_segment));
  if (!command) {
    return reply_error(ex, Error::invalid_request_id,
                       std::string("The command id must match ") + kIdPattern + ".", &rid, &bid);
  }
  std::optional<Query> query = read_query(ex, {{"wait_ms", Error::invalid_wait}}, &rid, &bid);
  if (!query) return;
  std::chrono::milliseconds wait{0};
  if (auto wait_text = query->get("wait_ms")) {
    auto parsed = parse_decimal(*wait_text, 10, 0, limits_.max_timeout.count());
    if (!parsed) {
      return reply_error(ex, Error::invalid_wait,
                         "wait_ms must be an integer from 0 to " + std::to_string(limits_.max_timeout.count()) +
                             ", in plain decimal digits.",
                         &rid, &bid);
    }
    wait = std::chrono::milliseconds(*parsed);
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
        return reply_error(exchange, Error::unknown_command,
                           "No command with this id is recorded for this box (never sent, or expired).", &rid, &bid);
      case StatusAnswer::Kind::unavailable:
        return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; the status cannot be read.",
                           &rid, &bid);
    }
  });
  if (shared->open()) shared->on_disconnect([this, handle] { services_.status.cancel(*handle); });
}

void CommandApi::post_message(http::Exchange ex, const Caller& caller) {
  const std::string rid = caller.id.str();
  const std::string bid = caller.box.str();
  if (!read_query(ex, {}, &rid, &bid)) return;
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
        return reply_error(exchange, Error::mqtt_unavailable,
                           "The broker did not acknowledge the message in time; it may or may not reach the device.",
                           &rid, &bid);
      case MessageService::Result::mqtt_unavailable:
        return reply_error(exchange, Error::mqtt_unavailable,
                           "The MQTT broker is unavailable; the message was not sent.", &rid, &bid);
      case MessageService::Result::too_many:
        return reply_error(exchange, Error::too_many_pending, "Too many messages await the broker; retry later.", &rid,
                           &bid);
      case MessageService::Result::shutting_down:
        return reply_error(exchange, Error::shutting_down, "This gateway is shutting down; retry on another replica.",
                           &rid, &bid);
    }
  });
}

}  // namespace boxgate::gateway
