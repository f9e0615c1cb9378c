#pragma once
// Who calls an endpoint under /v1/devices/{boxId}: the request id (the
// caller's X-Request-Id or Idempotency-Key, or one generated here), the box,
// and the caller's right to it. Checked in this order on every such
// endpoint, before its query and body (docs/contract.md), so nothing is read
// or published for a caller without a valid token for the box. Loop thread
// only.

#include <optional>
#include <string_view>

#include "api/auth.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/ids.hpp"

namespace boxgate::gateway {

struct Caller {
  RequestId id;
  bool caller_supplied_id;  // false: generated here
  BoxId box;
};

// The pattern every id must match, for error messages.
inline constexpr const char* kIdPattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";

// The id header, the box (`box_segment`, still percent-encoded) and the
// token, in that order; nullopt once answered (400, 401 or 403).
std::optional<Caller> identify(http::Exchange& ex, std::string_view box_segment, Authorizer& auth);

// The same checks at the end of the headers of an API request that
// announces a body (http::Server::admit_bodies): the 401 identify() would
// answer, sent before the body is read. Nothing for a request identify()
// would refuse for its id or box first (it is answered, in that order, once
// read), nor for one whose token is valid (its scope is checked then).
// `box_segment` as for identify().
std::optional<http::Refusal> refuse_before_body(const http::RequestHead& head, std::string_view box_segment,
                                                Authorizer& auth);

}  // namespace boxgate::gateway
