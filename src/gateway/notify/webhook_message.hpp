#pragma once
// What one webhook delivery sends (docs/webhooks.md; JSON Schema in
// docs/schemas/webhook.schema.json), following the Standard Webhooks
// specification (https://www.standardwebhooks.com/):
//
//   POST <url>
//   content-type: application/json
//   webhook-id: <source>-<stream id>       the same on every retry: receivers deduplicate by it
//   webhook-timestamp: <unix seconds of this attempt>
//   webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
//   {"type":"command.succeeded","timestamp":"2026-12-07T21:00:00.123Z",
//    "stream":"commands","stream_id":"1765141200123-0","data":{...}}
//
// `data` is the stream entry's payload: a command's outcome, a presence
// change, or for an event {"box","name","payload","received_ms"} with the
// device's payload as JSON when it is JSON (else as a string).
//
// Pure functions; any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/redis/stream_entries.hpp"
#include "notify/webhook_endpoints.hpp"

namespace boxgate::gateway {

struct WebhookMessage {
  std::string id;    // webhook-id
  std::string kind;  // "type"
  std::string box;
  std::string body;
  std::int64_t written_ms = 0;  // the stream id's time: when the change happened
};

// The kind of an entry of `source`: "command.<state>", "device.online",
// "event.<name>"; nullopt for an entry that is not one (a foreign writer's).
std::optional<std::string> webhook_kind(WebhookSource source, const redis::StoredEvent& entry);

// The message for an entry of `source` (not replay: its entries carry theirs).
WebhookMessage webhook_message(WebhookSource source, const redis::StoredEvent& entry, std::string kind);

// The milliseconds part of a stream id (0 when malformed).
std::int64_t stream_id_ms(std::string_view id);

// The value of the webhook-signature header for one attempt.
std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp_s,
                              std::string_view body);

}  // namespace boxgate::gateway
