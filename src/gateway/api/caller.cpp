#include "api/caller.hpp"

#include <string>

#include "api/errors.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

std::optional<Caller> identify(http::Exchange& ex, std::string_view box_segment, Authorizer& auth) {
  // The request id first, so every later error can carry it.
  std::optional<RequestId> request_id;
  bool caller_id = false;
  const char* given = ex.header("X-Request-Id");
  // The IETF httpapi draft's name for the same thing.
  const char* key = ex.header("Idempotency-Key");
  if (given && key && std::string_view(given) != key) {
    reply_error(ex, Error::invalid_request_id, "X-Request-Id and Idempotency-Key differ; send one of them.", nullptr,
                nullptr);
    return std::nullopt;
  }
  if (!given) given = key;
  if (given) {
    request_id = RequestId::parse(given);
    if (!request_id) {
      reply_error(ex, Error::invalid_request_id,
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
    reply_error(ex, Error::invalid_box_id, std::string("The box id must match ") + kIdPattern + ".", &rid, nullptr);
    return std::nullopt;
  }
  const std::string& bid = box->str();

  // Before the query and the body: a caller without a valid token for this
  // box learns nothing more, and costs no body scan.
  Decision access = auth.authorize(ex.header("Authorization"), *box);
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
    reply_error(ex, Error::forbidden, "This token is not scoped for this box.", &rid, &bid);
    return std::nullopt;
  }
  return Caller{std::move(*request_id), caller_id, std::move(*box), std::move(access.token)};
}

}  // namespace boxgate::gateway
