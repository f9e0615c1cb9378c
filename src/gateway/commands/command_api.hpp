#pragma once
// HttpApi: the gateway's device API on its HTTP server --
//   POST /v1/devices/{boxId}/commands            send a command (sync, or async with Prefer: respond-async)
//   GET  /v1/devices/{boxId}/commands/{id}       a command's status, optionally long-polled (?wait_ms=)
//   POST /v1/devices/{boxId}/messages            a one-way message, answered after the broker's PUBACK
//   GET  /v1/devices/{boxId}/state|events        the data plane's reads, handed to EventApi
// Validates each request (ids, then the caller's token and its scope for the
// box, then query and body) so nothing invalid or unauthorized is ever
// published, subscribed or read, hands it to its service, and maps every
// outcome to its HTTP status and error body in one table. Loop thread only.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include "api/auth.hpp"
#include "boxgate/http/server.hpp"
#include "commands/command_service.hpp"
#include "commands/command_status.hpp"
#include "events/event_api.hpp"
#include "commands/message_service.hpp"

namespace boxgate::gateway {

struct ApiLimits {
  std::chrono::milliseconds default_timeout;
  std::chrono::milliseconds max_timeout;
  std::size_t max_body_bytes;
  std::chrono::milliseconds max_async_timeout;
  bool access_log = true;  // one line per call answered (access_log.hpp)
};

struct ApiServices {
  CommandService& commands;
  CommandStatusReader& status;
  MessageService& messages;
  EventApi* events = nullptr;  // GET .../state and .../events (event_api.hpp)
};

class HttpApi {
 public:
  HttpApi(http::Server& server, ApiServices services, Authorizer& auth, ApiLimits limits);
  // Validated GETs of /v1/devices/{id} go to `read` (DeviceApi::read,
  // device_api.hpp); without one they are 404.
  using DeviceRead = std::function<void(http::Exchange, const BoxId&, const RequestId&)>;
  void serve_devices(DeviceRead read) { devices_ = std::move(read); }

 private:
  struct Caller;
  void handle(http::Exchange exchange);
  // The id header, the box and the token, in that order; nullopt once answered.
  std::optional<Caller> identify(http::Exchange& ex, std::string_view box_segment);
  void post_command(http::Exchange ex, Caller caller);
  void get_status(http::Exchange ex, Caller caller, std::string_view id_segment);
  void post_message(http::Exchange ex, Caller caller);
  // The body as a payload with "id" set; nullopt once answered.
  std::optional<std::string> payload_of(http::Exchange& ex, const Caller& caller);

  ApiServices services_;
  Authorizer& auth_;
  ApiLimits limits_;
  DeviceRead devices_;
};

}  // namespace boxgate::gateway
