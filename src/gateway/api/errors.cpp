#include "api/errors.hpp"

#include <nlohmann/json.hpp>

namespace boxgate::gateway {

namespace {

struct Answer {
  int status;
  const char* code;
};

// The one place where an error becomes an HTTP status.
Answer answer_for(Error error) noexcept {
  switch (error) {
    case Error::invalid_request_id: return {400, "invalid_request_id"};
    case Error::invalid_box_id: return {400, "invalid_box_id"};
    case Error::invalid_query: return {400, "invalid_query"};
    case Error::invalid_timeout: return {400, "invalid_timeout"};
    case Error::invalid_wait: return {400, "invalid_wait"};
    case Error::invalid_after: return {400, "invalid_after"};
    case Error::invalid_limit: return {400, "invalid_limit"};
    case Error::invalid_box_pattern: return {400, "invalid_box_pattern"};
    case Error::invalid_body: return {400, "invalid_body"};
    case Error::invalid_ttl: return {400, "invalid_ttl"};
    case Error::unauthorized: return {401, "unauthorized"};
    case Error::forbidden: return {403, "forbidden"};
    case Error::origin_not_allowed: return {403, "origin_not_allowed"};
    case Error::unknown_command: return {404, "unknown_command"};
    case Error::unknown_device: return {404, "unknown_device"};
    case Error::device_offline: return {404, "device_offline"};
    case Error::no_state: return {404, "no_state"};
    case Error::not_acceptable: return {406, "not_acceptable"};
    case Error::duplicate_request_id: return {409, "duplicate_request_id"};
    case Error::already_sent: return {409, "already_sent"};
    case Error::body_too_large: return {413, "body_too_large"};
    case Error::unsupported_media_type: return {415, "unsupported_media_type"};
    case Error::host_not_allowed: return {421, "host_not_allowed"};
    case Error::request_id_reused: return {422, "request_id_reused"};
    case Error::too_many_pending: return {429, "too_many_pending"};
    case Error::device_busy: return {429, "device_busy"};
    case Error::queue_full: return {429, "queue_full"};
    case Error::too_many_streams: return {429, "too_many_streams"};
    case Error::token_pending_full: return {429, "token_pending_full"};
    case Error::token_streams_full: return {429, "token_streams_full"};
    case Error::rate_limited: return {429, "rate_limited"};
    case Error::internal: break;
    case Error::mqtt_unavailable: return {503, "mqtt_unavailable"};
    case Error::redis_unavailable: return {503, "redis_unavailable"};
    case Error::shutting_down: return {503, "shutting_down"};
    case Error::device_timeout: return {504, "device_timeout"};
  }
  return {500, "internal"};
}

}  // namespace

int http_status(Error error) noexcept { return answer_for(error).status; }
const char* error_code(Error error) noexcept { return answer_for(error).code; }

namespace {

void send_error(http::Exchange& ex, Error error, const std::string& message, const std::string* request_id,
                const std::string* box_id, std::optional<bool> delivered, long retry_after_seconds) {
  auto [status, code] = answer_for(error);
  ex.set_note(code);  // the access log's outcome
  nlohmann::ordered_json body = {{"error", code}, {"message", message}};
  if (request_id) {
    body["request_id"] = *request_id;
    ex.set_header("X-Request-Id", *request_id);
  }
  if (box_id) body["box_id"] = *box_id;
  if (delivered) body["delivered"] = *delivered;
  if (status == 429 || status == 503) ex.set_header("Retry-After", std::to_string(retry_after_seconds));
  ex.reply(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

void reply_error(http::Exchange& ex, Error error, const std::string& message, const std::string* request_id,
                 const std::string* box_id, std::optional<bool> delivered) {
  send_error(ex, error, message, request_id, box_id, delivered, 1);
}

void reply_rate_limited(http::Exchange& ex, std::chrono::milliseconds retry_after, const std::string* request_id,
                        const std::string* box_id) {
  long seconds = static_cast<long>((retry_after.count() + 999) / 1000);
  send_error(ex, Error::rate_limited, "This token sent more requests than its rate allows; retry later.", request_id,
             box_id, std::nullopt, seconds < 1 ? 1 : seconds);
}

namespace {
// RFC 6750: no error attribute when no credentials were sent.
const char* www_authenticate(bool token_missing) {
  return token_missing ? "Bearer" : R"(Bearer error="invalid_token")";
}
const char* unauthorized_message(bool token_missing) {
  return token_missing ? "This API needs an Authorization: Bearer <token> header." : "The bearer token is not valid.";
}
}  // namespace

void reply_unauthorized(http::Exchange& ex, bool token_missing, const std::string* request_id,
                        const std::string* box_id) {
  ex.set_header("WWW-Authenticate", www_authenticate(token_missing));
  reply_error(ex, Error::unauthorized, unauthorized_message(token_missing), request_id, box_id);
}

http::Refusal unauthorized_refusal(bool token_missing, const std::string& request_id, const std::string& box_id) {
  nlohmann::ordered_json body = {{"error", answer_for(Error::unauthorized).code},
                                 {"message", unauthorized_message(token_missing)},
                                 {"request_id", request_id},
                                 {"box_id", box_id}};
  return {401, body.dump(), {{"X-Request-Id", request_id}, {"WWW-Authenticate", www_authenticate(token_missing)}}};
}

std::string quoted_name(std::string_view raw) {
  std::string out(raw.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace boxgate::gateway
