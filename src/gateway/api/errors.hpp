#pragma once
// The gateway's error answers (docs/contract.md: the body
// {"error","message","request_id"?,"box_id"?}) and the one map from an error
// to its HTTP status and code: every family names an Error, none writes a
// status number. Loop thread only (they answer an http::Exchange).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// Every error the API answers with. The HTTP status and the code of each are
// in errors.cpp, in one table.
enum class Error {
  invalid_request_id,    // 400
  invalid_box_id,        // 400
  invalid_query,         // 400
  invalid_timeout,       // 400
  invalid_wait,          // 400
  invalid_after,         // 400
  invalid_limit,         // 400
  invalid_box_pattern,   // 400
  invalid_body,          // 400
  invalid_ttl,           // 400 (queued commands)
  unauthorized,          // 401
  forbidden,             // 403
  origin_not_allowed,    // 403 (browser_guard.hpp)
  unknown_command,       // 404
  unknown_device,        // 404
  device_offline,        // 404
  no_state,              // 404
  not_acceptable,        // 406
  duplicate_request_id,  // 409
  already_sent,          // 409 (DELETE of a command no longer queued)
  body_too_large,        // 413
  unsupported_media_type,  // 415 (browser_guard.hpp)
  host_not_allowed,      // 421 (browser_guard.hpp)
  request_id_reused,     // 422
  too_many_pending,      // 429 (pending commands, their bytes, or messages awaiting the broker)
  device_busy,           // 429
  queue_full,            // 429 (a box's queue, or all queues, hold their limit)
  too_many_streams,      // 429
  token_pending_full,    // 429 (the caller's token holds its token_max_pending)
  token_streams_full,    // 429 (the caller's token holds its token_max_streams)
  rate_limited,          // 429 (the caller's token is over its token_rate; Retry-After says when)
  internal,              // 500
  mqtt_unavailable,      // 503
  redis_unavailable,     // 503
  shutting_down,         // 503
  device_timeout,        // 504
};

int http_status(Error error) noexcept;
const char* error_code(Error error) noexcept;

// Answers `error` with `message`. Sets X-Request-Id when an id is given,
// Retry-After on 429/503, and `"delivered"` when known (a 504 says whether
// the broker took the command). Never throws on bytes that are not UTF-8
// (they are replaced): an error answer must not turn into a 500.
void reply_error(http::Exchange& ex, Error error, const std::string& message, const std::string* request_id,
                 const std::string* box_id, std::optional<bool> delivered = std::nullopt);

// 429 rate_limited with Retry-After: `retry_after` in whole seconds, rounded up.
void reply_rate_limited(http::Exchange& ex, std::chrono::milliseconds retry_after, const std::string* request_id,
                        const std::string* box_id);

// 401 for a missing or invalid bearer token, with RFC 6750's
// WWW-Authenticate (no error attribute when no credentials were sent).
void reply_unauthorized(http::Exchange& ex, bool token_missing, const std::string* request_id,
                        const std::string* box_id);
// The same 401, sent by the HTTP server before a request's body is read
// (http::Server::admit_bodies).
http::Refusal unauthorized_refusal(bool token_missing, const std::string& request_id, const std::string& box_id);

// A caller's bytes quoted in a message: printable ASCII only (others as '?'),
// at most 64 of them.
std::string quoted_name(std::string_view raw);

}  // namespace boxgate::gateway
