#pragma once
// How a command ended. CommandApi (command_api.cpp) says what each tells the
// caller, as an api/errors.hpp Error whose HTTP status is in that one table;
// metrics label commands with outcome_name().

namespace boxgate::gateway {

enum class Outcome {
  ok,                    // the device replied
  replayed,              // the stored reply of a caller-supplied id, nothing published
  accepted,              // async: recorded and published; the caller polls its status
  duplicate_request_id,  // that id is in flight (on any replica: its record says pending)
  request_id_reused,     // that id names a command with another body
  timed_out_before,      // that id's command timed out already; nothing published again
  too_many_pending,      // gateway-wide limit in count
  too_many_bytes,        // gateway-wide limit in bytes (max_pending_bytes)
  device_busy,           // per-device limit
  token_pending_full,    // the caller's token holds its max_pending on this gateway
  device_offline,        // offline_policy=fail and the box's presence says offline
  mqtt_unavailable,
  redis_unavailable,
  shutting_down,
  device_timeout,
  delivered,             // published, but the gateway stopped before the reply: it may still run
  client_gone,           // the caller disconnected first; nobody to answer
  queue_full,            // queued commands: the box's queue or all queues hold their limit
};

inline const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::replayed: return "replayed";
    case Outcome::accepted: return "accepted";
    case Outcome::duplicate_request_id: return "duplicate_request_id";
    case Outcome::request_id_reused: return "request_id_reused";
    case Outcome::timed_out_before: return "timed_out_before";
    case Outcome::too_many_pending: return "too_many_pending";
    case Outcome::too_many_bytes: return "too_many_bytes";
    case Outcome::device_busy: return "device_busy";
    case Outcome::token_pending_full: return "token_pending_full";
    case Outcome::device_offline: return "device_offline";
    case Outcome::mqtt_unavailable: return "mqtt_unavailable";
    case Outcome::redis_unavailable: return "redis_unavailable";
    case Outcome::shutting_down: return "shutting_down";
    case Outcome::device_timeout: return "device_timeout";
    case Outcome::delivered: return "delivered";
    case Outcome::client_gone: return "client_gone";
    case Outcome::queue_full: return "queue_full";
  }
  return "unknown";
}

// In enum order: indexes of per-outcome tables.
inline constexpr Outcome kAllOutcomes[] = {
    Outcome::ok,               Outcome::replayed,          Outcome::accepted,         Outcome::duplicate_request_id,
    Outcome::request_id_reused, Outcome::timed_out_before, Outcome::too_many_pending, Outcome::too_many_bytes,
    Outcome::device_busy,      Outcome::token_pending_full, Outcome::device_offline,  Outcome::mqtt_unavailable,
    Outcome::redis_unavailable, Outcome::shutting_down,
    Outcome::device_timeout,   Outcome::delivered,         Outcome::client_gone,      Outcome::queue_full};

}  // namespace boxgate::gateway
