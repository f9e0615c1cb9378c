#include "api/caller.hpp"

#include <string>

#include "api/errors.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {

// The request id and the box, before the token.
struct Ids {
  std::optional<RequestId> request_id;
  bool caller_id = false;
  std::optional<BoxId> box;
  std::optional<Error> error;  // with `message`, when one is not valid
  std::string message;
};

Ids read_ids(const char* given, const char* key, std::string_view box_segment) {
  Ids ids;
  // The IETF httpapi draft's name for X-Request-Id.
  if (given && key && std::string_view(given) != key) {
    ids.error = Error::invalid_request_id;
    ids.message = "X-Request-Id and Idempotency-Key differ; send one of them.";
    return ids;
  }
  if (!given) given = key;
  if (given) {
    ids.request_id = RequestId::parse(given);
    if (!ids.request_id) {
      ids.error = Error::invalid_request_id;
      ids.message = std::string("X-Request-Id (or Idempotency-Key) must match ") + kIdPattern + ".";
      return ids;
    }
    ids.caller_id = true;
  } else {
    ids.request_id = new_request_id();
  }
  ids.box = BoxId::parse(http::percent_decode(box_segment));
  if (!ids.box) {
    ids.error = Error::invalid_box_id;
    ids.message = std::string("The box id must match ") + kIdPattern + ".";
  }
  return ids;
}

}  // namespace

std::optional<Caller> identify(http::Exchange& ex, std::string_view box_segment, Authorizer& auth) {
  // The request id first, so every later error can carry it.
  Ids ids = read_ids(ex.header("X-Request-Id"), ex.header("Idempotency-Key"), box_segment);
  if (ids.error) {
    const std::string* rid = ids.request_id ? &ids.request_id->str() : nullptr;
    reply_error(ex, *ids.error, ids.message, *ids.error == Error::invalid_box_id ? rid : nullptr, nullptr);
    return std::nullopt;
  }
  const std::string& rid = ids.request_id->str();
  const std::string& bid = ids.box->str();

  // Before the query and the body: a caller without a valid token for this
  // box learns nothing more, and costs no body scan.
  Decision access = auth.authorize(ex.header("Authorization"), *ids.box);
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
  return Caller{std::move(*ids.request_id), ids.caller_id, std::move(*ids.box)};
}

std::optional<http::Refusal> refuse_before_body(const http::RequestHead& head, std::string_view box_segment,
                                                Authorizer& auth) {
  if (auth.open()) return std::nullopt;
  const std::string given(head.request_id.value_or("")), key(head.idempotency_key.value_or(""));
  Ids ids = read_ids(head.request_id ? given.c_str() : nullptr, head.idempotency_key ? key.c_str() : nullptr,
                     box_segment);
  if (ids.error) return std::nullopt;
  const std::string authorization(head.authorization.value_or(""));
  Decision decision = auth.identify(head.authorization ? authorization.c_str() : nullptr);
  if (decision.verdict == Verdict::allowed) return std::nullopt;
  const std::string& rid = ids.request_id->str();
  const std::string& bid = ids.box->str();
  log::Fields fields{{"request_id", rid}, {"box_id", bid}};
  log::get("gateway")->debug("box {} request {}: 401 before its body", bid, rid);
  return unauthorized_refusal(decision.verdict == Verdict::missing_token, rid, bid);
}

}  // namespace boxgate::gateway
