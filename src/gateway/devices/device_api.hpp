#pragma once
// DeviceApi: GET /v1/devices/{boxId} -- a box's presence (docs/contract.md,
// "GET /v1/devices/{boxId}"). The route table (routes.cpp) checks the
// request first, exactly as for every endpoint (method, request id, box id,
// token and scope: nothing is read for a refused caller); read() refuses any
// query, then does one HMGET through PresenceReader -- 200 with the
// presence, 404 unknown_device when none is stored, 503 redis_unavailable
// when Redis is down, stalled or fails. Loop thread only.

#include "api/caller.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/ops/metrics.hpp"
#include "devices/presence.hpp"

namespace boxgate::gateway {

class DeviceApi {
 public:
  DeviceApi(PresenceReader& presence, ops::Metrics& metrics);

  // A read of the caller's box's presence; answers with its request id.
  void read(http::Exchange ex, const Caller& caller);

 private:
  enum Outcome { online, offline, unknown, redis_unavailable, kOutcomes };

  PresenceReader& presence_;
  ops::Counter* reads_[kOutcomes];
};

}  // namespace boxgate::gateway
