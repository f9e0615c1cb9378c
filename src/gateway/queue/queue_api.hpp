#pragma once
// QueueApi: the handlers of a box's command queue (docs/contract.md,
// "Queued commands") --
//   GET    /v1/devices/{boxId}/commands?state=queued[&after=<id>][&limit=N]  the queue, in send order
//   DELETE /v1/devices/{boxId}/commands/{requestId}                           cancel a queued command
// (POST with ?ttl_ms= is the command endpoint's: CommandApi hands it to the
// CommandService, which hands it to the queue.) The route table has checked
// the path, method, request id, box and token. Loop thread only.

#include <string_view>

#include "api/caller.hpp"
#include "boxgate/http/server.hpp"
#include "queue/queue_service.hpp"

namespace boxgate::gateway {

class QueueApi {
 public:
  static constexpr std::size_t kDefaultLimit = 100;
  static constexpr std::size_t kMaxLimit = 1000;

  explicit QueueApi(QueueService& queue) : queue_(queue) {}

  void list(http::Exchange ex, const Caller& caller);
  // `id_segment`: the command's id from the path, still percent-encoded.
  void cancel(http::Exchange ex, const Caller& caller, std::string_view id_segment);

 private:
  QueueService& queue_;
};

}  // namespace boxgate::gateway
