#pragma once
// HttpApi: POST /v1/devices/{boxId}/commands on the gateway's HTTP server.
// Validates the request (ids, then the caller's token and its scope for the
// box, then timeout and body) so nothing invalid or unauthorized is ever
// published or subscribed, hands the command to CommandService, and maps every
// Outcome to its HTTP status and error body in one table. Loop thread only.

#include <chrono>
#include <cstddef>
#include <functional>

#include "auth.hpp"
#include "boxgate/http/server.hpp"
#include "command_service.hpp"

namespace boxgate::gateway {

struct ApiLimits {
  std::chrono::milliseconds default_timeout;
  std::chrono::milliseconds max_timeout;
  std::size_t max_body_bytes;
};

class HttpApi {
 public:
  HttpApi(http::Server& server, CommandService& service, Authorizer& auth, ApiLimits limits);
  // Paths /v1/devices/{id} with no further segment go to `handler`
  // (DeviceApi, device_api.hpp); without one they are 404.
  void serve_devices(http::Handler handler) { devices_ = std::move(handler); }

 private:
  void handle(http::Exchange exchange);

  CommandService& service_;
  Authorizer& auth_;
  ApiLimits limits_;
  http::Handler devices_;
};

}  // namespace boxgate::gateway
