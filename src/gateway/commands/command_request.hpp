#pragma once
// One command as the gateway's core handles it, and how it ends. Plain
// values; loop thread only like everything that holds them.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/auth.hpp"

#include "boxgate/ids.hpp"
#include "commands/command_record.hpp"
#include "commands/outcome.hpp"

namespace boxgate::gateway {

struct CommandRequest {
  BoxId box;
  RequestId id;
  bool caller_supplied_id = false;
  std::string payload;  // the command JSON, "id" already set
  std::chrono::milliseconds timeout;
  std::string body_sha256;  // of the body as sent, for "same id, other body"
  CommandMode mode = CommandMode::sync;
  // A valid W3C traceparent the caller sent ("" if none): an MQTT v5 user
  // property of the published command.
  std::string traceparent = {};
  // The caller's token (null: the API is open), and the share of its
  // max_pending this command holds while it waits (taken by the service).
  std::shared_ptr<const ApiToken> token = {};
  TokenSlot slot = {};
  // ?ttl_ms (async only): it may wait this long in its box's queue to be
  // sent; its timeout then counts from the send (docs/contract.md, "Queued
  // commands").
  std::optional<std::chrono::milliseconds> ttl = std::nullopt;
};

struct CommandResult {
  Outcome outcome;
  std::string reply;  // the device's payload for ok/replayed; the record (JSON) for accepted
  // device_timeout/timed_out_before: whether the broker acknowledged the
  // publish (unknown when the record does not say).
  std::optional<bool> delivered = std::nullopt;
};

using Completion = std::function<void(CommandResult&&)>;

}  // namespace boxgate::gateway
