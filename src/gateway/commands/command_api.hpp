#pragma once
// CommandApi: the handlers of the command endpoints (docs/contract.md) --
//   POST /v1/devices/{boxId}/commands            send a command (sync, or async with Prefer: respond-async)
//   GET  /v1/devices/{boxId}/commands/{id}       a command's status, optionally long-polled (?wait_ms=)
//   POST /v1/devices/{boxId}/messages            a one-way message, answered after the broker's PUBACK
// The route table (routes.cpp) has checked the path, the method, the request
// id, the box and the caller's token for it; each handler checks its query
// and body, so nothing invalid is ever published, subscribed or read, hands
// the command to its service and answers its outcome (the HTTP status of
// each error is api/errors.cpp's). Loop thread only.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "api/caller.hpp"
#include "boxgate/http/server.hpp"
#include "commands/command_service.hpp"
#include "commands/command_status.hpp"
#include "commands/message_service.hpp"

namespace boxgate::gateway {

struct CommandLimits {
  std::chrono::milliseconds default_timeout;
  std::chrono::milliseconds max_timeout;
  std::size_t max_body_bytes;
  std::chrono::milliseconds max_async_timeout;
  std::chrono::milliseconds max_queue_ttl;  // ?ttl_ms: 1..this
};

struct CommandServices {
  CommandService& commands;
  CommandStatusReader& status;
  MessageService& messages;
};

class CommandApi {
 public:
  CommandApi(CommandServices services, CommandLimits limits);

  void post_command(http::Exchange ex, const Caller& caller);
  // `id_segment`: the command's id from the path, still percent-encoded.
  void get_status(http::Exchange ex, const Caller& caller, std::string_view id_segment);
  void post_message(http::Exchange ex, const Caller& caller);

 private:
  // The body as a payload with "id" set; nullopt once answered.
  std::optional<std::string> payload_of(http::Exchange& ex, const Caller& caller);

  CommandServices services_;
  CommandLimits limits_;
};

}  // namespace boxgate::gateway
