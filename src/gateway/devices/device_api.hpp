#pragma once
// DeviceApi: GET /v1/devices/{boxId} -- a box's presence (docs/contract.md,
// "GET /v1/devices/{boxId}"). The route table (routes.cpp) checks the
// request first, exactly as for every endpoint (method, request id, box id,
// token and scope: nothing is read for a refused caller); read() refuses any
// query, then does one HMGET through PresenceReader and an LLEN of the box's
// command queue, pipelined -- 200 with the presence and `queued`, 404
// unknown_device when no presence is stored, 503 redis_unavailable when
// Redis is down, stalled or fails. Loop thread only.

#include "api/caller.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "devices/presence.hpp"

namespace boxgate::gateway {

class DeviceApi {
 public:
  DeviceApi(PresenceReader& presence, const Topics& topics, redis::Commands& redis, ops::Metrics& metrics);

  // A read of the caller's box's presence; answers with its request id.
  void read(http::Exchange ex, const Caller& caller);

 private:
  enum Outcome { online, offline, unknown, redis_unavailable, kOutcomes };
  struct Read;
  void answer(http::Exchange& exchange, const Read& read, const std::string& rid, const std::string& bid);

  PresenceReader& presence_;
  const Topics& topics_;
  redis::Commands& redis_;
  ops::Counter* reads_[kOutcomes];
};

}  // namespace boxgate::gateway
