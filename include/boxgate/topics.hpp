#pragma once
// Every MQTT topic, Redis channel and Redis key name, in one place.
//
// Names are only ever built from validated ids (ids.hpp); nothing else in the
// code base concatenates topic strings. Immutable after construction; any
// thread may use a Topics.

#include <optional>
#include <string>
#include <string_view>

#include "boxgate/ids.hpp"

namespace boxgate {

// What a device reply topic says: the box, and the request when the topic has it.
struct ReplyAddress {
  BoxId box;
  std::optional<RequestId> request;  // empty for "{prefix}/{box}/response"
};

// What a device event topic {prefix}/{box}/event/{name} says.
struct EventAddress {
  BoxId box;
  EventName name;
};

class Topics {
 public:
  explicit Topics(std::string prefix);

  const std::string& prefix() const noexcept { return prefix_; }

  // MQTT topic a command is published on: {prefix}/{box}/request/{req}.
  std::string request_topic(const BoxId& box, const RequestId& req) const;
  // MQTT filter a device subscribes to: {prefix}/{box}/request/+.
  std::string device_request_filter(const BoxId& box) const;
  // MQTT reply topic, Redis channel and Redis result key all share this name:
  // {prefix}/{box}/response/{req}.
  std::string response_channel(const BoxId& box, const RequestId& req) const;
  // Redis key of a command's record (state, body hash, deadline):
  // {prefix}/{box}/command/{req}.
  std::string command_key(const BoxId& box, const RequestId& req) const;
  // MQTT topic of a one-way message: {prefix}/{box}/message/{req}.
  std::string message_topic(const BoxId& box, const RequestId& req) const;
  // MQTT reply topic without the request id: {prefix}/{box}/response.
  std::string response_topic_without_id(const BoxId& box) const;
  // The bridge's two subscriptions, optionally through $share/{group}/.
  std::string reply_filter_with_id(std::string_view share_group) const;
  std::string reply_filter_without_id(std::string_view share_group) const;

  // Presence (docs/contract.md, "Presence"). The retained status topic a
  // device publishes `online`/`offline` on (and its MQTT will):
  // {prefix}/{box}/status.
  std::string status_topic(const BoxId& box) const;
  // The bridge's subscription to every box's status: {prefix}/+/status. Never
  // shared: a shared subscription gets no retained messages, and every
  // bridge must see each box's retained state when it connects.
  std::string status_filter() const;
  // The Redis hash holding a box's presence: {prefix}/{box}/presence.
  std::string presence_key(const BoxId& box) const;
  // True when `topic` has the shape {prefix}/<one level>/status, whether or
  // not that level is a valid id: how the bridge tells status messages from
  // replies before validating them.
  bool is_status_topic(std::string_view topic) const noexcept;
  // The box of a status topic; nullopt when it is not {prefix}/{box}/status
  // with a valid box id.
  std::optional<BoxId> parse_status_topic(std::string_view topic) const;

  // Device data plane (docs/events.md). The MQTT topic of an event and the
  // Redis channel it is PUBLISHed on: {prefix}/{box}/event/{name}.
  std::string event_channel(const BoxId& box, const EventName& name) const;
  // The PSUBSCRIBE pattern of one box's event channels: {prefix}/{box}/event/*.
  std::string event_channel_pattern(const BoxId& box) const;
  // Redis streams: one box's events {prefix}/{box}/events, the fleet's {prefix}/events.
  std::string box_events_stream(const BoxId& box) const;
  std::string fleet_events_stream() const;
  // The outcome stream (every command state change), {prefix}/commands, and
  // the presence stream (every online/offline change), {prefix}/presence
  // (outcome_events.hpp). No box's key is either: those have three levels.
  std::string outcome_stream() const;
  std::string presence_stream() const;
  // Webhooks (docs/webhooks.md): deliveries that failed for their whole
  // retry window, {prefix}/_webhooks/dead, and those an operator replays,
  // {prefix}/_webhooks/replay.
  std::string webhook_dead_stream() const;
  std::string webhook_replay_stream() const;
  // The hash in which the bridge counts a stream's bytes (its cap in bytes,
  // docs/events.md): {stream}/bytes{{stream}}. The hash tag is the stream's
  // whole name, so both hash to one Redis Cluster slot and one script may
  // name both; the braces keep it apart from every name built from ids.
  // `stream`: box_events_stream() or fleet_events_stream().
  std::string events_bytes_key(std::string_view stream) const;
  // The MQTT topic of a box's state, the Redis key of its latest state and
  // the channel it is PUBLISHed on: {prefix}/{box}/state.
  std::string state_key(const BoxId& box) const;
  // The bridge's event and state subscriptions, optionally through $share/{group}/.
  std::string event_filter(std::string_view share_group) const;
  std::string state_filter(std::string_view share_group) const;
  // Which data-plane kind a topic's shape names ({prefix}/{x}/event/{y} or
  // {prefix}/{x}/state), before any id is validated: a topic of that shape
  // with a bad id is an invalid event, not some other kind of message.
  enum class DataKind { none, event, state };
  DataKind data_kind(std::string_view topic) const;
  // nullopt when a topic of that shape has an invalid box id or event name.
  std::optional<EventAddress> parse_event_topic(std::string_view topic) const;
  std::optional<BoxId> parse_state_topic(std::string_view topic) const;

  // Queued commands (docs/contract.md, "Queued commands"). A box's queue is
  // two keys that share one Redis Cluster slot (hash tag {prefix}/{box}), so
  // one script changes both atomically: the send order, a list
  // {prefix}/{box}/queue{{prefix}/{box}}, and the entries, a hash
  // {prefix}/{box}/queue-items{{prefix}/{box}}.
  std::string queue_key(const BoxId& box) const;
  std::string queue_items_key(const BoxId& box) const;
  // Fleet-wide: the boxes that have a queue (a sorted set),
  // {prefix}/_queue/boxes; the bytes queued in all, {prefix}/_queue/bytes; the
  // sweep's lease, {prefix}/_queue/sweep; and the channel on which the bridge
  // says a box came online, {prefix}/_queue/wake. A box id cannot start with
  // `_`, so none of these is a box's key.
  std::string queue_index_key() const;
  std::string queue_bytes_key() const;
  std::string queue_sweep_key() const;
  std::string queue_wake_channel() const;

  // Parses a device reply topic; nullopt when it is not one of the two forms
  // or an id in it is invalid.
  std::optional<ReplyAddress> parse_reply_topic(std::string_view topic) const;
  // Parses a command topic {prefix}/{box}/request/{req} (used by devices).
  std::optional<ReplyAddress> parse_request_topic(std::string_view topic) const;
  // Parses a one-way message topic {prefix}/{box}/message/{req} (devices).
  std::optional<ReplyAddress> parse_message_topic(std::string_view topic) const;
  // The subscriptions of a device serving `box`: its commands and its
  // one-way messages.
  std::string device_message_filter(const BoxId& box) const;

 private:
  std::optional<ReplyAddress> parse(std::string_view topic, std::string_view kind) const;
  std::string prefix_;
};

// True when `prefix` can be used as a topic prefix: one or more '/'-separated
// segments, each a valid id.
bool is_valid_prefix(std::string_view prefix) noexcept;

}  // namespace boxgate
