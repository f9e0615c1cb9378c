#pragma once
// The error body every gateway endpoint answers with (docs/contract.md:
// {"error","message","request_id"?,"box_id"?}), and how a caller's bytes are
// quoted in a message. Shared by the device API's handlers; loop thread only.

#include <optional>
#include <string>
#include <string_view>

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// Sets X-Request-Id when an id is given, Retry-After on 429/503, and
// `"delivered"` when known (a 504 says whether the broker took the command).
// Never throws on bytes that are not UTF-8 (they are replaced): an error
// answer must not turn into a 500.
void reply_error(http::Exchange& ex, int status, const char* code, const std::string& message,
                 const std::string* request_id, const std::string* box_id,
                 std::optional<bool> delivered = std::nullopt);

// 401 for a missing or invalid bearer token, with RFC 6750's
// WWW-Authenticate (no error attribute when no credentials were sent).
void reply_unauthorized(http::Exchange& ex, bool token_missing, const std::string* request_id,
                        const std::string* box_id);

// A caller's bytes quoted in a message: printable ASCII only (others as '?'),
// at most 64 of them.
std::string quoted_name(std::string_view raw);

}  // namespace boxgate::gateway
