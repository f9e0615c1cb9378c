#pragma once
// DeviceApi: GET /v1/devices/{boxId} -- a box's presence (docs/contract.md,
// "GET /v1/devices/{boxId}"). HttpApi hands it every path /v1/devices/{id}
// with no further segment.
//
// Validation follows the command endpoint, in the same order: the method,
// X-Request-Id (optional; echoed when valid), the box id, then the token and
// its scope (401/403) -- nothing more is read, and no key, for a caller
// without a valid token for the box -- then the query (none is taken). Then
// one HMGET through PresenceReader: 200 with the presence, 404
// unknown_device when none is stored, 503 redis_unavailable when Redis is
// down, stalled or fails. Loop thread only.

#include "auth.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/ops/metrics.hpp"
#include "presence.hpp"

namespace boxgate::gateway {

class DeviceApi {
 public:
  DeviceApi(PresenceReader& presence, Authorizer& auth, ops::Metrics& metrics);

  // `ex.path()` is /v1/devices/<segment> with no '/' in <segment>.
  void handle(http::Exchange ex);

 private:
  enum Outcome { online, offline, unknown, redis_unavailable, refused, kOutcomes };

  PresenceReader& presence_;
  Authorizer& auth_;
  ops::Counter* reads_[kOutcomes];
};

}  // namespace boxgate::gateway
